"""`chainabs audit verify` from chain events: PASS on an honest deal, FAIL when the published terms
disagree with what the chain ran, when the index is tampered with, and on a wrong tape or salt."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chainabs import deal as deals
from chainabs.audit import audit, read_deal_events, replay_tokens, verify_deal
from chainabs.cli import main
from chainabs.context import Context, open_context
from chainabs.demo import run_demo
from chainabs.errors import ChainabsError
from chainabs.indexer import Indexer
from chainabs.service import fund, open_deal
from chainabs.store import Store
from chainabs.waterfall import PeriodReport


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Context]:
    """A small demo deal (issued, traded, 4 periods, claims), then a forced transfer and a
    frozen investor, and the data dir's event index."""
    data = tmp_path_factory.mktemp("audit")
    out = run_demo(data_dir=data, loans=150, periods=4, seed=3, say=lambda _: None)
    assert out["verify"] == "PASS"
    ctx = open_context(data_dir=data, create=False)
    handle, _ = open_deal(ctx)
    investors = ctx.chain.accounts[1:6]
    deals.forced_transfer(handle, tranche=0, from_=investors[0], to=investors[1], units=1_000)
    deals.freeze(handle, investors=[investors[2]])
    store = Store.open(data, chain_id=ctx.chain.chain_id)
    Indexer(ctx, store).sync()
    store.close()
    return data, ctx


@pytest.fixture(scope="module")
def data_dir(built: tuple[Path, Context]) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def ctx(built: tuple[Path, Context]) -> Context:
    return built[1]


def by_name(report_checks: list, prefix: str) -> list:
    return [c for c in report_checks if c.name.startswith(prefix)]


@contextmanager
def restored(*paths: Path) -> Iterator[None]:
    """Put the files back as they were, whatever the test did to them."""
    saved = {p: p.read_bytes() for p in paths}
    try:
        yield
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


@contextmanager
def tampered_index(data_dir: Path, statement: str) -> Iterator[None]:
    path = data_dir / "index.sqlite"
    backup = path.with_suffix(".bak")
    shutil.copyfile(path, backup)
    conn = sqlite3.connect(path)
    try:
        changed = conn.execute(statement).rowcount
        conn.commit()
        assert changed >= 1
    finally:
        conn.close()
    try:
        yield
    finally:
        shutil.copyfile(backup, path)


def test_an_honest_deal_passes_every_check(ctx: Context) -> None:
    report = audit(ctx)
    failed = [(c.name, c.figures) for c in report.checks if c.ok is not True]
    assert report.ok and not failed
    names = " ".join(c.name for c in report.checks)
    for prefix in ("parameters:", "units:", "registry:", "waterfall:", "cash:", "claims:", "loans:", "periods:",
                   "index:", "api:"):
        assert prefix in names
    replay = by_name(report.checks, "waterfall: every PeriodReported")[0]
    assert replay.figures["periods"] == 4 and replay.figures["differences"] == 0
    units = by_name(report.checks, "units:")[0]
    assert units.figures["transfers"] > 5 and units.figures["forced"] == 1  # subscriptions, mints, trades
    assert by_name(report.checks, "registry:")[0].figures["frozen now"] == 1
    claims = by_name(report.checks, "claims:")[0]
    assert all(c + o <= p for c, o, p in zip(claims.figures["claimed"], claims.figures["claimable"],
                                              claims.figures["paid"], strict=True))
    assert sum(claims.figures["claimed"]) > 0
    api = by_name(report.checks, "api:")[0]
    assert api.figures["compared"]["holdings"] > 0 and api.figures["index"].startswith("the data dir")


def test_events_rebuild_the_deal_independently_of_state(ctx: Context) -> None:
    """The replayed entitlements and balances agree with the contract for every holder."""
    handle, files = open_deal(ctx)
    ev = read_deal_events(handle, files)
    assert {e.name for e in ev.events} >= {"DealCreated", "Subscribed", "OfferingClosed", "PeriodReported",
                                            "Transfer", "Distributed", "Claimed", "TapeCommitted", "LoansMinted",
                                            "PoolFilled", "InvestorSet", "OrderFilled"}
    assert len(ev.commitments) >= 1 and ev.cash_moves
    books = replay_tokens(ev)
    for k, book in enumerate(books):
        for holder, units in book.balances.items():
            position = deals.holdings(handle, holder=ctx.chain.w3.to_checksum_address(holder))
            assert position.units[k] == units and position.claimable[k] == book.claimable(holder)


