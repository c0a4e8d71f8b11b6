"""The audit API: every endpoint against a pool on the embedded chain, auth, and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs import merkle
from chainabs.api import Settings, create_app
from chainabs.api.auth import hash_api_key
from chainabs.api.deps import DealCatalog, get_deals
from chainabs.chain import EmbeddedChain
from chainabs.context import Context
from chainabs.deploy import Manifest
from chainabs.figures import DealInfo, TrancheInfo
from chainabs.indexer import Indexer
from chainabs.pool import create_pool, find_pool
from chainabs.store import Store
from chainabs.tape import read_tape
from chainabs.tapegen import write_tape

API_KEY = "correct horse battery staple"


@dataclass
class World:
    ctx: Context
    store: Store
    client: TestClient
    pool: str
    tape: Path
    investors: list[str]

    @property
    def chain(self) -> EmbeddedChain:
        return self.ctx.chain  # type: ignore[return-value]

    def cash(self) -> Any:
        return self.chain.contract("SettlementToken", self.ctx.core.contracts["SettlementToken"])


@pytest.fixture(scope="module")
def world(session_chain: EmbeddedChain, core: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One pool and a few cash transfers, indexed; the chain is put back after the module."""
    snap = session_chain.snapshot()
    root = tmp_path_factory.mktemp("api")
    tape = root / "tape.csv"
    write_tape(tape, 60, 5, "csv")
    data = root / "data"
    data.mkdir()
    ctx = Context(data_dir=data, chain=session_chain, core=core, manifest_path=root / "deployment.json")
    report = create_pool(ctx, tape_path=tape, name="API Pool", batch_size=25)
    a, b, c = session_chain.accounts[1:4]
    cash = session_chain.contract("SettlementToken", core.contracts["SettlementToken"])
    session_chain.send(cash.functions.mint(a, 1_000_000))
    session_chain.send(cash.functions.transfer(b, 250_000), sender=a)
    session_chain.send(cash.functions.transfer(a, 1), sender=b)
    session_chain.send(cash.functions.mint(c, 2**200))  # beyond int64 and JSON's safe integers
    store = Store.open(data, chain_id=session_chain.chain_id)
    Indexer(ctx, store).sync()
    app = create_app(Settings(data_dir=data, api_key_hash=hash_api_key(API_KEY), max_body_bytes=1024), ctx,
                     store=store)
    with TestClient(app) as client:
        yield World(ctx, store, client, report.pool, tape, [a, b, c])
    store.close()
    session_chain.revert(snap)


def get(world: World, url: str, status: int = 200) -> Any:
    response = world.client.get(url)
    assert response.status_code == status, (url, response.status_code, response.text)
    return response.json()


# -- health, pools ------------------------------------------------------------------------------

def test_health_reports_chain_and_index_heads(world: World) -> None:
    body = get(world, "/health")
    head = world.chain.block_number()
    assert body == {"status": "ok", "chain_id": world.chain.chain_id, "chain_head": head, "indexed_head": head,
                    "lag": 0, "confirmations": 0}


