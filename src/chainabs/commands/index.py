"""`chainabs index`: read the chain's chainabs events into the data dir's index (index.sqlite)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from types import FrameType

from chainabs.commands import args as argtypes
from chainabs.context import open_context
from chainabs.errors import RpcError
from chainabs.indexer import DEFAULT_RANGE, Indexer, SyncStats
from chainabs.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("index", help="index every chainabs event into <data-dir>/index.sqlite")
    parser.add_argument("--once", action="store_true", help="sync once and exit (default: keep following the chain)")
    parser.add_argument("--confirmations", type=argtypes.whole(0), default=0, metavar="N",
                        help="only index blocks at least N blocks deep (default 0)")
    parser.add_argument("--interval", type=argtypes.positive, default=2.0, metavar="SECONDS",
                        help="seconds between syncs when following the chain (default 2)")
    parser.add_argument("--max-range", type=argtypes.whole(1), default=DEFAULT_RANGE, metavar="BLOCKS",
                        help=f"largest eth_getLogs block range to ask for (default {DEFAULT_RANGE})")
    parser.set_defaults(func=run)


def _report(stats: SyncStats, as_json: bool) -> None:
    if as_json:
        print(json.dumps(stats.as_dict()), flush=True)
        return
    line = (f"indexed {stats.events} new events in {stats.blocks} blocks ({stats.seconds:.2f} s, "
            f"{stats.events_per_second:,.0f} events/s); indexed head {stats.indexed_head}, "
            f"chain head {stats.chain_head}")
    if stats.reorgs:
        line += f"; {stats.reorgs} reorg(s), rolled back to block(s) {stats.rolled_back_to}"
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    ctx = open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment, create=False)
    store = Store.open(ctx.data_dir, chain_id=ctx.chain.chain_id)
    try:
        indexer = Indexer(ctx, store, confirmations=args.confirmations, max_range=args.max_range)
        if args.once:
            _report(indexer.sync(), args.json)
            return 0
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        logging.getLogger("chainabs.indexer").setLevel(logging.INFO)
        while not stop.is_set():
            try:
                stats = indexer.sync()
            except RpcError as exc:  # a node restarting: keep following
                print(f"warning: {exc}; retrying in {args.interval:g} s", file=sys.stderr, flush=True)
            else:
                if stats.events or stats.reorgs:
                    _report(stats, args.json)
            stop.wait(args.interval)
        return 0
    finally:
        store.close()