def test_periods_that_disagree_with_the_published_terms_fail(data_dir: Path, tmp_path: Path) -> None:
    """The contract runs the same waterfall as the model on the parameters it was deployed
    with, so a servicer cannot post figures the model would compute differently from those
    parameters. What an auditor can catch is a deal run on other terms than it published: the
    verifier replays the periods on the deal file's terms. Here the deal file says a 1.5 %
    servicer fee while the contract charges 1 %, and one more report is posted straight to the
    contract (deal.post_report, bypassing service.post_period's model check). The test works
    on a copy of the data dir: the embedded chain's journal keeps every transaction."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    deal_file = copy / "deals" / "demo-consumer-loans-2026-1.json"
    info = json.loads(deal_file.read_text())
    info["params"]["servicer_fee_bps"] = 150
    deal_file.write_text(json.dumps(info))
    ctx = open_context(data_dir=copy, create=False)
    handle, files = open_deal(ctx)
    state = deals.read_state(handle)
    report = PeriodReport(interest=1_000_000, principal=state.pool_balance // 50, recoveries=0, defaults=0)
    fund(ctx, to=handle.roles.servicer, amount=report.interest + report.principal)
    deals.post_report(handle, report=report, loan_root=b"\x01" * 32, loan_count=1)
    checks = verify_deal(handle, files)

    params = by_name(checks, "parameters:")[0]
    replay = by_name(checks, "waterfall: every PeriodReported")[0]
    assert params.ok is False and "deal file servicer_fee_bps" in params.figures["differences"]
    assert replay.ok is False and replay.figures["differing periods"] == [1, 2, 3, 4, 5]
    first = replay.figures["first"][0]
    assert (first["period"], first["field"]) == (1, "fee_due") and first["model"] > first["chain"] > 0
    assert by_name(checks, "waterfall: the model's carried state")[0].ok is False
    # the chain's own books still balance: only the comparison with the published terms fails
    assert all(c.ok for c in by_name(checks, "cash:")) and by_name(checks, "claims:")[0].ok
    assert all(c.ok for c in by_name(checks, "units:") + by_name(checks, "loans:") + by_name(checks, "periods:"))

    info["params"]["servicer_fee_bps"] = 100  # the true terms: the same chain passes
    deal_file.write_text(json.dumps(info))
    assert all(c.ok for c in verify_deal(handle, files))


@pytest.mark.parametrize("statement, api_fails", [
    ("UPDATE balances SET amount = CAST(CAST(amount AS INTEGER) + 1 AS TEXT) WHERE (holder, token) IN "
     "(SELECT b.holder, b.token FROM balances b JOIN contracts c ON c.address = b.token "
     "WHERE c.artifact = 'TrancheToken' LIMIT 1)", True),
    # the API's claimable is replayed from the index's events: a deleted claim shows there too
    ("DELETE FROM events WHERE (block_hash, log_index) IN "
     "(SELECT block_hash, log_index FROM events WHERE event = 'Claimed' LIMIT 1)", True),
], ids=["balance-updated", "event-deleted"])
def test_a_tampered_index_fails(ctx: Context, data_dir: Path, statement: str, api_fails: bool,
                                capsys: pytest.CaptureFixture[str]) -> None:
    with tampered_index(data_dir, statement):
        report = audit(ctx)
        index = by_name(report.checks, "index:")[0]
        api = by_name(report.checks, "api:")[0]
        assert not report.ok and index.ok is False and index.figures["differences"]
        assert api.ok is (not api_fails)
        assert all(c.ok for c in report.checks if not c.name.startswith(("index:", "api:")))
        capsys.readouterr()
        assert main(["--data-dir", str(data_dir), "audit", "verify", "--no-api"]) == 1
        assert "FAIL  index:" in capsys.readouterr().out
    assert audit(ctx, api=False).ok


def test_tape_and_salt_recompute_the_root_and_a_wrong_one_fails(ctx: Context, data_dir: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    tape = data_dir / "demo-tape.csv"
    salt_file = next((data_dir / "pools").glob("*/salt"))
    good = audit(ctx, tape=tape, salt_file=salt_file, api=False)
    check = by_name(good.checks, "tape:")[0]
    assert good.ok and check.ok and check.figures["hash differs"] == 0
    assert check.figures["root"] == check.figures["loanRoot()"]

    wrong_salt = tmp_path / "salt"
    wrong_salt.write_text("ab" * 32)
    check = by_name(audit(ctx, tape=tape, salt_file=wrong_salt, api=False).checks, "tape:")[0]
    assert check.ok is False and check.figures["hash differs"] == check.figures["committed on chain"]

    lines = tape.read_text().splitlines()
    header = lines[0].split(",")
    committed_ids = {row[0] for row in json.loads(next((data_dir / "pools").glob("*/loans.json")).read_text())}
    row = next(i for i, line in enumerate(lines[1:], 1) if line.split(",")[0] in committed_ids)
    cells = lines[row].split(",")
    rate = header.index("annual_rate")
    cells[rate] = f"{float(cells[rate]) + 0.01:.4f}"
    lines[row] = ",".join(cells)
    edited = tmp_path / "tape.csv"
    edited.write_text("\n".join(lines) + "\n")
    check = by_name(audit(ctx, tape=edited, salt_file=salt_file, api=False).checks, "tape:")[0]
    assert check.ok is False and check.figures["hash differs"] == 1
    assert check.figures["first differing"] == [cells[0]] and check.figures["root"] != check.figures["loanRoot()"]

    capsys.readouterr()
    status = main(["--data-dir", str(data_dir), "--json", "audit", "verify", "--no-api", "--tape", str(tape),
                   "--salt-file", str(wrong_salt)])
    out = capsys.readouterr().out
    document = json.loads(out)
    assert status == 1 and document["verify"] == "FAIL"
    assert all(set(c) >= {"name", "ok", "figures"} for c in document["checks"])
    assert [c["name"] for c in document["checks"] if c["ok"] is False] == [check.name]
    assert salt_file.read_text().strip() not in out and "ab" * 32 not in out

    with pytest.raises(ChainabsError, match="go together"):
        audit(ctx, tape=tape)
    assert main(["--data-dir", str(data_dir), "audit", "verify", "--tape", str(tape),
                 "--salt-file", str(tmp_path / "missing")]) == 1
    assert "cannot read the salt file" in capsys.readouterr().err


def test_cli_prints_every_check_and_exits_0_on_an_honest_deal(data_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "audit", "verify"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 14 and all(line.startswith("PASS") for line in lines)
    assert lines[-1].startswith("PASS: 13 passed, 0 failed, 0 not checked")


def test_api_routes_that_do_not_exist_are_not_checked_rather_than_failed(ctx: Context,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.responses import JSONResponse

    import chainabs.api
    from chainabs.audit import check_api, published_terms

    build = chainabs.api.create_app

    def without_deal_routes(*args: Any, **kwargs: Any) -> Any:
        """The app as it was before the deal routes: their paths answer FastAPI's 404."""
        app = build(*args, **kwargs)

        async def older(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get("path", "")
            if scope["type"] == "http" and (path.endswith("/tranches") or "/periods/" in path):
                await JSONResponse({"error": "Not Found"}, status_code=404)(scope, receive, send)
            else:
                await app(scope, receive, send)
        return older

    monkeypatch.setattr(chainabs.api, "create_app", without_deal_routes)
    handle, files = open_deal(ctx)
    check = check_api(ctx, handle, files, read_deal_events(handle, files), published_terms(files) or handle.params)
    assert check.ok is True and check.figures["compared"]["holdings"] > 0
    assert sorted(check.figures["not checked"]) == ["/pools/{pool}/periods/{n} (no such route)",
                                                    "/pools/{pool}/tranches (no such route)"]
    assert "period fields" not in check.figures["compared"] and "tranche fields" not in check.figures["compared"]