def test_pools_answer_by_name_and_by_address_with_the_chains_figures(world: World) -> None:
    listing = get(world, "/pools")
    assert listing["total"] == 1 and listing["items"][0]["address"] == world.pool
    by_name = get(world, "/pools/api-pool?as_of=2026-10-01")
    by_address = get(world, f"/pools/{world.pool}?as_of=2026-10-01")
    assert by_name == by_address == get(world, f"/pools/{world.pool.lower()}?as_of=2026-10-01")
    assert get(world, "/pools/API%20Pool?as_of=2026-10-01") == by_name
    pool = world.chain.contract("LoanPool", world.pool)
    assert by_name["minted"] == pool.functions.mintedCount().call() == pool.functions.loanCount().call()
    assert by_name["loan_count"] == by_name["minted"] and by_name["filled"] is True
    assert by_name["root"] == by_name["root_on_chain"] == "0x" + pool.functions.loanRoot().call().hex()
    assert by_name["outstanding_units"] == pool.functions.outstandingUnits().call()
    rows = find_pool(world.ctx.data_dir, "API Pool").rows
    weight = sum(r.outstanding_units for r in rows)
    assert by_name["wac_bps"] == round(sum(r.rate_bps * r.outstanding_units for r in rows) / weight, 2)
    as_of_day = (date(2026, 10, 1) - date(1970, 1, 1)).days
    assert by_name["as_of"] == "2026-10-01"
    assert by_name["wam_months"] == round(sum(max(0, r.maturity_day - as_of_day) * r.outstanding_units for r in rows) / weight / (365.25 / 12), 2)
    assert sum(b["count"] for b in by_name["by_status"].values()) == len(rows)
    assert sum(b["outstanding_units"] for b in by_name["by_product"].values()) == weight
    assert by_name["deal"] is None
    later = get(world, "/pools/api-pool?as_of=2027-06-01")
    assert later["wam_months"] < by_name["wam_months"]


def test_unknown_pools_are_404_and_bad_dates_422(world: World) -> None:
    for pool in ("nope", "0x" + "ab" * 20, "0x123", "..", "%2E%2E", "-"):
        if pool != "..":  # the client resolves /pools/.. to /, the investor portal's page
            assert "error" in get(world, f"/pools/{pool}", 404)
        assert "error" in get(world, f"/pools/{pool}/loans", 404)
    body = get(world, "/pools/api-pool?as_of=yesterday", 422)
    assert body["error"].startswith("query parameter 'as_of'")


# -- loans, proofs ------------------------------------------------------------------------------

def test_loans_page_through_the_committed_rows_without_borrower_references(world: World) -> None:
    rows = find_pool(world.ctx.data_dir, "API Pool").rows
    first = get(world, "/pools/api-pool/loans?limit=7")
    assert first["total"] == len(rows) and len(first["items"]) == 7
    second = get(world, "/pools/api-pool/loans?limit=7&offset=7")
    assert [x["loan_id"] for x in first["items"] + second["items"]] == [r.loan_id for r in rows[:14]]
    everything = get(world, "/pools/api-pool/loans?limit=1000")["items"]
    assert len(everything) == len(rows)
    assert get(world, f"/pools/api-pool/loans?offset={len(rows)}")["items"] == []
    loan = everything[3]
    row = rows[3]
    assert {k: loan[k] for k in row._fields} == row._asdict()
    pool = find_pool(world.ctx.data_dir, "API Pool").record.address
    assert loan["token_id"] == hex(merkle.token_id(pool, row.loan_id))
    assert get(world, f"/pools/api-pool/loans/{row.loan_id}") == loan
    text = json.dumps(everything)
    assert "borrower_ref" not in text
    for tape_loan in read_tape(world.tape).loans[:20]:
        assert tape_loan.borrower_ref not in text


def test_pagination_bounds_are_422(world: World) -> None:
    for query in ("limit=0", "limit=1001", "limit=-1", "offset=-1", "limit=abc", "offset=1e3",
                  "offset=99999999999999999999999999999", "limit=1.5"):
        body = get(world, f"/pools/api-pool/loans?{query}", 422)
        assert body["error"].startswith("query parameter"), body
    assert get(world, "/pools/api-pool/loans?limit=1000")["limit"] == 1000


def test_proofs_verify_on_chain(world: World) -> None:
    files = find_pool(world.ctx.data_dir, "API Pool")
    for row in files.rows[:2] + files.rows[-1:]:
        body = get(world, f"/pools/{world.pool}/loans/{row.loan_id}/proof")
        expected = files.proof(row.loan_id).as_dict()
        assert body == {**expected, "verified_on_chain": True}
        assert merkle.verify(bytes.fromhex(body["leaf"][2:]), [bytes.fromhex(p[2:]) for p in body["proof"]],
                             bytes.fromhex(body["root"][2:]))
    assert "error" in get(world, "/pools/api-pool/loans/NOT-A-LOAN/proof", 404)
    assert "error" in get(world, "/pools/api-pool/loans/NOT-A-LOAN", 404)


