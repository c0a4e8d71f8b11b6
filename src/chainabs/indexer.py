"""Read every chainabs contract event into the store, page by page, surviving reorgs.

Which contracts: the core deployment (LoanToken, SettlementToken), every pool folder of the data
dir (`pools/*/pool.json`), every `deals/*.json` with a `contracts` mapping of
`ArtifactName[:label]` to address, and any extra `{address: "ArtifactName[:label]"}` given by
the caller. Each contract is read from its deployment block; one registered later is
backfilled up to the cursor before it joins the others.

How: `eth_getLogs` over a block range for all addresses at once, starting at `max_range`
blocks, halving the range whenever the node refuses (too many results, range too large, a
timeout: any error of the log source) and doubling it back after a few successes. Before each page the stored
hash of the cursor block is compared with the chain's; on a mismatch the fork point is found
by bisecting the stored block hashes, everything after it is removed in one transaction
(`Store.rollback_to`) and the range is read again. Only blocks at least `confirmations` deep
are read.

The logs come from the chain's own log source (`Chain.log_source()`): raw `eth_getLogs` on a
node, receipts read straight from py-evm on the embedded chain; both decoded here by the
artifacts' event tables (`chainabs.chain.abi`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import is_address

from chainabs.build import artifact_names, load_artifact
from chainabs.chain import Chain, LogSource, RawLog
from chainabs.chain.abi import event_specs, token_kind
from chainabs.context import Context
from chainabs.datadir import DataDir, DealContracts, read_json
from chainabs.errors import ChainabsError, InvalidInput, ReorgDetected, RpcError
from chainabs.store import HEAD, BlockRow, ContractRow, EventRow, Store, TransferRow

log = logging.getLogger(__name__)

DEFAULT_RANGE = 2_000
GROW_AFTER = 3            # successful pages before the range doubles again


# -- what to index -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Watched:
    address: str      # lower-case
    artifact: str
    label: str
    start_block: int


def _split_name(name: str) -> str:
    return name.split(":", 1)[0]


def discover_contracts(ctx: Context) -> list[Watched]:
    """The core contracts, every pool of the data dir and every deal file's contracts.

    Files that cannot be read are skipped with a warning: a half-written deal file must not
    stop the indexer.
    """
    known = set(artifact_names())
    core_start = int(ctx.core.deployment_block)
    found: dict[str, Watched] = {}

    def add(address: Any, name: str, label: str, start: int, origin: str) -> None:
        artifact = _split_name(name)
        if not isinstance(address, str) or not is_address(address):
            log.warning("%s: %s has no valid address (%r); not indexed", origin, name, address)
            return
        if artifact not in known:
            log.warning("%s: no artifact named %r; %s not indexed", origin, artifact, address)
            return
        found.setdefault(address.lower(), Watched(address.lower(), artifact, label, start))

    for name, address in sorted(ctx.core.contracts.items()):
        add(address, name, name, core_start, str(ctx.manifest_path))
    data = DataDir(ctx.data_dir)
    pool_starts: dict[str, int] = {}
    for folder in data.pools():
        try:
            record = folder.read_record()
        except (OSError, ValueError, TypeError) as exc:
            log.warning("%s unreadable (%s); not indexed", folder.record_path, exc)
            continue
        if record is None or not record.address:
            continue
        start = int(record.deployment_block or core_start)
        pool_starts[record.address.lower()] = start
        add(record.address, "LoanPool", f"{folder.slug}/LoanPool", start, str(folder.record_path))
    for path in data.deal_files():
        try:
            deal = DealContracts.from_json(path.stem, read_json(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s unreadable (%s); not indexed", path, exc)
            continue
        start = deal.deployment_block if deal.deployment_block is not None else \
            pool_starts.get(deal.pool.lower(), core_start)
        for name, address in sorted(deal.contracts.items()):
            add(address, name, f"{path.stem}/{name}", start, str(path))
    return list(found.values())


def contracts_for(ctx: Context) -> dict[str, str]:
    """`{address: artifact name}` of every contract `discover_contracts` finds (lower-case
    addresses): the core deployment, the data dir's pools and its deal files' contracts."""
    return {w.address: w.artifact for w in discover_contracts(ctx)}


# -- the indexer -------------------------------------------------------------------------------

@dataclass
class SyncStats:
    events: int = 0            # new events stored
    blocks: int = 0            # blocks covered
    seconds: float = 0.0
    pages: int = 0
    reorgs: int = 0
    indexed_head: int | None = None
    chain_head: int | None = None
    range: int = 0             # page size in blocks at the end
    rolled_back_to: list[int] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "blocks": self.blocks, "seconds": round(self.seconds, 3),
                "events_per_second": round(self.events_per_second, 1), "pages": self.pages, "reorgs": self.reorgs,
                "rolled_back_to": self.rolled_back_to, "indexed_head": self.indexed_head,
                "chain_head": self.chain_head, "range": self.range}


class Indexer:
    """Keeps a Store in step with the chain. Thread-safe: one sync at a time.

    `lock` guards every read of the chain; the service shares it with its request handlers
    because the embedded chain is not safe to use from two threads at once.
    """

    def __init__(self, source: Context | Chain, store: Store, contracts: Mapping[str, str] | None = None,
                 start_block: int | None = None, *, confirmations: int = 0, page: int | None = None,
                 max_range: int = DEFAULT_RANGE, lock: threading.RLock | None = None) -> None:
        """`source`: a Context (its core deployment, pools and deal files are discovered on every
        sync) or a bare Chain. `contracts`: extra `{address: "ArtifactName[:label]"}`, read from
        `start_block` (default: the core deployment block, else 0). `page` (alias `max_range`):
        the largest block range asked of `eth_getLogs`."""
        if page is not None:
            max_range = page
        if confirmations < 0 or max_range < 1:
            raise InvalidInput("confirmations must be >= 0 and the block range >= 1")
        self.ctx = source if isinstance(source, Context) else None
        self.chain: Chain = source.chain if isinstance(source, Context) else source
        self.store = store
        self.source: LogSource = self.chain.log_source()
        self.extra = dict(contracts or {})
        self.confirmations = confirmations
        self.max_range = max_range
        self.range = max_range
        self.start_block = start_block
        self.lock = lock or threading.RLock()
        self.stop_event = threading.Event()
        self._successes = 0
        self._sync_lock = threading.Lock()

    # which contracts
    def watched(self) -> list[Watched]:
        out = discover_contracts(self.ctx) if self.ctx is not None else []
        seen = {w.address for w in out}
        default_start = self.start_block if self.start_block is not None else (
            int(self.ctx.core.deployment_block) if self.ctx is not None else 0)
        for address, name in self.extra.items():
            if not is_address(address):
                raise InvalidInput(f"extra contract {address!r} is not an address")
            artifact = _split_name(name)
            load_artifact(artifact)
            if address.lower() not in seen:
                out.append(Watched(address.lower(), artifact, name, default_start))
        return out

    def _register(self) -> list[ContractRow]:
        known = {c.address for c in self.store.contracts()}
        new = [ContractRow(w.address, w.artifact, w.label, token_kind(w.artifact), w.start_block, w.start_block - 1)
               for w in self.watched() if w.address not in known]
        if new:
            self.store.add_contracts(new)
            log.info("indexing %d new contract(s): %s", len(new), ", ".join(f"{c.label} {c.address}" for c in new))
        return self.store.contracts()

    # chain reads, under the shared lock
    def _head(self) -> int:
        with self.lock:
            return self.source.head()

    def _block(self, number: int) -> tuple[str, str] | None:
        with self.lock:
            return self.source.block(number)

    def _timestamp(self, number: int, block_hash: str) -> int | None:
        """The timestamp of block `number` if it still has `block_hash` (the store keeps the
        indexed head's, so that readers never ask the chain what time the index is at)."""
        try:
            with self.lock:
                block = self.chain.w3.eth.get_block(number)
        except Exception as exc:  # a missing time is not worth failing the page for
            log.info("no timestamp for block %d (%s)", number, exc)
            return None
        if "0x" + bytes(block["hash"]).hex() != block_hash:
            return None
        return int(block["timestamp"])

    def _fetch(self, start: int, target: int, addresses: Sequence[str]) -> tuple[int, list[RawLog]]:
        """Logs of [start, end] for the largest end <= target the node accepts."""
        while True:
            end = min(start + self.range - 1, target)
            try:
                with self.lock:
                    logs = self.source.get_logs(start, end, addresses)
            except Exception as exc:
                if end == start:
                    if isinstance(exc, ChainabsError):
                        raise
                    raise RpcError(f"reading the logs of block {start} failed: "
                                   f"{exc.__class__.__name__}: {exc}") from exc
                self.range = max(1, (end - start + 1) // 2)
                self._successes = 0
                log.info("node refused blocks %d-%d (%s); range now %d blocks", start, end, exc, self.range)
                continue
            self._successes += 1
            if self._successes >= GROW_AFTER and self.range < self.max_range:
                self.range = min(self.max_range, self.range * 2)
                self._successes = 0
            return end, logs

    # reorgs
    def _check_reorg(self, cursor: int, contracts: Sequence[ContractRow], stats: SyncStats) -> int:
        """The cursor, moved back to the fork point if the chain no longer has the stored block."""
        stored = self.store.block_hash(cursor)
        if stored is None:
            return cursor
        current = self._block(cursor)
        if current is not None and current[0] == stored:
            return cursor
        numbers = self.store.block_numbers(cursor)
        lo, hi, fork = 0, len(numbers) - 1, min((c.start_block for c in contracts), default=0) - 1
        while lo <= hi:  # blocks below a matching block match too: bisect
            mid = (lo + hi) // 2
            chain_block = self._block(numbers[mid])
            if chain_block is not None and chain_block[0] == self.store.block_hash(numbers[mid]):
                fork, lo = numbers[mid], mid + 1
            else:
                hi = mid - 1
        removed = self.store.rollback_to(fork)
        log.warning("%s: removed %d events after block %d; reading again", ReorgDetected(fork + 1), removed, fork)
        stats.reorgs += 1
        stats.rolled_back_to.append(fork)
        return fork

    # pages
    def _page(self, start: int, target: int, contracts: Sequence[ContractRow], *, move_head: bool,
              stats: SyncStats) -> int | None:
        """Read and store one page; the block it ended at, or None when it must be re-read."""
        addresses = [c.address for c in contracts]
        end, logs = self._fetch(start, target, addresses)
        tip = self._block(end)
        if tip is None:
            return None  # the chain got shorter under us: the next reorg check sorts it out
        labels = {c.address: (c.artifact, c.label) for c in contracts}
        events: list[EventRow] = []
        transfers: list[TransferRow] = []
        hashes: dict[int, str] = {}
        for number, block_hash, tx_hash, index, address, topics, data in logs:
            if hashes.setdefault(number, block_hash) != block_hash or (number == end and block_hash != tip[0]):
                log.info("blocks %d-%d changed while being read; reading them again", start, end)
                return None
            if address not in labels:
                continue  # a node that ignores the address filter
            artifact, label = labels[address]
            spec = event_specs(artifact).get(topics[0]) if topics else None
            try:
                if spec is None:
                    raise ValueError("unknown event")
                args = spec.decode(topics, data)
                name = spec.name
            except Exception as exc:
                log.warning("%s %s log %d in block %d not decoded (%s); stored raw", label, address, index, number, exc)
                args = {"topics": ["0x" + t.hex() for t in topics], "data": "0x" + data.hex()}
                name, spec = "Unknown", None
            events.append((block_hash, index, number, tx_hash, address, label, name,
                           json.dumps(args, separators=(",", ":"))))
            if spec is not None and spec.transfer is not None:
                if spec.transfer == "erc20":
                    amount, token_id = str(args["value"]), None  # json_int may have made it a string
                else:
                    amount, token_id = "1", str(args["tokenId"])
                transfers.append((block_hash, index, number, tx_hash, address, spec.transfer, args["from"], args["to"],
                                  amount, token_id))
        blocks: list[BlockRow] = [(n, h, None) for n, h in hashes.items() if n != end]
        blocks.append((end, tip[0], tip[1]))
        stats.events += self.store.ingest(events=events, transfers=transfers, blocks=blocks, synced_to=end,
                                          contracts=addresses, cursor=HEAD if move_head else None,
                                          head_time=self._timestamp(end, tip[0]) if move_head else None)
        stats.pages += 1
        stats.blocks += end - start + 1
        return end

    def sync(self, *, max_pages: int | None = None) -> SyncStats:
        """Index every confirmed block not yet indexed; returns what was done."""
        with self._sync_lock:
            stats = SyncStats()
            started = time.perf_counter()
            try:
                self._sync(stats, max_pages)
            finally:
                stats.seconds = time.perf_counter() - started
                stats.indexed_head = self.store.cursor()
                stats.range = self.range
            return stats

    def _sync(self, stats: SyncStats, max_pages: int | None) -> None:
        chain_head = self._head()
        stats.chain_head = chain_head
        target = chain_head - self.confirmations
        contracts = self._register()
        if not contracts:
            return
        cursor = self.store.cursor()
        if cursor is None:
            cursor = min(c.start_block for c in contracts) - 1
            self.store.set_cursor(cursor)
        cursor = self._check_reorg(cursor, contracts, stats)
        contracts = self.store.contracts()
        # contracts registered after the cursor passed their deployment: catch them up first
        for lagging in sorted({c.synced_to for c in contracts if c.synced_to < cursor}):
            group = [c for c in contracts if c.synced_to == lagging]
            start = lagging + 1
            while start <= cursor:
                end = self._page(start, cursor, group, move_head=False, stats=stats)
                if end is None:
                    return
                start = end + 1
        contracts = self.store.contracts()
        while cursor < target and (max_pages is None or stats.pages < max_pages) and not self.stop_event.is_set():
            checked = self._check_reorg(cursor, contracts, stats)
            if checked != cursor:
                cursor = checked
                contracts = self.store.contracts()
                continue
            end = self._page(cursor + 1, target, contracts, move_head=True, stats=stats)
            if end is not None:
                cursor = end

    def run_forever(self, interval: float = 2.0, stop_event: threading.Event | None = None) -> None:
        """Sync every `interval` seconds until `stop_event` (default: self.stop_event) is set.
        Errors are logged and retried at the next interval: the service keeps serving."""
        if stop_event is not None:
            self.stop_event = stop_event
        stop = self.stop_event
        while not stop.is_set():
            try:
                stats = self.sync()
                if stats.events or stats.reorgs:
                    log.info("indexed %d events in %d blocks (%.2f s); head %s", stats.events, stats.blocks,
                             stats.seconds, stats.indexed_head)
            except ChainabsError as exc:
                log.warning("indexing failed: %s; retrying in %.1f s", exc, interval)
            except Exception:
                log.exception("indexing failed unexpectedly; retrying in %.1f s", interval)
            stop.wait(interval)

    def start(self, interval: float = 2.0) -> threading.Thread:
        """run_forever in a daemon thread; `stop()` ends it."""
        self.stop_event.clear()
        thread = threading.Thread(target=self.run_forever, args=(interval,), name="chainabs-indexer", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()

