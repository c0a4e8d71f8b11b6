"""The audit API's tranche positions, replayed from the index, equal the tranche tokens' own
views for every holder after every period of a demo deal: through claims, a refused claim by a
frozen holder, a forced transfer that moves the frozen holder's held cash, a revoked holder, an
expired one, a plain transfer and a claim by the paying agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient

from chainabs import deal as deals
from chainabs import service
from chainabs.api import Settings, create_app
from chainabs.context import open_context
from chainabs.demo import run_demo
from chainabs.errors import ContractRevert
from chainabs.indexer import Indexer
from chainabs.store import Store

PERIODS = 6


def test_claimable_equals_the_tokens_view_after_every_period(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_demo(data_dir=data, loans=120, periods=0, seed=5, say=lambda _: None)  # issued, no period yet
    ctx = open_context(data_dir=data, create=False)
    chain = ctx.chain
    handle, files = service.open_deal(ctx)
    store = Store.open(data, chain_id=chain.chain_id)
    indexer = Indexer(ctx, store)
    client = TestClient(create_app(Settings(data_dir=data), ctx, store=store))
    investors = chain.accounts[1:6]
    recovery, late = chain.accounts[6], chain.accounts[7]
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    deals.add_investors(handle, investors=[recovery], eligible_until=now + 10 * 365 * 86_400)
    deals.add_investors(handle, investors=[late], eligible_until=now + 86_400)  # expires after period 4
    deals.transfer(handle, tranche=0, sender=investors[0], to=late, units=1_000)
    everyone = [*investors, recovery, late, handle.roles.originator]
    compared = {"claimable": 0, "held while refused": 0}

    def check(step: str) -> None:
        indexer.sync()
        head = store.cursor()
        assert head == chain.block_number()
        head_time = int(chain.w3.eth.get_block(head)["timestamp"])
        for who in everyone:
            body = client.get(f"/investors/{who}/holdings").json()
            served = {h["tranche_index"]: h for h in body["holdings"] if "tranche_index" in h}
            for k, token in enumerate(handle.tokens):
                functions = token.functions
                owed = chain.call(functions.claimableOf(who))
                units = chain.call(functions.balanceOf(who))
                until, frozen = chain.call(functions.eligibilityOf(who))
                if k not in served:  # never held, nothing owed: the API may leave the tranche out
                    assert (owed, units) == (0, 0), f"{step}: {who} tranche {k} missing"
                    continue
                h = served[k]
                assert h["claimable"] == owed, f"{step}: claimable of {who}, tranche {k}"
                assert int(h["units"]) == units, f"{step}: units of {who}, tranche {k}"
                assert (h["eligible_until"], h["frozen"]) == (until, frozen), f"{step}: eligibility of {who}"
                assert h["eligible"] == (not frozen and until >= head_time), f"{step}: eligible {who}"
                compared["claimable"] += 1
                if owed and not h["eligible"]:
                    compared["held while refused"] += 1
        ledger = deals.cash_ledger(handle)
        claimed = [sum(next((h["claimed"] for h in client.get(f"/investors/{who}/holdings").json()["holdings"]
                             if h.get("tranche_index") == k), 0) for who in everyone)
                   for k in range(len(handle.tokens))]
        assert claimed == list(ledger.claimed), step

    def period() -> None:
        service.simulate(ctx, periods=1, cdr=0.06, cpr=0.12, recovery=0.35, lag=3, seed=5)

    check("issued")
    for n in range(1, PERIODS + 1):
        period()
        if n == 1:
            assert deals.claim(handle, holder=investors[0]) > 0
        elif n == 2:
            deals.freeze(handle, investors=[investors[1]])
            with pytest.raises(ContractRevert, match="ClaimRestricted"):
                deals.claim(handle, holder=investors[1])
        elif n == 3:  # the frozen wallet's units and held cash move to a recovery wallet, in part
            units = chain.call(handle.tokens[0].functions.balanceOf(investors[1]))
            deals.forced_transfer(handle, tranche=0, from_=investors[1], to=recovery, units=units // 3)
            deals.revoke_investors(handle, investors=[investors[3]])
            with pytest.raises(ContractRevert, match="ClaimRestricted"):
                deals.claim(handle, holder=investors[3])
        elif n == 4:
            chain.time_travel(now + 2 * 86_400)  # `late` expires
            chain.mine()
            deals.transfer(handle, tranche=0, sender=investors[2], to=investors[4], units=5_000)
            assert deals.claim(handle, holder=investors[2], sender=handle.roles.operator)  # the paying agent > 0
        elif n == 5:
            deals.forced_transfer(handle, tranche=0, from_=investors[1], to=recovery,
                                  units=chain.call(handle.tokens[0].functions.balanceOf(investors[1])))
            assert deals.claim(handle, holder=recovery) > 0
        check(f"after period {n}")
    assert compared["held while refused"] > 0 and compared["claimable"] > 6 * len(everyone)
    assert chain.call(handle.tokens[0].functions.claimableOf(to_checksum_address(investors[1]))) == 0
    store.close()
