"""Operator endpoints that write to the chain: investors, period reports, pools from an upload.

Each is refused without the key (401) and with a wrong one (403); bad input gets a 4xx with a
sentence; and a refused request changes nothing: no block is mined, the chain's journal does
not grow, no pool folder appears.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient

from chainabs import deal as deals
from chainabs.api import Settings, create_app
from chainabs.api.auth import hash_api_key
from chainabs.build import load_artifact
from chainabs.context import Context
from chainabs.datadir import PeriodTape, period_root
from chainabs.demo import DEMO_DEAL
from chainabs.indexer import Indexer
from chainabs.pool import PoolFiles
from chainabs.service import fund
from chainabs.store import Store
from chainabs.tape import STATUSES, parse_tape
from chainabs.tapegen import write_tape
from support import demo_deal

KEY = "operator key for the tests"
AUTH = {"Authorization": f"Bearer {KEY}"}
NEW = [to_checksum_address(f"0x{i:040x}") for i in range(0xA1, 0xA4)]  # fresh addresses, no holdings


@dataclass
class World:
    ctx: Context
    handle: deals.DealHandle
    client: TestClient
    slug: str
    store: Store
    data: Path
    demo_tape: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    deal = demo_deal(tmp_path_factory, "operator", loans=120)
    ctx, data = deal.ctx, deal.data
    fund(ctx, to=deal.handle.roles.servicer, amount=10**15)  # the servicer's cash for the reports below
    client = TestClient(create_app(Settings(data_dir=data, api_key_hash=hash_api_key(KEY)), ctx, store=deal.store))
    yield World(ctx, deal.handle, client, deal.files.folder.name, deal.store, data, data / "demo-tape.csv")
    deal.store.close()


class Unchanged:
    """Asserts that a block of requests mined nothing, journaled nothing and made no pool."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _fingerprint(self) -> tuple[Any, ...]:
        ctx = self.world.ctx
        pools = sorted(p.name for p in (self.world.data / "pools").iterdir())
        return ctx.chain.block_number(), ctx.chain.journal.path.stat().st_size, pools  # type: ignore[attr-defined]

    def __enter__(self) -> Unchanged:
        self.before = self._fingerprint()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert self._fingerprint() == self.before


def refused(world: World, path: str, status: int, *, headers: dict[str, str] | None = AUTH, **kwargs: Any) -> str:
    response = world.client.post(path, headers=headers or {}, **kwargs)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "Traceback" not in message
    return str(message)


def test_every_operator_write_needs_the_key(world: World) -> None:
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/operator/investors", {"json": {"action": "add", "addresses": NEW[:1]}}),
        (f"/operator/pools/{world.slug}/periods",
         {"json": {"interest": 1, "principal": 0, "recoveries": 0, "defaults": 0}}),
        ("/operator/pools", {"files": {"tape": ("t.csv", b"x"), "deal": ("d.toml", DEMO_DEAL.encode())}}),
    ]
    with Unchanged(world):
        for path, kwargs in requests:
            response = world.client.post(path, **kwargs)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert refused(world, path, 403, headers={"Authorization": "Bearer not-the-key"}, **kwargs)
    assert not deals.is_eligible(world.handle, investor=NEW[0])


