"""The event index: chainabs contract events in one SQLite file in the data dir.

Tables (addresses and hashes are lower-case 0x-hex text; token amounts are decimal text,
because uint256 values do not fit SQLite's 64-bit INTEGER):

    meta(key PK, value)                 schema version and chain id of the index; `generation`,
                                        bumped by every write (a reader's cache key), and
                                        `head_time`, the indexed head's block and timestamp
    contracts(address PK, artifact, label, kind, start_block, synced_to)
                                        what is indexed; synced_to is each contract's cursor
    cursor(name PK, block_number)       'head': every block up to here is indexed
    blocks(number PK, hash, parent_hash)
                                        hashes of indexed blocks (those with events, and the
                                        last block of every page), compared on each sync
    events(block_hash, log_index, block_number, tx_hash, address, contract, event, args_json,
           PRIMARY KEY (block_hash, log_index))
                                        every decoded event: the audit trail
    transfers(block_hash, log_index, block_number, tx_hash, token, kind, from_addr, to_addr,
              amount, token_id, PRIMARY KEY (block_hash, log_index))
                                        ERC-20 and ERC-721 Transfer events, for per-address queries
    balances(holder, token, amount, PRIMARY KEY (holder, token))
                                        derived from transfers in the same transaction that
                                        stores them; ERC-721 balances count tokens

Rows are keyed by (block hash, log index), so re-reading a range is idempotent: a row already
present is neither stored twice nor counted twice in a balance. `rollback_to` removes
everything after a block and takes the removed transfers back out of the balances, all in one
transaction. The file is in WAL mode: the service's readers never wait for the indexer.

Readers that derive figures from the index (chainabs.figures) key what they derive on
`generation()`: it changes with every page the indexer stores and every rollback, so a cache
built at one generation is exact until the next.

`Store.open(data_dir, read_only=True)` reads an index without ever writing to it (no schema
migration, no WAL switch, SQLite's `mode=ro`): the audit reads the operator's index this way.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainabs.datadir import DataDir
from chainabs.errors import ChainabsError, Conflict, NotFound

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
HEAD = "head"
ZERO_ADDRESS = "0x" + "0" * 40

# (block_hash, log_index, block_number, tx_hash, address, contract, event, args_json)
EventRow = tuple[str, int, int, str, str, str, str, str]
# (block_hash, log_index, block_number, tx_hash, token, kind, from, to, amount, token_id)
TransferRow = tuple[str, int, int, str, str, str, str, str, str, str | None]
# (number, hash, parent_hash or None)
BlockRow = tuple[int, str, str | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (
    address TEXT PRIMARY KEY, artifact TEXT NOT NULL, label TEXT NOT NULL, kind TEXT NOT NULL,
    start_block INTEGER NOT NULL, synced_to INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, block_number INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent_hash TEXT);
CREATE TABLE IF NOT EXISTS events (
    block_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block_number INTEGER NOT NULL,
    tx_hash TEXT NOT NULL, address TEXT NOT NULL, contract TEXT NOT NULL, event TEXT NOT NULL,
    args_json TEXT NOT NULL, PRIMARY KEY (block_hash, log_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_address ON events (address, event, block_number);
CREATE INDEX IF NOT EXISTS events_by_block ON events (block_number);
CREATE TABLE IF NOT EXISTS transfers (
    block_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block_number INTEGER NOT NULL,
    tx_hash TEXT NOT NULL, token TEXT NOT NULL, kind TEXT NOT NULL, from_addr TEXT NOT NULL,
    to_addr TEXT NOT NULL, amount TEXT NOT NULL, token_id TEXT,
    PRIMARY KEY (block_hash, log_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transfers_from ON transfers (from_addr, block_number, log_index);
CREATE INDEX IF NOT EXISTS transfers_to ON transfers (to_addr, block_number, log_index);
CREATE INDEX IF NOT EXISTS transfers_by_block ON transfers (block_number);
CREATE TABLE IF NOT EXISTS balances (
    holder TEXT NOT NULL, token TEXT NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (holder, token)) WITHOUT ROWID;
"""
_TABLES = ("meta", "contracts", "cursor", "blocks", "events", "transfers", "balances")


@dataclass(frozen=True)
class ContractRow:
    address: str
    artifact: str
    label: str
    kind: str          # "erc20", "erc721" or "other"
    start_block: int
    synced_to: int


