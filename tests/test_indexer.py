"""The indexer and its store: every event, idempotent, resumable, range-shrinking, reorg-safe."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from chainabs import cli
from chainabs.chain import EmbeddedChain, EmbeddedSource, RawLog
from chainabs.chain.abi import event_specs
from chainabs.chain.anvil import Anvil
from chainabs.context import Context, open_context
from chainabs.deploy import Manifest
from chainabs.errors import RpcError
from chainabs.indexer import Indexer, contracts_for
from chainabs.pool import create_pool
from chainabs.store import Store
from chainabs.tapegen import write_tape


@pytest.fixture(scope="module")
def tape_40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tapes") / "t40.csv"
    write_tape(path, 40, 11, "csv")
    return path


@pytest.fixture(scope="module")
def own_chain() -> tuple[EmbeddedChain, Manifest]:
    """A chain of this module's own: indexing compares every event on it, so no other test's
    leftovers may be there."""
    from chainabs.deploy import deploy_core

    fresh = EmbeddedChain()
    return fresh, deploy_core(fresh)


@pytest.fixture
def core(own_chain: tuple[EmbeddedChain, Manifest]) -> Manifest:
    return own_chain[1]


@pytest.fixture
def chain(own_chain: tuple[EmbeddedChain, Manifest]) -> Iterator[EmbeddedChain]:
    snap = own_chain[0].snapshot()
    yield own_chain[0]
    own_chain[0].revert(snap)


@pytest.fixture
def ctx(chain: EmbeddedChain, core: Manifest, tmp_path: Path) -> Context:
    data = tmp_path / "data"
    data.mkdir()
    return Context(data_dir=data, chain=chain, core=core, manifest_path=tmp_path / "deployment.json")


@pytest.fixture
def store(ctx: Context) -> Iterator[Store]:
    s = Store.open(ctx.data_dir, chain_id=ctx.chain.chain_id)
    yield s
    s.close()


def cash(ctx: Context) -> Any:
    return ctx.chain.contract("SettlementToken", ctx.core.contracts["SettlementToken"])


def move_cash(ctx: Context, moves: list[tuple[int, int, int]]) -> None:
    """(from account, to account, amount); from account -1 mints."""
    token = cash(ctx)
    accounts = ctx.chain.accounts
    for sender, receiver, amount in moves:
        if sender < 0:
            ctx.chain.send(token.functions.mint(accounts[receiver], amount))
        else:
            ctx.chain.send(token.functions.transfer(accounts[receiver], amount), sender=accounts[sender])


def table(store: Store, name: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store.path) as conn:
        return sorted(conn.execute(f"SELECT * FROM {name}").fetchall())


def onchain_logs(ctx: Context, addresses: list[str]) -> list[Any]:
    return ctx.chain.w3.eth.get_logs({"fromBlock": ctx.core.deployment_block, "toBlock": "latest",
                                      "address": [to_checksum_address(a) for a in addresses]})


def test_every_event_is_stored_decoded_and_balances_match_the_chain(ctx: Context, store: Store, tape_40: Path) -> None:
    report = create_pool(ctx, tape_path=tape_40, name="Index Me", batch_size=15)
    move_cash(ctx, [(-1, 1, 1_000_000), (1, 2, 250_000), (2, 3, 1), (1, 1, 5)])
    stats = Indexer(ctx, store).sync()

    addresses = [*ctx.core.contracts.values(), report.pool]
    logs = onchain_logs(ctx, addresses)
    assert stats.events == len(logs) == store.counts()["events"]
    assert stats.indexed_head == ctx.chain.block_number() and stats.reorgs == 0
    stored = {(e.block_hash, e.log_index): e for e in store.events(limit=10_000)}
    for lg in logs:
        event = stored[("0x" + bytes(lg["blockHash"]).hex(), lg["logIndex"])]
        assert event.tx_hash == "0x" + bytes(lg["transactionHash"]).hex()
        assert event.address == lg["address"].lower()
    # decoded arguments equal web3's decoding, event by event
    token = ctx.chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    # (earlier tests on the session chain may have committed other pools' loans: compare this pool's)
    committed = [c for c in token.events.LoansCommitted.get_logs(from_block=0) if c["args"]["pool"] == report.pool]
    mine = [e for e in store.events(address=token.address.lower(), event="LoansCommitted")
            if e.args["pool"] == report.pool.lower()]
    assert len(mine) == len(committed) >= 3
    assert all(set(e.args) == {"pool", "loanHashes"} for e in mine)  # the token ids are in the Transfers
    # each batch's token ids: its mint Transfers, indexed just before it in the same transaction;
    # token ids are hashes (> 2**53): JSON strings, exact
    transfers = store.events(address=token.address.lower(), event="Transfer", limit=100_000)
    for event in mine:
        minted = [t for t in transfers if t.tx_hash == event.tx_hash and t.log_index < event.log_index
                  and t.args["to"] == report.pool.lower()]
        assert len(minted) == len(event.args["loanHashes"])
        assert all(int(t.args["tokenId"]) >= 2**53 and isinstance(t.args["tokenId"], str) for t in minted)
    assert [e.args["loanHashes"] for e in mine] == [["0x" + h.hex() for h in c["args"]["loanHashes"]] for c in committed]
    pool = ctx.chain.contract("LoanPool", report.pool)
    (tape_event,) = store.events(address=report.pool.lower(), event="TapeCommitted")
    assert tape_event.args["root"] == report.root and tape_event.args["loanCount"] == report.eligible
    assert tape_event.contract == "index-me/LoanPool"
    assert pool.functions.outstandingUnits().call() == int(tape_event.args["outstandingUnits"])
    # balances: every holder of the settlement token, and the pool's loan tokens
    token_cash = cash(ctx)
    balances = store.balances_of_token(token_cash.address.lower())
    assert balances == {a.lower(): token_cash.functions.balanceOf(a).call()
                        for a in ctx.chain.accounts[1:4]}
    (loans,) = store.holdings(report.pool.lower())
    assert (loans.artifact, loans.kind, loans.amount) == ("LoanToken", "erc721", report.eligible)
    assert len(store.transfers(report.pool.lower(), limit=1000)[1]) == report.eligible
    total, moves = store.transfers(ctx.chain.accounts[1].lower())
    assert total == 3 and [m.amount for m in moves] == [1_000_000, 250_000, 5]


def test_the_embedded_source_reads_exactly_what_get_logs_returns(ctx: Context, tape_40: Path) -> None:
    report = create_pool(ctx, tape_path=tape_40, name="Raw", batch_size=25)
    move_cash(ctx, [(-1, 4, 10), (4, 5, 3)])
    addresses = [a.lower() for a in (*ctx.core.contracts.values(), report.pool)]
    source = EmbeddedSource(ctx.chain)
    raw: list[RawLog] = source.get_logs(0, source.head(), addresses)
    expected = [(lg["blockNumber"], "0x" + bytes(lg["blockHash"]).hex(), "0x" + bytes(lg["transactionHash"]).hex(),
                 lg["logIndex"], lg["address"].lower(), [bytes(t) for t in lg["topics"]], bytes(lg["data"]))
                for lg in onchain_logs(ctx, addresses)]
    assert [(*r[:5], list(r[5]), r[6]) for r in raw] == expected
    assert source.block(source.head()) == ("0x" + bytes(ctx.chain.w3.eth.get_block("latest")["hash"]).hex(),
                                           "0x" + bytes(ctx.chain.w3.eth.get_block("latest")["parentHash"]).hex())
    assert source.block(source.head() + 5) is None


def test_syncing_again_or_rereading_changes_nothing(ctx: Context, store: Store, tape_40: Path) -> None:
    create_pool(ctx, tape_path=tape_40, name="Twice", batch_size=20)
    move_cash(ctx, [(-1, 1, 500), (1, 2, 200)])
    indexer = Indexer(ctx, store)
    first = indexer.sync()
    snapshot = {name: table(store, name) for name in ("events", "transfers", "balances", "blocks")}
    assert first.events > 40 and indexer.sync().events == 0
    # rewind the cursor without deleting anything: the whole range is read again
    store.set_cursor(ctx.core.deployment_block - 1)
    again = indexer.sync()
    assert again.events == 0 and again.blocks > 0
    assert {name: table(store, name) for name in snapshot} == snapshot


def test_a_restarted_indexer_resumes_from_its_cursor(ctx: Context, tape_40: Path, tmp_path: Path) -> None:
    create_pool(ctx, tape_path=tape_40, name="Resume", batch_size=10)
    move_cash(ctx, [(-1, 1, 7), (1, 2, 3)])
    partial = Store(tmp_path / "partial.sqlite")
    first = Indexer(ctx, partial, max_range=2).sync(max_pages=2)
    assert first.pages == 2 and first.indexed_head < ctx.chain.block_number()
    partial.close()
    reopened = Store(tmp_path / "partial.sqlite")
    resumed = Indexer(ctx, reopened, max_range=2).sync()
    assert resumed.indexed_head == ctx.chain.block_number()
    assert resumed.blocks == ctx.chain.block_number() - first.indexed_head  # nothing read twice
    full = Store(tmp_path / "full.sqlite")
    Indexer(ctx, full).sync()
    for name in ("events", "transfers", "balances"):
        assert table(reopened, name) == table(full, name)


def test_the_range_shrinks_when_the_node_refuses_and_grows_back(ctx: Context, store: Store, tape_40: Path) -> None:
    create_pool(ctx, tape_path=tape_40, name="Shrink", batch_size=5)
    move_cash(ctx, [(-1, 1, 9)] * 6)
    indexer = Indexer(ctx, store, max_range=64)
    real = indexer.source.get_logs
    asked: list[tuple[int, int]] = []

    def refusing(start: int, end: int, addresses: Any) -> list[RawLog]:
        asked.append((start, end))
        if end - start + 1 > 3:
            raise RpcError("node refused eth_getLogs: query returned more than 10000 results")
        return real(start, end, addresses)

    indexer.source.get_logs = refusing  # type: ignore[method-assign]
    stats = indexer.sync()
    assert stats.indexed_head == ctx.chain.block_number()
    assert stats.events == len(onchain_logs(ctx, [*ctx.core.contracts.values(),
                                                  *[e.address for e in store.events(event="TapeCommitted")]]))
    sizes = [end - start + 1 for start, end in asked]
    assert sizes[0] == min(64, ctx.chain.block_number() - ctx.core.deployment_block + 1) > 3
    assert max(s for s in sizes if s <= 3) >= 2  # it halved down to what the node accepts
    first_ok = next(i for i, s in enumerate(sizes) if s <= 3)
    assert any(s > 3 for s in sizes[first_ok:])  # and after a few good pages tried a larger range again
    assert store.balances_of_token(cash(ctx).address.lower()) == {ctx.chain.accounts[1].lower(): 54}


def test_a_node_that_refuses_a_single_block_is_an_error(ctx: Context, store: Store) -> None:
    indexer = Indexer(ctx, store)

    def broken(start: int, end: int, addresses: Any) -> list[RawLog]:
        raise RpcError("node refused eth_getLogs: internal error")

    indexer.source.get_logs = broken  # type: ignore[method-assign]
    move_cash(ctx, [(-1, 1, 1)])
    with pytest.raises(RpcError):
        indexer.sync()
    assert store.counts()["events"] == 0


def test_a_node_failing_with_plain_errors_on_large_ranges_still_indexes_everything(ctx: Context, store: Store) -> None:
    move_cash(ctx, [(-1, 1, 3)] * 8)
    indexer = Indexer(ctx, store, page=16)
    real = indexer.source.get_logs

    def refusing(start: int, end: int, addresses: Any) -> list[RawLog]:
        if end - start + 1 > 3:
            raise ValueError({"code": -32005, "message": "block range too large, limit is 3"})
        return real(start, end, addresses)

    indexer.source.get_logs = refusing  # type: ignore[method-assign]
    stats = indexer.sync()
    assert stats.indexed_head == ctx.chain.block_number()
    assert stats.events == len(onchain_logs(ctx, list(ctx.core.contracts.values())))
    assert store.balance(cash(ctx).address, ctx.chain.accounts[1]) == 24


def test_queries_by_holder_balance_head_and_large_integers(chain: EmbeddedChain, core: Manifest, tmp_path: Path) -> None:
    ctx = Context(data_dir=tmp_path, chain=chain, core=core, manifest_path=tmp_path / "m.json")
    big = 2**60 + 7  # beyond JavaScript's exact integers: stored as a decimal string
    move_cash(ctx, [(-1, 1, big), (1, 2, 5), (-1, 3, 9)])
    addresses = contracts_for(ctx)
    assert addresses == {a.lower(): n for n, a in core.contracts.items()}
    store = Store.open(tmp_path)
    assert store.head() is None
    # the positional form: chain, store, {address: artifact}, start block; page = eth_getLogs range
    stats = Indexer(chain, store, addresses, core.deployment_block, page=4).sync()
    assert store.head() == chain.block_number() == stats.indexed_head
    token, a1, a2 = cash(ctx).address, chain.accounts[1], chain.accounts[2]
    assert store.balance(token, a1) == big - 5 and store.balance(token, a2) == 5
    assert store.balance(token, chain.accounts[9]) == 0
    assert store.holdings_by_token(a1) == {token.lower(): big - 5}
    mine = store.events(holder=a1)
    assert [(e.event, e.args["value"]) for e in mine] == [("Transfer", str(big)), ("Transfer", 5)]
    assert [e.args["to"] for e in store.events(token, "Transfer", a2)] == [a2.lower()]
    assert store.events(holder=a1, limit=1, offset=1) == mine[1:]
    assert store.events(event="NoSuchEvent") == []
    store.close()


def test_run_forever_follows_the_chain_until_stopped(ctx: Context, store: Store) -> None:
    indexer = Indexer(ctx, store)
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run_forever, args=(0.05, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while store.head() != ctx.chain.block_number() and time.monotonic() < deadline:
            time.sleep(0.02)
        with indexer.lock:  # the embedded chain is not thread-safe: send under the indexer's lock
            move_cash(ctx, [(-1, 1, 11)])
            head = ctx.chain.block_number()
        while store.head() != head and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert store.balance(cash(ctx).address, ctx.chain.accounts[1]) == 11


def test_a_pool_spanning_many_batches_is_indexed_whole(ctx: Context, store: Store, tmp_path: Path) -> None:
    """One Transfer per loan plus the batch events, across several mint transactions (the ingest
    rate itself is measured by `scripts/bench.py api`, not asserted here)."""
    tape = tmp_path / "t3k.csv"
    write_tape(tape, 3_000, 5, "csv")
    report = create_pool(ctx, tape_path=tape, name="Big", batch_size=700)
    stats = Indexer(ctx, store, max_range=2).sync()
    counts = store.counts()
    assert counts["transfers"] == report.eligible and stats.events == counts["events"] > report.eligible
    assert store.balance(ctx.core.contracts["LoanToken"], report.pool) == report.eligible
    assert stats.pages > 1


@pytest.mark.parametrize("longer", [True, False], ids=["new-branch-longer", "new-branch-shorter"])
def test_a_reorg_removes_the_old_branch_and_reads_the_new_one(ctx: Context, store: Store, longer: bool) -> None:
    move_cash(ctx, [(-1, 1, 1_000)])
    indexer = Indexer(ctx, store)
    indexer.sync()
    fork_block = ctx.chain.block_number()
    snap = ctx.chain.snapshot()
    move_cash(ctx, [(1, 2, 400), (2, 3, 100), (-1, 4, 55)])
    indexer.sync()
    old_txs = {e.tx_hash for e in store.events(from_block=fork_block + 1)}
    assert len(old_txs) == 3
    token = cash(ctx).address.lower()
    assert store.balances_of_token(token)[ctx.chain.accounts[2].lower()] == 300

    ctx.chain.revert(snap)
    if longer:
        move_cash(ctx, [(1, 5, 10), (-1, 6, 3), (5, 6, 1), (-1, 7, 1), (-1, 7, 1)])
    else:
        move_cash(ctx, [(1, 5, 10)])
    stats = indexer.sync()
    assert stats.reorgs == 1 and stats.rolled_back_to == [fork_block]
    assert stats.indexed_head == ctx.chain.block_number()
    new_rows = store.events(from_block=fork_block + 1)
    assert not old_txs & {e.tx_hash for e in new_rows}
    assert len(new_rows) == len([lg for lg in onchain_logs(ctx, [token]) if lg["blockNumber"] > fork_block])
    expected = {a.lower(): cash(ctx).functions.balanceOf(a).call() for a in ctx.chain.accounts[1:8]}
    assert store.balances_of_token(token) == {a: v for a, v in expected.items() if v}
    before = table(store, "balances")
    store.rebuild_balances()
    assert table(store, "balances") == before
    for number in store.block_numbers(stats.indexed_head):
        assert store.block_hash(number) == "0x" + bytes(ctx.chain.w3.eth.get_block(number)["hash"]).hex()


def test_confirmations_hold_back_the_newest_blocks(ctx: Context, store: Store) -> None:
    indexer = Indexer(ctx, store, confirmations=3)
    move_cash(ctx, [(-1, 1, 1), (-1, 1, 2), (-1, 1, 4)])
    stats = indexer.sync()
    head = ctx.chain.block_number()
    assert stats.indexed_head == head - 3
    assert store.balances_of_token(cash(ctx).address.lower()) == {}
    ctx.chain.mine(2)
    assert indexer.sync().indexed_head == head - 1
    assert store.balances_of_token(cash(ctx).address.lower()) == {ctx.chain.accounts[1].lower(): 3}
    ctx.chain.mine(1)
    assert indexer.sync().indexed_head == head
    assert store.balances_of_token(cash(ctx).address.lower()) == {ctx.chain.accounts[1].lower(): 7}


def test_contracts_registered_later_are_backfilled_from_their_deployment(ctx: Context, store: Store) -> None:
    chain = ctx.chain
    admin, holder = chain.accounts[0], chain.accounts[6]
    plain = chain.deploy("PlainERC20", 1_000)
    chain.send(plain.functions.transfer(holder, 250))
    indexer = Indexer(ctx, store)
    indexer.sync()
    assert store.balances_of_token(plain.address.lower()) == {}
    deals = ctx.data_dir / "deals"
    deals.mkdir()
    (deals / "demo.json").write_text(json.dumps({"name": "demo", "contracts": {"PlainERC20:PLN": plain.address}}))
    (deals / "demo-servicing.json").write_text(json.dumps({"period": 3}))  # no contracts: ignored
    (deals / "broken.json").write_text("{not json")
    (deals / "odd.json").write_text(json.dumps({"contracts": {"NoSuchArtifact": plain.address,
                                                              "PlainERC20:bad": "0x1234"}}))
    stats = indexer.sync()
    assert stats.events == 2  # the mint in the constructor and the transfer, read from before the cursor
    assert store.balances_of_token(plain.address.lower()) == {admin.lower(): 750, holder.lower(): 250}
    labels = {c.address: c.label for c in store.contracts()}
    assert labels[plain.address.lower()] == "demo/PlainERC20:PLN"


def test_extra_contracts_can_be_given_directly(chain: EmbeddedChain, core: Manifest, tmp_path: Path) -> None:
    admin = chain.accounts[0]
    plain = chain.deploy("PlainERC20", 99)
    store = Store(tmp_path / "x.sqlite")
    stats = Indexer(chain, store, contracts={plain.address: "PlainERC20"}, start_block=core.deployment_block).sync()
    assert stats.events == 1 and store.holdings(admin.lower())[0].amount == 99
    store.close()


def test_event_decoders_cover_every_artifact() -> None:
    transfer = event_specs("TrancheToken")
    kinds = {spec.name: spec.transfer for spec in transfer.values()}
    assert kinds["Transfer"] == "erc20" and kinds["ForcedTransfer"] is None
    assert {s.name: s.transfer for s in event_specs("LoanToken").values()}["Transfer"] == "erc721"
    deal = {s.name: s for s in event_specs("Deal").values()}
    assert "PeriodReported" in deal and deal["PeriodReported"].data_types  # structs decode to dicts


def test_a_store_for_another_chain_is_rebuilt(tmp_path: Path) -> None:
    store = Store(tmp_path / "i.sqlite", chain_id=1)
    store.set_cursor(42)
    store.close()
    assert Store(tmp_path / "i.sqlite", chain_id=1).cursor() == 42
    assert Store(tmp_path / "i.sqlite", chain_id=2).cursor() is None


def test_cli_index_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tape_40: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cli"
    ctx = open_context(data_dir=data)  # a journaled embedded chain with the core deployment
    create_pool(ctx, tape_path=tape_40, name="Cli Pool", batch_size=40)
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    assert cli.main(["--data-dir", str(data), "--json", "index", "--once", "--confirmations", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["indexed_head"] == out["chain_head"] - 1 and out["events"] > 0
    assert cli.main(["--data-dir", str(data), "index", "--once"]) == 0
    assert capsys.readouterr().out.startswith("indexed ")
    assert (data / "index.sqlite").exists()
    with pytest.raises(SystemExit):
        cli.main(["--data-dir", str(data), "index", "--confirmations", "-1"])


@pytest.mark.anvil
def test_the_same_indexing_against_a_node_through_json_rpc(anvil: Anvil, tmp_path: Path) -> None:
    """The RPC log source on Anvil: events, balances, a reorg (evm_revert), a refused range."""
    from chainabs.chain import RpcChain, RpcSource
    from chainabs.chain.anvil import DEV_KEYS
    from chainabs.deploy import deploy_core

    chain = RpcChain(anvil.url, keys=DEV_KEYS[:3])
    core = deploy_core(chain)
    ctx = Context(data_dir=tmp_path, chain=chain, core=core, manifest_path=tmp_path / "m.json")
    token = chain.contract("SettlementToken", core.contracts["SettlementToken"])
    a, b, c = chain.accounts[:3]
    chain.send(token.functions.mint(a, 100))
    chain.send(token.functions.transfer(b, 30), sender=a)
    store = Store(tmp_path / "i.sqlite")
    indexer = Indexer(ctx, store, max_range=4)
    assert isinstance(indexer.source, RpcSource)
    stats = indexer.sync()
    logs = chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": list(core.contracts.values())})
    assert stats.events == len(logs) and stats.indexed_head == chain.block_number()
    assert store.balances_of_token(token.address.lower()) == {a.lower(): 70, b.lower(): 30}

    fork = chain.block_number()
    snap = chain.snapshot()
    chain.send(token.functions.transfer(c, 5), sender=b)
    indexer.sync()
    chain.revert(snap)
    chain.send(token.functions.transfer(c, 7), sender=a)
    chain.mine(2)
    stats = indexer.sync()
    assert stats.reorgs == 1 and stats.rolled_back_to == [fork]
    assert store.balances_of_token(token.address.lower()) == {a.lower(): 63, b.lower(): 30, c.lower(): 7}

    with pytest.raises(RpcError):
        indexer.source.get_logs(0, 1, ["0x12"])  # the node's own refusal becomes RpcError
    store.close()
