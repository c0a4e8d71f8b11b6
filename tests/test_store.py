"""The store's read-only mode and the reads the audit uses, on hand-made rows (no chain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainabs.errors import ChainabsError
from chainabs.store import ContractRow, Store

TOKEN, CASH = "0x" + "1" * 40, "0x" + "2" * 40
ALICE, BOB, DEAL = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "d" * 40
ZERO = "0x" + "0" * 40


def block(n: int) -> str:
    return "0x" + f"{n:064x}"


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """An index of 1,500 Transfer events of TOKEN (blocks 1..1500, more than one default page)
    and three settlement transfers into and out of DEAL."""
    store = Store.open(tmp_path, chain_id=1)
    store.add_contracts([ContractRow(TOKEN, "TrancheToken", "A", "erc20", 1, 0),
                         ContractRow(CASH, "SettlementToken", "cash", "erc20", 1, 0)])
    events, transfers = [], []
    for n in range(1, 1501):
        args = {"from": ZERO if n == 1 else ALICE, "to": ALICE if n == 1 else BOB, "value": 10**30 if n == 1 else 1}
        events.append((block(n), 0, n, "0x" + f"{n:064x}", TOKEN, "A", "Transfer", json.dumps(args)))
        transfers.append((block(n), 0, n, "0x" + f"{n:064x}", TOKEN, "erc20", args["from"], args["to"],
                          str(args["value"]), None))
    for n, (sender, receiver) in enumerate([(ALICE, DEAL), (DEAL, BOB), (DEAL, ALICE)], start=10):
        transfers.append((block(n), 1, n, "0x" + f"{n:064x}", CASH, "erc20", sender, receiver, "5", None))
    store.ingest(events=events, transfers=transfers, blocks=[(n, block(n), None) for n in (1, 10, 11, 12, 1500)],
                 synced_to=1500, contracts=[TOKEN, CASH])
    store.close()
    return tmp_path


def test_read_only_reads_everything_and_writes_nothing(index: Path) -> None:
    path = index / "index.sqlite"
    before = path.read_bytes()
    store = Store.open(index, read_only=True)
    try:
        assert {c.address: c.synced_to for c in store.contracts()} == {TOKEN: 1500, CASH: 1500}
        assert store.head() == 1500
        assert len(store.events(TOKEN)) == 1000 and len(store.events(TOKEN, limit=None)) == 1500
        assert [e.block_number for e in store.events(TOKEN, to_block=3, limit=None)] == [1, 2, 3]
        assert store.balances_of_token(TOKEN) == {ALICE: 10**30 - 1499, BOB: 1499}
        assert store.block_hashes() == {n: block(n) for n in (1, 10, 11, 12, 1500)}
        total, moves = store.transfers(DEAL, token=CASH, to_block=11, limit=None)
        assert total == 2 and [(t.from_addr, t.to_addr, t.amount) for t in moves] == [(ALICE, DEAL, 5), (DEAL, BOB, 5)]
        with pytest.raises(ChainabsError, match="read-only"):
            store.set_cursor(1)
        with pytest.raises(ChainabsError, match="read-only"):
            store.rollback_to(0)
    finally:
        store.close()
    assert path.read_bytes() == before


def test_read_only_never_creates_an_index(tmp_path: Path) -> None:
    with pytest.raises(ChainabsError, match="cannot open the index"):
        Store.open(tmp_path / "nowhere", read_only=True)
    assert not (tmp_path / "nowhere").exists()


def test_copy_to_makes_an_independent_copy(index: Path, tmp_path: Path) -> None:
    source = Store.open(index, read_only=True)
    try:
        target = source.copy_to(tmp_path / "copy.sqlite")
    finally:
        source.close()
    copy = Store(target, chain_id=1)
    try:
        assert copy.counts() == {"events": 1500, "transfers": 1503, "balances": 4, "blocks": 5, "contracts": 2}
        copy.rollback_to(10)
        assert copy.head() == 10
    finally:
        copy.close()
    original = Store.open(index, read_only=True)
    try:
        assert original.head() == 1500
    finally:
        original.close()


def test_generation_moves_with_every_write_and_head_time_follows_the_head(index: Path) -> None:
    """What the API's caches are keyed on: a stored page or a rollback changes the generation;
    the head's block time is known only for the head it was stored with."""
    store = Store.open(index)
    try:
        assert store.head_time() is None  # the fixture's page came without a block time
        first = store.generation()
        store.ingest(events=[], transfers=[], blocks=[(1501, block(1501), block(1500))], synced_to=1501,
                     contracts=[TOKEN, CASH], head_time=1_800_000_000)
        assert store.generation() != first and store.head() == 1501 and store.head_time() == 1_800_000_000
        second = store.generation()
        store.ingest(events=[], transfers=[], blocks=[], synced_to=1501, contracts=[], cursor=None)  # a backfill
        assert store.generation() != second and store.head_time() == 1_800_000_000
        third = store.generation()
        assert store.events_of([TOKEN, CASH], to_block=2) == store.events(TOKEN, to_block=2, limit=None)
        store.rollback_to(1500)
        assert store.generation() != third and store.head() == 1500 and store.head_time() is None
    finally:
        store.close()