@dataclass(frozen=True)
class Balance:
    token: str
    artifact: str | None
    label: str | None
    kind: str | None
    amount: int


@dataclass(frozen=True)
class Transfer:
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    token: str
    artifact: str | None
    label: str | None
    kind: str
    from_addr: str
    to_addr: str
    amount: int
    token_id: int | None


@dataclass(frozen=True)
class Event:
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    address: str
    contract: str
    event: str
    args: dict[str, Any]


class Store:
    """The index file: one writer connection (serialised by a lock) and one reader per thread.

    With `read_only` there is no writer: the file must exist, is opened with SQLite's
    `mode=ro`, and every write raises ChainabsError. Reads of a damaged file raise sqlite3.Error.
    """

    def __init__(self, path: str | Path, *, chain_id: int | None = None, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_guard = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        if read_only:
            self._reader()  # fail now, not at the first read, when the file cannot be opened
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._migrate(chain_id)

    @classmethod
    def open(cls, data_dir: str | Path, *, chain_id: int | None = None, read_only: bool = False) -> Store:
        """The index of a data dir: `<data_dir>/index.sqlite`."""
        return cls(DataDir(Path(data_dir)).index_path, chain_id=chain_id, read_only=read_only)

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.read_only and not self.path.is_file():
            raise NotFound(f"cannot open the index {self.path}: no such file")
        try:
            if self.read_only:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=30.0)
            else:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        except sqlite3.Error as exc:
            raise ChainabsError(f"cannot open the index {self.path}: {exc}") from None
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a crash of the process
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_guard:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._writer is None:
            raise Conflict(f"the index {self.path} is open read-only")
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._readers_guard:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()

    def _migrate(self, chain_id: int | None) -> None:
        """Create the schema; an index of another schema version or chain is derived data,
        so it is dropped and rebuilt rather than trusted."""
        with self._transaction() as conn:
            existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            meta: dict[str, str] = {}
            if "meta" in existing:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            stale = meta and (meta.get("schema_version") != str(SCHEMA_VERSION)
                              or (chain_id is not None and meta.get("chain_id") not in (None, str(chain_id))))
            if stale:
                log.warning("index %s is for schema %s / chain %s: rebuilding it", self.path,
                            meta.get("schema_version"), meta.get("chain_id"))
                for table in _TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            if chain_id is not None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('chain_id', ?)", (str(chain_id),))

    # -- cursor, blocks, contracts -----------------------------------------------------------

    def cursor(self, name: str = HEAD) -> int | None:
        row = self._reader().execute("SELECT block_number FROM cursor WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, block_number: int, name: str = HEAD) -> None:
        with self._transaction() as conn:
            _bump_generation(conn)
            conn.execute("INSERT OR REPLACE INTO cursor VALUES (?, ?)", (name, block_number))

    def block_hash(self, number: int) -> str | None:
        row = self._reader().execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        return None if row is None else str(row[0])

    def block_hashes(self) -> dict[int, str]:
        """{number: hash} of every stored block."""
        return {int(n): str(h) for n, h in self._reader().execute("SELECT number, hash FROM blocks")}

    def block_numbers(self, upto: int) -> list[int]:
        """Numbers of the stored blocks at or below `upto`, ascending."""
        rows = self._reader().execute("SELECT number FROM blocks WHERE number <= ? ORDER BY number", (upto,))
        return [int(r[0]) for r in rows]

    def contracts(self) -> list[ContractRow]:
        rows = self._reader().execute("SELECT address, artifact, label, kind, start_block, synced_to FROM contracts "
                                      "ORDER BY start_block, address")
        return [ContractRow(*r) for r in rows]

    def add_contracts(self, rows: Iterable[ContractRow]) -> None:
        """Register contracts (ignored when already registered)."""
        with self._transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO contracts VALUES (?, ?, ?, ?, ?, ?)",
                             [(r.address, r.artifact, r.label, r.kind, r.start_block, r.synced_to) for r in rows])

    # -- writing -----------------------------------------------------------------------------

    def ingest(self, *, events: Sequence[EventRow], transfers: Sequence[TransferRow], blocks: Sequence[BlockRow],
               synced_to: int, contracts: Sequence[str], cursor: str | None = HEAD,
               head_time: int | None = None) -> int:
        """Store one page of decoded events in one transaction and move the cursors.

        `contracts` are the addresses the page covered: their `synced_to` becomes `synced_to`;
        so does the `cursor` (None leaves it: a backfill of newly registered contracts).
        `head_time`: the timestamp of block `synced_to`, kept as the indexed head's time when
        the head cursor moves. Returns how many events were new.
        """
        with self._transaction() as conn:
            _bump_generation(conn)
            if cursor == HEAD:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('head_time', ?)",
                             (f"{synced_to}:{'' if head_time is None else head_time}",))
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", events)
            inserted = conn.total_changes - before
            if transfers:
                new = _new_rows(conn, transfers)
                conn.executemany("INSERT OR IGNORE INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", new)
                _apply_deltas(conn, _deltas(new, sign=1))
            conn.executemany(
                "INSERT INTO blocks VALUES (?, ?, ?) ON CONFLICT(number) DO UPDATE SET hash = excluded.hash, "
                "parent_hash = COALESCE(excluded.parent_hash, CASE WHEN blocks.hash = excluded.hash "
                "THEN blocks.parent_hash END)", blocks)
            conn.executemany("UPDATE contracts SET synced_to = ? WHERE address = ? AND synced_to < ?",
                             [(synced_to, a, synced_to) for a in contracts])
            if cursor is not None:
                conn.execute("INSERT OR REPLACE INTO cursor VALUES (?, ?)", (cursor, synced_to))
        return inserted

    def rollback_to(self, block_number: int) -> int:
        """Forget everything after `block_number` (a reorg's fork point) in one transaction:
        events, transfers and their effect on balances, block hashes; cursors move back.
        Returns the number of events removed."""
        with self._transaction() as conn:
            _bump_generation(conn)
            conn.execute("DELETE FROM meta WHERE key = 'head_time'")
            removed = conn.execute(
                "SELECT block_hash, log_index, block_number, tx_hash, token, kind, from_addr, to_addr, amount, "
                "token_id FROM transfers WHERE block_number > ?", (block_number,)).fetchall()
            _apply_deltas(conn, _deltas(removed, sign=-1))
            conn.execute("DELETE FROM transfers WHERE block_number > ?", (block_number,))
            before = conn.total_changes
            conn.execute("DELETE FROM events WHERE block_number > ?", (block_number,))
            count = conn.total_changes - before
            conn.execute("DELETE FROM blocks WHERE number > ?", (block_number,))
            conn.execute("UPDATE cursor SET block_number = ? WHERE block_number > ?", (block_number, block_number))
            conn.execute("UPDATE contracts SET synced_to = max(?, start_block - 1) WHERE synced_to > ?",
                         (block_number, block_number))
        return count

    def rebuild_balances(self) -> None:
        """Recompute every balance from the transfers table (an audit of the incremental ones)."""
        with self._transaction() as conn:
            _bump_generation(conn)
            conn.execute("DELETE FROM balances")
            rows = conn.execute("SELECT block_hash, log_index, block_number, tx_hash, token, kind, from_addr, "
                                "to_addr, amount, token_id FROM transfers").fetchall()
            _apply_deltas(conn, _deltas(rows, sign=1))

    # -- reading -----------------------------------------------------------------------------

    def holdings(self, holder: str) -> list[Balance]:
        """Every non-zero token balance of `holder` (lower-case address)."""
        rows = self._reader().execute(
            "SELECT b.token, c.artifact, c.label, c.kind, b.amount FROM balances b "
            "LEFT JOIN contracts c ON c.address = b.token WHERE b.holder = ? ORDER BY c.label, b.token", (holder,))
        return [Balance(token, artifact, label, kind, int(amount)) for token, artifact, label, kind, amount in rows]

    def holdings_by_token(self, holder: str) -> dict[str, int]:
        """{token: amount} of every non-zero balance of `holder` (lower-case addresses)."""
        rows = self._reader().execute("SELECT token, amount FROM balances WHERE holder = ?", (holder.lower(),))
        return {token: int(amount) for token, amount in rows}

    def balance(self, token: str, holder: str) -> int:
        """`holder`'s balance of `token` as of the indexed head (0 when none)."""
        row = self._reader().execute("SELECT amount FROM balances WHERE holder = ? AND token = ?",
                                     (holder.lower(), token.lower())).fetchone()
        return 0 if row is None else int(row[0])

    def claimed(self, token: str, holder: str) -> int:
        """Base units `holder` has claimed from `token` (its Claimed events)."""
        rows = self._reader().execute(
            "SELECT args_json FROM events WHERE address = ? AND event = 'Claimed' "
            "AND json_extract(args_json, '$.holder') = ?", (token.lower(), holder.lower()))
        return sum(int(json.loads(r[0])["amount"]) for r in rows)

    def generation(self) -> int:
        """A number that changes whenever the index does (every stored page, every rollback):
        what a cache of figures derived from the index is keyed on."""
        row = self._reader().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return 0 if row is None else int(row[0])

    def head_time(self) -> int | None:
        """The timestamp of the indexed head's block, None when the index does not know it
        (before the first sync, right after a rollback, or an index written before it was kept)."""
        row = self._reader().execute("SELECT value FROM meta WHERE key = 'head_time'").fetchone()
        if row is None:
            return None
        block, _, stamp = str(row[0]).partition(":")
        return int(stamp) if stamp and int(block) == self.cursor() else None

    def events_of(self, addresses: Sequence[str], *, to_block: int | None = None) -> list[Event]:
        """Every decoded event of the contracts at `addresses` (lower-case), in chain order."""
        if not addresses:
            return []
        marks = ", ".join("?" * len(addresses))
        bound = " AND block_number <= ?" if to_block is not None else ""
        rows = self._reader().execute(
            "SELECT block_number, block_hash, log_index, tx_hash, address, contract, event, args_json FROM events "
            f"WHERE address IN ({marks}){bound} ORDER BY block_number, log_index",
            (*addresses, *(() if to_block is None else (to_block,))))
        return [_event(r) for r in rows]

    def head(self) -> int | None:
        """The indexed head: every block up to it is indexed (None before the first sync)."""
        return self.cursor()

    def balances_of_token(self, token: str) -> dict[str, int]:
        """{holder: amount} of every non-zero balance of `token` (lower-case addresses)."""
        rows = self._reader().execute("SELECT holder, amount FROM balances WHERE token = ?", (token,))
        return {holder: int(amount) for holder, amount in rows}

    def transfers(self, address: str, *, limit: int | None = 100, offset: int = 0, token: str | None = None,
                  to_block: int | None = None) -> tuple[int, list[Transfer]]:
        """Transfers from or to `address` (up to block `to_block`), oldest first, and how many
        there are in all; `limit` None: every one."""
        where_token = (" AND token = ?" if token else "") + (" AND block_number <= ?" if to_block is not None else "")
        extra: tuple[Any, ...] = ((token,) if token else ()) + ((to_block,) if to_block is not None else ())
        union = (f"SELECT * FROM transfers WHERE from_addr = ?{where_token} UNION ALL "
                 f"SELECT * FROM transfers WHERE to_addr = ? AND from_addr <> ?{where_token}")
        params = (address, *extra, address, address, *extra)
        conn = self._reader()
        total = int(conn.execute(f"SELECT count(*) FROM ({union})", params).fetchone()[0])
        rows = conn.execute(
            f"SELECT t.block_number, t.block_hash, t.log_index, t.tx_hash, t.token, c.artifact, c.label, t.kind, "
            f"t.from_addr, t.to_addr, t.amount, t.token_id FROM ({union}) t LEFT JOIN contracts c "
            f"ON c.address = t.token ORDER BY t.block_number, t.log_index LIMIT ? OFFSET ?",
            (*params, -1 if limit is None else limit, offset)).fetchall()
        return total, [_transfer(r) for r in rows]

    def events(self, address: str | None = None, event: str | None = None, holder: str | None = None, *,
               from_block: int = 0, to_block: int | None = None, limit: int | None = 1000,
               offset: int = 0) -> list[Event]:
        """Decoded events in chain order, filtered by contract address, event name and `holder`
        (the Transfer events from or to that address); `limit` None: every one."""
        clauses: list[str] = ["e.block_number >= ?"]
        params: list[Any] = [from_block]
        if to_block is not None:
            clauses.append("e.block_number <= ?")
            params.append(to_block)
        if address is not None:
            clauses.append("e.address = ?")
            params.append(address.lower())
        if event is not None:
            clauses.append("e.event = ?")
            params.append(event)
        source = "events e"
        if holder is not None:
            holder = holder.lower()
            source = ("(SELECT block_hash, log_index FROM transfers WHERE from_addr = ? UNION "
                      "SELECT block_hash, log_index FROM transfers WHERE to_addr = ?) t "
                      "JOIN events e ON e.block_hash = t.block_hash AND e.log_index = t.log_index")
            params = [holder, holder, *params]
        rows = self._reader().execute(
            "SELECT e.block_number, e.block_hash, e.log_index, e.tx_hash, e.address, e.contract, e.event, e.args_json "
            f"FROM {source} WHERE {' AND '.join(clauses)} ORDER BY e.block_number, e.log_index LIMIT ? OFFSET ?",
            (*params, -1 if limit is None else limit, offset))
        return [_event(r) for r in rows]

    def copy_to(self, target: str | Path) -> Path:
        """A consistent copy of the index in `target` (SQLite's online backup), e.g. for a
        reader that must not touch the original."""
        target = Path(target)
        dst = sqlite3.connect(target)
        try:
            self._reader().backup(dst)
        finally:
            dst.close()
        return target

    def counts(self) -> dict[str, int]:
        conn = self._reader()
        return {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("events", "transfers", "balances", "blocks", "contracts")}