# -- investors ----------------------------------------------------------------------------------

def test_holdings_equal_the_chains_balances(world: World) -> None:
    cash = world.cash()
    for investor in world.investors:
        body = get(world, f"/investors/{investor}/holdings")
        assert body["address"] == investor and body["indexed_head"] == world.chain.block_number()
        (holding,) = body["holdings"]
        assert holding["token"] == cash.address and holding["contract"] == "SettlementToken"
        assert holding["kind"] == "erc20" and int(holding["amount"]) == cash.functions.balanceOf(investor).call()
    assert get(world, f"/investors/{world.investors[2]}/holdings")["holdings"][0]["amount"] == str(2**200)
    loans = get(world, f"/investors/{world.pool}/holdings")["holdings"]
    token = world.chain.contract("LoanToken", world.ctx.core.contracts["LoanToken"])
    assert [(h["contract"], h["kind"], int(h["amount"])) for h in loans] == [
        ("LoanToken", "erc721", token.functions.balanceOf(world.pool).call())]
    nobody = "0x" + "12" * 20
    assert get(world, f"/investors/{nobody}/holdings")["holdings"] == []
    assert get(world, f"/investors/{world.investors[0].lower()}/holdings")["address"] == world.investors[0]


def test_malformed_addresses_are_422_with_a_clear_message(world: World) -> None:
    bad_checksum = world.investors[0][:-1] + ("a" if world.investors[0][-1] != "a" else "b")
    bad_checksum = bad_checksum[:2] + bad_checksum[2:].swapcase() if bad_checksum[2:].islower() else bad_checksum
    for address in ("0x12", "hello", "0x" + "g" * 40, "0x" + "1" * 41, "1" * 42, bad_checksum):
        for tail in ("holdings", "transfers"):
            body = get(world, f"/investors/{quote(address)}/{tail}", 422)
            assert "address" in body["error"], body
    body = get(world, f"/investors/{world.investors[0]}/transfers?token=0x1", 422)
    assert body["error"] == "malformed token address '0x1': expected 0x followed by 40 hex digits"


def test_transfers_trace_every_move_of_an_investor(world: World) -> None:
    a, b, _ = world.investors
    cash = world.cash()
    body = get(world, f"/investors/{a}/transfers")
    assert body["total"] == 3
    moves = [(t["direction"], t["from"], t["to"], t["amount"]) for t in body["items"]]
    zero = "0x" + "0" * 40
    assert moves == [("in", zero, a, "1000000"), ("out", a, b, "250000"), ("in", b, a, "1")]
    onchain = cash.events.Transfer.get_logs(from_block=0, argument_filters={"from": a})
    assert body["items"][1]["tx_hash"] == "0x" + bytes(onchain[0]["transactionHash"]).hex()
    page = get(world, f"/investors/{a}/transfers?limit=1&offset=1")
    assert page["total"] == 3 and [t["amount"] for t in page["items"]] == ["250000"]
    only_cash = get(world, f"/investors/{a}/transfers?token={cash.address.lower()}")
    assert only_cash["total"] == 3
    other = get(world, f"/investors/{a}/transfers?token={world.ctx.core.contracts['LoanToken']}")
    assert other["total"] == 0 and other["items"] == []
    pool = get(world, f"/investors/{world.pool}/transfers?limit=5")
    assert pool["total"] == get(world, "/pools/api-pool")["loan_count"]
    assert all(t["kind"] == "erc721" and t["token_id"] is not None for t in pool["items"])


# -- operator endpoint, auth, body limit ------------------------------------------------------------