def test_add_freeze_and_unfreeze_investors(world: World) -> None:
    registry = world.handle.registry.functions
    call = world.ctx.chain.call
    body = world.client.post("/operator/investors", headers=AUTH, json={
        "action": "add", "addresses": NEW[1:3], "eligible_until": "2031-06-30", "jurisdiction": 276}).json()
    assert body["pool"] == world.slug and body["eligible_until"] == 1_940_544_000  # 2031-06-30 00:00 UTC
    (tx,) = body["transactions"]
    receipt = world.ctx.chain.w3.eth.get_transaction_receipt(tx["tx_hash"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == tx["block_number"]
    for address in NEW[1:3]:
        assert tuple(call(registry.investor(address))) == (1_940_544_000, 276, False)
        assert deals.is_eligible(world.handle, investor=address)
    response = world.client.post("/operator/investors", headers=AUTH,
                                 json={"action": "freeze", "addresses": [NEW[1]], "pool": world.slug})
    assert response.status_code == 200, response.text
    assert tuple(call(registry.investor(NEW[1]))) == (1_940_544_000, 276, True)
    assert not deals.is_eligible(world.handle, investor=NEW[1]) and deals.is_eligible(world.handle, investor=NEW[2])
    assert world.client.post("/operator/investors", headers=AUTH,
                             json={"action": "unfreeze", "addresses": [NEW[1]]}).status_code == 200
    assert deals.is_eligible(world.handle, investor=NEW[1])
    Indexer(world.ctx, world.store).sync()  # the registry's events reach the index
    frozen = world.store.events(world.handle.registry.address.lower(), "InvestorFrozen")
    assert [(e.args["investor"].lower(), e.args["frozen"]) for e in frozen][-2:] == [(NEW[1].lower(), True),
                                                                                     (NEW[1].lower(), False)]


@pytest.mark.parametrize("body, status, words", [
    ({"action": "add", "addresses": ["0x12"]}, 422, "malformed investor address '0x12'"),
    ({"action": "add", "addresses": ["0x" + "0" * 40]}, 422, "zero address"),
    ({"action": "add", "addresses": [NEW[0], NEW[0].lower()]}, 422, "listed twice"),
    ({"action": "add", "addresses": ["0x2B5AD5c4795c026514f8317c7a215E218DcCD6cf"]}, 422, "checksum"),
    ({"action": "add", "addresses": [NEW[0]], "eligible_until": "2001-01-01"}, 422, "not after the chain's"),
    ({"action": "freeze", "addresses": [NEW[0]], "eligible_until": "2031-01-01"}, 422, "go with action 'add'"),
    ({"action": "add", "addresses": [NEW[0]], "jurisdiction": 0}, 422, "jurisdiction"),
    ({"action": "add", "addresses": []}, 422, "addresses"),
    ({"action": "add", "addresses": [NEW[0]] * 401}, 422, "addresses"),
    ({"action": "promote", "addresses": [NEW[0]]}, 422, "action"),
    ({"action": "add", "addresses": [NEW[0]], "role": "admin"}, 422, "role"),
    ({"action": "add", "addresses": [NEW[0]], "pool": "no-such-pool"}, 404, "no pool named 'no-such-pool'"),
])
def test_bad_investor_requests_change_nothing(world: World, body: dict[str, Any], status: int, words: str) -> None:
    with Unchanged(world):
        assert words in refused(world, "/operator/investors", status, json=body)
    assert not deals.is_eligible(world.handle, investor=NEW[0])


def _a_good_report(world: World) -> dict[str, int]:
    state = deals.read_state(world.handle)
    return {"interest": state.pool_balance // 120, "principal": state.pool_balance // 50, "recoveries": 0,
            "defaults": state.pool_balance // 400}


def test_post_a_period_report(world: World) -> None:
    before = deals.read_state(world.handle)
    report = _a_good_report(world)
    response = world.client.post(f"/operator/pools/{world.slug}/periods", headers=AUTH, json=report)
    assert response.status_code == 200, response.text
    body = response.json()
    n = before.period + 1
    onchain = deals.read_period(world.handle, n=n).as_dict()
    assert body["matches_model"] is True and body["pool"] == world.slug
    assert {k: body[k] for k in onchain} == onchain
    assert body["period"] == n and body["interest_collected"] == report["interest"]
    assert body["pool_balance_end"] == before.pool_balance - report["principal"] - report["defaults"]
    Indexer(world.ctx, world.store).sync()
    served = world.client.get(f"/pools/{world.slug}/periods/{n}").json()
    assert served["pool_balance_end"] == body["pool_balance_end"] and served["fee_paid"] == body["fee_paid"]


def _loan_level_tape(world: World, *, drop: int = 0) -> tuple[str, list[int], list[int]]:
    """This period's loan-level tape as CSV text: the demo tape with the first pool loan defaulted and
    the second's balance halved (the first `drop` pool loans left out); and the statuses and
    balances it gives, in the pool's loan order."""
    rows = PoolFiles(world.data / "pools" / world.slug).rows
    lines = world.demo_tape.read_text().splitlines()
    columns = lines[0].split(",")
    status, balance = columns.index("status"), columns.index("outstanding_principal")
    pooled = {r.loan_id: i for i, r in enumerate(rows)}
    kept = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        i = pooled.get(cells[0])
        if i is not None and i < drop:
            continue
        if i == 0:
            cells[status] = "defaulted"
        elif i == 1:
            cents = round(float(cells[balance]) * 100) // 2
            cells[balance] = f"{cents // 100}.{cents % 100:02d}"
        kept.append(",".join(cells))
    text = "\n".join(kept) + "\n"
    by_id = {x.loan_id: x for x in parse_tape(text.encode()).loans}
    statuses = [by_id[r.loan_id].status for r in rows if r.loan_id in by_id]
    outstanding = [by_id[r.loan_id].outstanding_units for r in rows if r.loan_id in by_id]
    return text, statuses, outstanding


def test_post_a_period_with_its_loan_level_tape(world: World) -> None:
    """The loan-level tape goes the way `chainabs report --loan-tape` takes: its root is the
    period's loan_root on chain and the tape is kept in the pool's folder for proofs."""
    text, statuses, outstanding = _loan_level_tape(world)
    files = PoolFiles(world.data / "pools" / world.slug)
    assert statuses[0] == STATUSES.index("defaulted") and outstanding[1] < files.rows[1].outstanding_units
    root = period_root(files.rows, statuses, outstanding)
    response = world.client.post(f"/operator/pools/{world.slug}/periods", headers=AUTH,
                                 json={**_a_good_report(world), "loan_tape": text})
    assert response.status_code == 200, response.text
    n = response.json()["period"]
    names = [c["name"] for c in next(i for i in load_artifact("Deal")["abi"] if i.get("name") == "period")
             ["outputs"][0]["components"]]
    onchain = dict(zip(names, world.ctx.chain.call(world.handle.deal.functions.period(n)), strict=True))
    assert bytes(onchain["loan_root"]) == root and onchain["loan_count"] == len(files.rows)
    assert files.dir.read_period(n) == PeriodTape(period=n, root="0x" + root.hex(), statuses=statuses,
                                                  outstanding=outstanding)


def test_bad_loan_level_tapes_change_nothing(world: World) -> None:
    path = f"/operator/pools/{world.slug}/periods"
    good = _a_good_report(world)
    short, _, _ = _loan_level_tape(world, drop=1)
    with Unchanged(world):
        assert "loan_tape: 1 pool loans missing" in refused(world, path, 422, json={**good, "loan_tape": short})
        response = world.client.post(path, headers=AUTH, json={**good, "loan_tape": short.replace(",EUR,", ",EURO,")})
        assert response.status_code == 422 and response.json()["errors"][0]["column"] == "currency"
        escaped = json.dumps({**good, "loan_tape": short.replace("current", "x\ud800", 1)}).encode()  # a lone surrogate
        assert "loan tape rejected" in refused(world, path, 422, content=escaped,
                                               headers={**AUTH, "Content-Type": "application/json"})
        assert "loan_tape" in refused(world, path, 422, json={**good, "loan_tape": 5})


def test_bad_period_reports_change_nothing(world: World) -> None:
    state = deals.read_state(world.handle)
    path = f"/operator/pools/{world.slug}/periods"
    good = _a_good_report(world)
    servicer_cash = world.ctx.chain.call(world.handle.settlement.functions.balanceOf(world.handle.roles.servicer))
    with Unchanged(world):
        assert "defaults" in refused(world, path, 422, json={**good, "defaults": -1})
        assert "interest" in refused(world, path, 422, json={**good, "interest": 1.5})
        assert "interest" in refused(world, path, 422, json={**good, "interest": "100"})
        assert "recoveries" in refused(world, path, 422, json={k: v for k, v in good.items() if k != "recoveries"})
        assert "refused by the deal's rules" in refused(
            world, path, 422, json={**good, "principal": state.pool_balance, "defaults": 1})
        assert f"holds {servicer_cash}" in refused(world, path, 409, json={**good, "interest": servicer_cash + 1})
        assert "no pool named" in refused(world, "/operator/pools/nope/periods", 404, json=good)
        assert refused(world, path, 422, content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert deals.read_state(world.handle) == state


def _tape_bytes(world: World, prefix: str, n: int, tmp_path: Path) -> bytes:
    path = tmp_path / "upload.csv"
    write_tape(path, n, 11, "csv")
    return re.sub(r"(?m)^L(\d{7}),", prefix + r"\1,", path.read_text()).encode()


def _deal_toml(name: str) -> bytes:
    return DEMO_DEAL.replace('name = "Demo Consumer Loans 2026-1"', f'name = "{name}"').encode()


def test_create_a_pool_from_an_upload(world: World, tmp_path: Path) -> None:
    tape = _tape_bytes(world, "U", 40, tmp_path)
    files = {"tape": ("loans.csv", tape), "deal": ("deal.toml", _deal_toml("Uploaded Loans"))}
    response = world.client.post("/operator/pools", headers=AUTH, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["slug"] == "uploaded-loans" and body["loans"] == 40 and body["eligible"] > 30
    pool = world.ctx.chain.contract("LoanPool", body["pool"])
    assert "0x" + bytes(world.ctx.chain.call(pool.functions.loanRoot())).hex() == body["root"]
    assert world.ctx.chain.call(pool.functions.mintedCount()) == body["eligible"]
    served = world.client.get("/pools/uploaded-loans").json()
    assert served["address"] == body["pool"] and served["loan_count"] == body["eligible"]
    folder = world.data / "pools" / "uploaded-loans"
    kept = "".join(p.read_text() for p in folder.rglob("*") if p.is_file() and p.suffix == ".json")
    borrowers = [line.split(",")[1] for line in tape.decode().splitlines()[1:]]
    assert borrowers and not any(b in kept for b in borrowers)  # neither the tape nor its borrower references
    with Unchanged(world):
        assert "already exists" in refused(world, "/operator/pools", 409, files=files)


def test_bad_uploads_change_nothing(world: World, tmp_path: Path) -> None:
    good_tape = _tape_bytes(world, "V", 10, tmp_path)
    deal = _deal_toml("Refused Loans")
    broken = good_tape.replace(b",EUR,", b",EURO,", 1)
    with Unchanged(world):
        response = world.client.post("/operator/pools", headers=AUTH,
                                     files={"tape": ("loans.csv", broken), "deal": ("deal.toml", deal)})
        assert response.status_code == 422
        assert response.json()["errors"][0]["column"] == "currency" and response.json()["errors"][0]["line"] == 2
        demo_tape = world.demo_tape.read_bytes()  # loans this chain has tokenised already
        message = refused(world, "/operator/pools", 422, files={"tape": ("t.csv", demo_tape), "deal": ("d.toml", deal)})
        assert "already tokenised on chain" in message
        assert "deal file" in refused(world, "/operator/pools", 422,
                                      files={"tape": ("t.csv", good_tape), "deal": ("d.toml", b"[pool]\nname = 3\n")})
        bad_roles = deal + b'\n[roles]\ncompliance = "0x12"\n'  # the deal's parties: checked here too
        assert "roles.compliance: must be an address" in refused(
            world, "/operator/pools", 422, files={"tape": ("t.csv", good_tape), "deal": ("d.toml", bad_roles)})
        assert "not UTF-8" in refused(world, "/operator/pools", 422,
                                      files={"tape": ("t.csv", good_tape), "deal": ("d.toml", b"\xff\xfe")})
        assert "tape" in refused(world, "/operator/pools", 422, files={"deal": ("d.toml", deal)})
    assert not (world.data / "pools" / "refused-loans").exists()


@pytest.mark.parametrize("name, words", [
    ("..", "'..' is only dots"), (".", "'.' is only dots"), ("a/../b", "'a/../b' contains a path separator ('/')"),
    ("/etc", "'/etc' contains a path separator ('/')"), ("a\x00b", "contains a control character ('\\x00')"),
    ("x" * 129, "must be 1 to 128 characters"), ("🙂" * 100_000, "(100000 characters)"),
], ids=["dotdot", "dot", "traversal", "absolute", "nul", "129", "100000"])
def test_pool_names_that_are_not_one_safe_folder_are_refused(world: World, tmp_path: Path, name: str,
                                                              words: str) -> None:
    """Issue 14, finding 10: a pool named `..` wrote its files into the data dir's root."""
    deal = DEMO_DEAL.replace('"Demo Consumer Loans 2026-1"', json.dumps(name, ensure_ascii=False)).encode()
    files = {"tape": ("loans.csv", _tape_bytes(world, "N", 5, tmp_path)), "deal": ("deal.toml", deal)}
    root = sorted(p.name for p in world.data.iterdir())
    with Unchanged(world):
        message = refused(world, "/operator/pools", 422, files=files)
    assert message.startswith("deal file: pool.name: ") and words in message and len(message) < 300, message
    assert sorted(p.name for p in world.data.iterdir()) == root