# -- rows into records ------------------------------------------------------------------------

def _transfer(row: Sequence[Any]) -> Transfer:
    """A `transfers` row joined with its token's contract row, as `Store.transfers` selects it."""
    number, block_hash, index, tx, token, artifact, label, kind, sender, receiver, amount, token_id = row
    return Transfer(number, block_hash, index, tx, token, artifact, label, kind, sender, receiver, int(amount),
                    None if token_id is None else int(token_id))


def _event(row: Sequence[Any]) -> Event:
    """An `events` row, as `Store.events` selects it."""
    number, block_hash, index, tx, address, contract, event, args_json = row
    return Event(number, block_hash, index, tx, address, contract, event, json.loads(args_json))


def _bump_generation(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE "
                 "SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)")


# -- balance arithmetic (Python ints: exact for any uint256) -----------------------------------

def _new_rows(conn: sqlite3.Connection, rows: Sequence[TransferRow]) -> list[TransferRow]:
    """The rows of a page not yet stored, so a re-read never counts a transfer twice."""
    low = min(r[2] for r in rows)
    high = max(r[2] for r in rows)
    present = set(conn.execute("SELECT block_hash, log_index FROM transfers WHERE block_number BETWEEN ? AND ?",
                               (low, high)).fetchall())
    if not present:
        return list(rows)
    seen: set[tuple[str, int]] = set()
    out = []
    for r in rows:
        key = (r[0], r[1])
        if key not in present and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _deltas(rows: Iterable[Sequence[Any]], *, sign: int) -> dict[tuple[str, str], int]:
    deltas: dict[tuple[str, str], int] = {}
    get = deltas.get
    for r in rows:
        token, sender, receiver, amount = r[4], r[6], r[7], int(r[8]) * sign
        if sender != ZERO_ADDRESS:
            key = (sender, token)
            deltas[key] = get(key, 0) - amount
        if receiver != ZERO_ADDRESS:
            key = (receiver, token)
            deltas[key] = get(key, 0) + amount
    return deltas


def _apply_deltas(conn: sqlite3.Connection, deltas: dict[tuple[str, str], int]) -> None:
    changed = {k: d for k, d in deltas.items() if d}
    if not changed:
        return
    current: dict[tuple[str, str], int] = {}
    query = "SELECT amount FROM balances WHERE holder = ? AND token = ?"
    for key in changed:
        row = conn.execute(query, key).fetchone()
        if row is not None:
            current[key] = int(row[0])
    upserts, deletes = [], []
    for key, delta in changed.items():
        amount = current.get(key, 0) + delta
        if amount < 0:
            log.warning("balance of %s in %s would be negative (%d): the index is missing transfers", *key, amount)
        if amount == 0:
            deletes.append(key)
        else:
            upserts.append((*key, str(amount)))
    conn.executemany("DELETE FROM balances WHERE holder = ? AND token = ?", deletes)
    conn.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", upserts)