def test_operator_endpoints_need_the_api_key(world: World) -> None:
    client = world.client
    response = client.post("/operator/index")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.post("/operator/index", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401
    assert client.post("/operator/index", headers={"Authorization": "Bearer "}).status_code == 401
    wrong = client.post("/operator/index", headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 403 and "error" in wrong.json()
    world.chain.send(world.cash().functions.mint(world.investors[1], 5))
    ok = client.post("/operator/index", headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200 and ok.json()["events"] == 1
    assert API_KEY not in ok.text and API_KEY not in wrong.text
    assert get(world, "/health")["lag"] == 0


def test_operator_endpoints_without_a_configured_key_are_forbidden(world: World) -> None:
    app = create_app(Settings(data_dir=world.ctx.data_dir), world.ctx, store=world.store)
    with TestClient(app) as client:
        assert client.post("/operator/index", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 403


def test_oversized_bodies_are_413(world: World) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    response = world.client.post("/operator/index", content=b"x" * 2048, headers=headers)
    assert response.status_code == 413 and "limit of 1024 bytes" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: streamed
        for _ in range(8):
            yield b"y" * 200

    response = world.client.post("/operator/index", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert world.client.post("/operator/index", content=b"{}", headers=headers).status_code == 200
    bad = world.client.post("/operator/index", content=b"{}", headers={**headers, "Content-Length": "abc"})
    assert bad.status_code == 400


def test_unknown_routes_and_methods_answer_json(world: World) -> None:
    assert get(world, "/nope", 404) == {"error": "Not Found"}
    assert world.client.delete("/pools").status_code == 405


def test_docs_and_openapi_are_served(world: World) -> None:
    assert world.client.get("/docs").status_code == 200
    spec = get(world, "/openapi.json")
    for path in ("/health", "/pools", "/pools/{pool}", "/pools/{pool}/loans", "/pools/{pool}/loans/{loan_id}",
                 "/pools/{pool}/loans/{loan_id}/proof", "/investors/{address}/holdings",
                 "/investors/{address}/transfers", "/operator/index"):
        assert path in spec["paths"], path


def test_pools_and_holdings_show_what_the_deal_catalog_gives(world: World) -> None:
    """A pool's `deal` and a holder's positions come from the app's deal catalog (a real deal's:
    test_api_deal.py); a test swaps the catalog through FastAPI's dependency_overrides."""
    tranches = [TrancheInfo(0, "Class A", "TA", "0x" + "a" * 40, 900, 500),
                TrancheInfo(1, "Equity", "TE", "0x" + "e" * 40, 100, 0)]
    deal = DealInfo(slug="api-pool", name="API Deal", pool=world.pool.lower(), deal="0x" + "d" * 40, registry=None,
                    exchange=None, tranches=tranches, servicer_fee_bps=50, reserve_target_bps=100, initial_reserve=10,
                    default_trigger_bps=500)

    class Deals(DealCatalog):
        def for_pool(self, pool_slug: str) -> DealInfo | None:
            return deal if pool_slug == "api-pool" else None

        def holdings(self, *, store: Store, address: str, holdings: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**h, "claimable": 0, "eligible": True} for h in holdings]

    app = create_app(Settings(data_dir=world.ctx.data_dir), world.ctx, store=world.store)
    app.dependency_overrides[get_deals] = lambda: Deals(world.ctx.data_dir)
    with TestClient(app) as client:
        figures = client.get("/pools/api-pool").json()["deal"]
        assert figures["name"] == "API Deal" and figures["periods"] == 0 and figures["pool_factor"] == 1.0
        assert [t["symbol"] for t in figures["tranches"]] == ["TA", "TE"]
        assert figures["overcollateralisation_units"] == 100  # the equity tranche's face
        assert sum(b["count"] for b in figures["delinquency"].values()) == get(world, "/pools/api-pool")["loan_count"]
        assert client.get("/pools/api-pool/tranches").json()["items"][1]["residual"] is True
        (holding,) = client.get(f"/investors/{world.investors[0]}/holdings").json()["holdings"]
        assert holding["claimable"] == 0 and holding["eligible"] is True
    assert get(world, "/pools/api-pool")["deal"] is None  # the app's own catalog: no deal in this data dir


def test_odd_urls_are_4xx(world: World) -> None:
    for url in ("/pools/%FF", "/investors/%FF/holdings", "/pools/api-pool/loans/%FF%FE/proof", "/pools/" + "a" * 5000,
                "/pools/api-pool/loans?limit=%00", "/investors/0x%00/transfers", "/pools/api-pool?as_of=99999-01-01",
                "/pools/api-pool/loans/" + "L" * 65, "/investors/" + "0x" + "0" * 40 + "/transfers?token="):
        response = world.client.get(url)
        assert 400 <= response.status_code < 500 and "error" in response.json(), (url, response.text)
    assert get(world, "/pools/api-pool?as_of=0001-01-01")["as_of"] == "0001-01-01"


# -- random input never gets a 500 ------------------------------------------------------------------

_segment = st.one_of(
    st.text(min_size=0, max_size=60),
    st.from_regex(r"0x[0-9a-fA-F]{0,45}", fullmatch=True),
    st.sampled_from(["api-pool", "API Pool", "..", ".", "%00", "0x" + "0" * 40, "L0000001", "\x00", "🙂" * 3]),
)
_query = st.one_of(st.integers(min_value=-(2**80), max_value=2**80).map(str), st.text(max_size=20),
                   st.sampled_from(["", "1e309", "NaN", "-0", "0x10", "1" * 400]))
_templates = [
    "/pools/{s}", "/pools/{s}/loans?limit={q}&offset={r}", "/pools/api-pool/loans/{s}",
    "/pools/api-pool/loans/{s}/proof", "/pools/{s}/loans/{s}", "/investors/{s}/holdings",
    "/investors/{s}/transfers?limit={q}&offset={r}", "/investors/0x" + "0" * 40 + "/transfers?token={q}",
    "/pools?limit={q}&offset={r}&as_of={q}", "/pools/api-pool?as_of={q}", "/health?x={q}",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(_templates), segment=_segment, q=_query, r=_query)
def test_random_paths_and_queries_never_get_a_500(world: World, template: str, segment: str, q: str, r: str) -> None:
    url = template.format(s=quote(segment, safe=""), q=quote(q, safe=""), r=quote(r, safe=""))
    response = world.client.get(url)
    assert response.status_code < 500, (url, response.status_code, response.text)
    assert "error" in response.json() if response.status_code >= 400 else True


# -- chainabs serve ---------------------------------------------------------------------------------

def test_serve_runs_the_api_with_the_indexer_and_never_prints_the_key(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from chainabs.chain.anvil import free_port
    from chainabs.context import open_context

    data = tmp_path / "served"
    tape = tmp_path / "t.csv"
    write_tape(tape, 20, 9, "csv")
    ctx = open_context(data_dir=data)
    create_pool(ctx, tape_path=tape, name="Served")
    head = ctx.chain.block_number()
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    port = free_port()
    code = "import sys; from chainabs import cli; sys.exit(cli.main(sys.argv[1:]))"
    env = {**os.environ, "SERVE_KEY": API_KEY}
    proc = subprocess.Popen([sys.executable, "-c", code, "--data-dir", str(data), "--debug", "serve", "--port",
                             str(port), "--api-key-env", "SERVE_KEY"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                if body.get("indexed_head") == head:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert body.get("indexed_head") == head and body["lag"] == 0, body
        url = f"http://127.0.0.1:{port}/operator/index"
        assert httpx.post(url, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        assert httpx.post(url, headers={"Authorization": "Bearer nope"}).status_code == 403
        assert httpx.get(f"http://127.0.0.1:{port}/pools/served").json()["minted"] > 0
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -15), output  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "Application shutdown complete" in output
    assert API_KEY not in output and hash_api_key(API_KEY) not in output
