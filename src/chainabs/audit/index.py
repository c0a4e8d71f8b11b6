"""The index check: the data dir's SQLite index, read through the store's read-only API,
against the events read from the chain (count and content hash per contract, balances, the
deal's settlement transfers, block hashes)."""

from __future__ import annotations

import hashlib
import json
import sqlite3  # for sqlite3.Error only: what the store's reads raise on a damaged file
from collections.abc import Iterable
from typing import Any

from chainabs.audit.events import DealEvents
from chainabs.audit.report import Check, first
from chainabs.audit.tokens import replay_tokens
from chainabs.context import Context
from chainabs.datadir import DataDir
from chainabs.errors import ChainabsError
from chainabs.indexer import contracts_for
from chainabs.store import Event, Store


def _digest(rows: Iterable[tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: (r[2], r[1])):
        h.update(json.dumps(row, separators=(",", ":")).encode())
    return h.hexdigest()[:16]


def _index_row(e: Event) -> tuple[Any, ...]:
    """An indexed event in the form of ChainEvent.canonical."""
    return (e.tx_hash, e.log_index, e.block_number, e.event, json.dumps(e.args, sort_keys=True, separators=(",", ":")))


def check_index(ctx: Context, ev: DealEvents) -> Check:
    """The data dir's index, opened read-only, against the events read from the chain."""
    name = "index: the SQLite index equals the chain's events (count and content hash per contract)"
    path = DataDir(ctx.data_dir).index_path
    if not path.exists():
        return Check(name, None, {"index": f"no {path.name} in the data dir"})
    try:
        store = Store(path, read_only=True)
    except (ChainabsError, sqlite3.Error) as exc:
        return Check(name, False, {"index": f"unreadable: {exc}"})
    problems: list[str] = []
    per_contract = {}
    try:
        synced = {c.address: c.synced_to for c in store.contracts()}
        discovered = contracts_for(ctx)
        ours = {ev.deal: "Deal", ev.pool: "LoanPool", ev.registry: "InvestorRegistry",
                ev.exchange: "TrancheExchange", **dict.fromkeys(ev.tokens, "TrancheToken")}
        problems += [f"the indexer does not discover {a} ({n})" for a, n in ours.items() if discovered.get(a) != n]
        for address, artifact in ours.items():
            if address not in synced:
                problems.append(f"{artifact} {address} is not in the index")
                continue
            upto = synced[address]
            chain_rows = [e.canonical() for e in ev.events if e.address == address and e.block_number <= upto]
            index_rows = [_index_row(e) for e in store.events(address, to_block=upto, limit=None)]
            a, b = _digest(chain_rows), _digest(index_rows)
            per_contract[f"{artifact} {address[:10]}"] = {"events": len(index_rows), "hash": b}
            if (len(chain_rows), a) != (len(index_rows), b):
                problems.append(f"{artifact} {address}: chain {len(chain_rows)} events ({a}), "
                                f"index {len(index_rows)} ({b})")
        for k, token in enumerate(ev.tokens):
            if token not in synced:
                continue
            rebuilt = {h: u for h, u in replay_tokens(ev, upto=synced[token])[k].balances.items() if u}
            stored = store.balances_of_token(token)
            if stored != rebuilt:
                wrong = sorted(set(stored) ^ set(rebuilt) | {h for h in stored if stored[h] != rebuilt.get(h)})
                problems.append(f"tranche {k}: index balances differ for {first(wrong)}")
        if ev.settlement in synced:
            upto = synced[ev.settlement]
            chain_moves = [(e.tx_hash, e.log_index, e.block_number, e.args["from"], e.args["to"],
                            str(e.args["value"])) for e in ev.cash_moves if e.block_number <= upto]
            _, transfers = store.transfers(ev.deal, token=ev.settlement, to_block=upto, limit=None)
            index_moves = [(t.tx_hash, t.log_index, t.block_number, t.from_addr, t.to_addr, str(t.amount))
                           for t in transfers]
            if _digest(chain_moves) != _digest(index_moves):
                problems.append(f"settlement transfers of the deal: chain {len(chain_moves)}, "
                                f"index {len(index_moves)}")
        head = store.head()
        ours_hashes = {e.block_number: e.block_hash for e in ev.events}
        stale = sorted(n for n, h in store.block_hashes().items() if ours_hashes.get(n, h) != h)
    except sqlite3.Error as exc:
        return Check(name, False, {"index": f"unreadable: {exc}"})
    finally:
        store.close()
    # A stored block hash the chain no longer has is a reorg the index has not caught up with
    # (the embedded chain re-creates identical blocks from its journal, so a restart is not one).
    if stale:
        problems.append(f"index block hashes differ from the chain's at blocks {first(stale)}")
    figures: dict[str, Any] = {"indexed head": head, "chain head": ev.head,
                               "contracts": per_contract, "block hashes differing": len(stale)}
    return Check(name, not problems, {**figures, "differences": first(problems)})
