"""The audit API's deal endpoints against a demo deal: every figure equals the chain's own view."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainabs import deal as deals
from chainabs.api import Settings, create_app
from chainabs.context import Context, open_context
from chainabs.demo import run_demo
from chainabs.indexer import Indexer
from chainabs.service import open_deal
from chainabs.store import Store
from chainabs.waterfall import PeriodResult

PERIODS = 5


@dataclass
class DealWorld:
    ctx: Context
    handle: deals.DealHandle
    client: TestClient
    slug: str
    investors: list[str]
    store: Store
    data: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DealWorld]:
    data = tmp_path_factory.mktemp("api-deal")
    run_demo(data_dir=data, loans=150, periods=PERIODS, seed=3, say=lambda _: None)
    ctx = open_context(data_dir=data, create=False)
    handle, files = open_deal(ctx)
    store = Store.open(data, chain_id=ctx.chain.chain_id)
    Indexer(ctx, store).sync()
    client = TestClient(create_app(Settings(data_dir=data), ctx, store=store))
    yield DealWorld(ctx, handle, client, files.folder.name, ctx.chain.accounts[1:6], store, data)
    store.close()


def get(world: DealWorld, path: str, status: int = 200) -> dict:
    response = world.client.get(path)
    assert response.status_code == status, response.text
    return response.json()


def test_pool_deal_figures_equal_the_contracts(world: DealWorld) -> None:
    deal = get(world, f"/pools/{world.slug}")["deal"]
    state = deals.read_state(world.handle)
    contract = world.handle.deal.functions
    assert deal["periods"] == PERIODS == state.period
    assert deal["pool_balance"] == state.pool_balance
    assert deal["reserve"] == state.reserve
    assert deal["cumulative_defaults"] == world.ctx.chain.call(contract.cumulativeDefaults())
    assert deal["trigger"]["breached"] == state.trigger_breached
    assert deal["initial_balance"] == world.ctx.chain.call(contract.initialBalance())
    assert deal["pool_factor"] == pytest.approx(state.pool_balance / deal["initial_balance"])
    assert deal["cumulative_net_loss"] == deal["cumulative_defaults"] - deal["cumulative_recoveries"]
    # overcollateralisation: the pool beyond the rated (non-residual) tranches' balances on chain
    rated = sum(world.ctx.chain.call(contract.tranche(k))[4] for k in range(len(state.tranche_balances) - 1))
    assert rated == sum(state.tranche_balances[:-1]) and rated > 0
    assert deal["overcollateralisation_units"] == state.pool_balance - rated > 0
    assert deal["overcollateralisation_ratio"] == pytest.approx(state.pool_balance / rated)
    buckets = deal["delinquency"]
    assert sum(b["outstanding_units"] for b in buckets.values()) == state.pool_balance
    assert sum(b["count"] for b in buckets.values()) == deal["loan_count"]
    assert 0 <= deal["cdr_annualised"] < 1 and 0 < deal["cpr_annualised"] < 1


def test_cpr_counts_prepayments_only(world: DealWorld) -> None:
    """The report splits each period's principal into scheduled and prepaid (from the loan-level
    tapes); the CPR is the prepaid share of the balance still scheduled, annualised."""
    deal = get(world, f"/pools/{world.slug}")["deal"]
    for n in range(1, PERIODS + 1):
        report = get(world, f"/pools/{world.slug}/report?period={n}")
        c, pool = report["collections"], report["pool"]
        assert 0 <= c["prepayments"] <= c["principal"] and 0 <= c["principal"] - c["prepayments"] <= c["scheduled_principal"]
        smm = c["prepayments"] / (pool["balance_start"] - c["scheduled_principal"])
        assert pool["cpr_monthly"] == pytest.approx(smm, abs=1e-8)
        assert pool["cpr_annualised"] == pytest.approx(1 - (1 - smm) ** 12, abs=1e-8)
        if n == PERIODS:
            assert deal["prepayments_last_period"] == c["prepayments"]
            assert (deal["cpr_last_period"], deal["cpr_annualised"]) == (pool["cpr_monthly"], pool["cpr_annualised"])
    # without the loan-level tapes there is no split: CPR is unknown, not guessed
    tape = world.data / "pools" / world.slug / "periods" / f"{PERIODS}.json"
    saved = tape.read_bytes()
    tape.unlink()
    try:
        fresh = TestClient(create_app(Settings(data_dir=world.data), world.ctx, store=world.store))
        report = fresh.get(f"/pools/{world.slug}/report?period={PERIODS}").json()
        assert report["pool"]["cpr_annualised"] is None and report["collections"]["prepayments"] is None
        assert report["pool"]["cdr_annualised"] is not None
    finally:
        tape.write_bytes(saved)


def test_tranches_equal_the_contracts(world: DealWorld) -> None:
    body = get(world, f"/pools/{world.slug}/tranches")
    state = deals.read_state(world.handle)
    assert body["period"] == PERIODS
    assert [t["balance"] for t in body["items"]] == list(state.tranche_balances)
    assert [t["unpaid_interest"] for t in body["items"]] == list(state.unpaid_interest)
    senior = 0
    for t in body["items"]:
        senior += t["balance"]
        assert t["credit_enhancement_units"] == state.pool_balance + state.reserve - senior
        assert t["address"] == world.handle.tokens[t["index"]].address


def test_every_period_equals_the_chain(world: DealWorld) -> None:
    page = get(world, f"/pools/{world.slug}/periods?limit=2&offset=1")
    assert page["total"] == PERIODS and [p["period"] for p in page["items"]] == [2, 3]
    for n in range(1, PERIODS + 1):
        served = get(world, f"/pools/{world.slug}/periods/{n}")
        onchain: PeriodResult = deals.read_period(world.handle, n=n)
        expected = onchain.as_dict()
        for name, value in expected.items():
            if name == "tranches":
                for got, want in zip(served["tranches"], value, strict=True):
                    assert {k: got[k] for k in want} == want
            else:
                assert served[name] == value, name


def test_missing_period_and_bad_numbers(world: DealWorld) -> None:
    body = get(world, f"/pools/{world.slug}/periods/{PERIODS + 1}", 404)
    assert f"there is no period {PERIODS + 1}" in body["error"]
    assert "period" in get(world, f"/pools/{world.slug}/periods/0", 422)["error"]
    assert get(world, f"/pools/{world.slug}/periods/x", 422)["error"]
    assert get(world, "/pools/no-such-pool/tranches", 404)["error"] == "no pool named 'no-such-pool'"


def test_report_json_and_csv_agree(world: DealWorld) -> None:
    report = get(world, f"/pools/{world.slug}/report?period=3")
    period = get(world, f"/pools/{world.slug}/periods/3")
    assert report["collections"]["total"] == (period["interest_collected"] + period["principal_collected"]
                                              + period["recoveries"])
    assert report["excess_spread"] == (period["interest_collected"] - period["fee_paid"]
                                       - sum(t["interest_paid"] for t in period["tranches"][:-1]))
    assert report["reserve"]["end"] == period["reserve_end"]
    rated_end = sum(t["balance_end"] for t in period["tranches"][:-1])
    assert report["overcollateralisation"]["units"] == period["pool_balance_end"] - rated_end
    latest = get(world, f"/pools/{world.slug}/report")
    assert latest["period"] == PERIODS
    response = world.client.get(f"/pools/{world.slug}/report?period=3&format=csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_key = {(r["section"], r["tranche"], r["field"]): r["value"] for r in rows}
    assert int(by_key[("collections", "", "interest")]) == period["interest_collected"]
    symbol = period["tranches"][0]["symbol"]
    assert int(by_key[("tranche", symbol, "principal_paid")]) == period["tranches"][0]["principal_paid"]
    assert "format" in get(world, f"/pools/{world.slug}/report?format=xml", 422)["error"]
    assert get(world, f"/pools/{world.slug}/report?period=99", 404)["error"]


def test_holdings_carry_principal_cash_and_eligibility(world: DealWorld) -> None:
    chain = world.ctx.chain
    claimed_by_tranche = [0] * len(world.handle.tokens)
    holders = [*world.investors, world.handle.roles.originator]
    for who in holders:
        body = get(world, f"/investors/{who}/holdings")
        tranches = {h["tranche_index"]: h for h in body["holdings"] if "tranche_index" in h}
        position = deals.holdings(world.handle, holder=who)
        for k, token in enumerate(world.handle.tokens):
            if k not in tranches:
                assert position.units[k] == 0
                continue
            h = tranches[k]
            assert int(h["units"]) == position.units[k] == chain.call(token.functions.balanceOf(who))
            assert h["outstanding_principal"] == position.principal[k]
            assert h["claimable"] == position.claimable[k]
            assert h["eligible"] is True and h["frozen"] is False
            claimed_by_tranche[k] += h["claimed"]
    ledger = deals.cash_ledger(world.handle)
    assert claimed_by_tranche == list(ledger.claimed)
    assert sum(ledger.claimed) > 0


def test_a_frozen_investor_shows_as_ineligible(world: DealWorld) -> None:
    chain = world.ctx.chain
    snap = chain.snapshot()
    try:
        deals.freeze(world.handle, investors=[world.investors[0]])
        Indexer(world.ctx, world.store).sync()  # the API answers as of the indexed head
        holding = next(h for h in get(world, f"/investors/{world.investors[0]}/holdings")["holdings"]
                       if h.get("tranche_index") == 0)
        assert holding["frozen"] is True and holding["eligible"] is False
    finally:
        chain.revert(snap)
        Indexer(world.ctx, world.store).sync()  # the freeze's block is gone: the index follows


def test_tranche_transfers_are_traced(world: DealWorld) -> None:
    who = world.investors[0]
    page = get(world, f"/investors/{who}/transfers?limit=1000")
    tranche_tokens = {t.address for t in world.handle.tokens}
    mine = [t for t in page["items"] if t["token"] in tranche_tokens]
    assert mine, "the investor's subscription must show as an incoming tranche transfer"
    units = sum(int(t["amount"]) * (1 if t["direction"] == "in" else -1) for t in mine
                if t["token"] == world.handle.tokens[0].address and t["direction"] != "self")
    assert units == world.ctx.chain.call(world.handle.tokens[0].functions.balanceOf(who))


def test_loans_as_of_a_period(world: DealWorld) -> None:
    files = open_deal(world.ctx)[1]
    tape = json.loads((files.folder / "periods" / "2.json").read_text())
    page = get(world, f"/pools/{world.slug}/loans?period=2&limit=1000")
    assert [loan["status"] for loan in page["items"]] == tape["statuses"]
    assert [loan["outstanding_units"] for loan in page["items"]] == tape["outstanding"]
    first = page["items"][0]
    one = get(world, f"/pools/{world.slug}/loans/{first['loan_id']}?period=2")
    assert one == first
    committed = get(world, f"/pools/{world.slug}/loans/{first['loan_id']}")
    assert committed["outstanding_units"] == files.rows[0].outstanding_units
    assert "no loan-level tape for period 77" in get(world, f"/pools/{world.slug}/loans?period=77", 404)["error"]
    assert "borrower_ref" not in first
