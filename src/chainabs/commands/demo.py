"""`chainabs demo`: the whole product on the embedded chain, a summary, then the audit API over it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from chainabs.audit import Check
from chainabs.commands import args as argtypes
from chainabs.commands.serve import base_url, listen, serve, settings_from
from chainabs.context import open_context, resolve_data_dir
from chainabs.datadir import slug
from chainabs.demo import run_demo
from chainabs.indexer import Indexer
from chainabs.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="generate a tape, tokenise it, issue tranches, run 12 periods, verify, "
                                       "then serve the audit API over the deal")
    demo.add_argument("--loans", type=argtypes.whole(1, 1_000_000), default=10_000)
    demo.add_argument("--periods", type=argtypes.whole(1, 600), default=12)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-serve", action="store_true", help="exit after the summary instead of serving the API")
    demo.add_argument("--host", default="127.0.0.1", help="interface the audit API listens on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="the audit API's port (default 8000)")
    demo.set_defaults(func=run)


def _print_summary(out: dict[str, Any]) -> None:
    print()
    print(f"pool {out['pool_name']!r} ({out['pool']}): {out['loans']} loans, {out['periods']} periods")
    print(f"pool balance {out['pool_balance']}, reserve {out['reserve']}, cumulative defaults "
          f"{out['cumulative_defaults']}, trigger {'BREACHED' if out['trigger_breached'] else 'not breached'}")
    print(f"{'tranche':<8} {'face':>16} {'balance':>16} {'factor':>8} {'unpaid int.':>12}")
    for t in out["tranches"]:
        print(f"{t['symbol']:<8} {t['face']:>16} {t['balance']:>16} {t['balance'] / t['face']:>8.4f} "
              f"{t['unpaid_interest']:>12}")
    print("claims: " + ", ".join(f"{k[:10]}… {v}" for k, v in out["claimed"].items()))
    for c in out["checks"]:
        print(Check(c["name"], c["ok"], c["figures"]).line())
    print(f"audit verify: {out['verify']}   ({out['seconds']} s; data in {out['data_dir']})")


def run(args: argparse.Namespace) -> int:
    base = Path(args.data_dir) if args.data_dir else resolve_data_dir(None) / time.strftime("demo-%Y%m%d-%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    settings = settings_from(args, data_dir=base, host=args.host, port=args.port) if not args.no_serve else None
    sock = listen(settings) if settings is not None else None  # a busy port fails now, not after the demo
    try:
        ctx = open_context(data_dir=base)
        out = run_demo(data_dir=base, loans=args.loans, periods=args.periods, seed=args.seed,
                       say=(lambda _msg: None) if args.json else print, ctx=ctx)
        status = 0 if out["verify"] == "PASS" else 1
        if settings is not None:
            out["api"] = base_url(settings)
        if args.json:
            print(json.dumps(out), flush=True)
        else:
            _print_summary(out)
        if settings is None or sock is None:
            return status
        notes = sys.stderr if args.json else sys.stdout  # with --json, stdout holds the JSON alone
        store = Store.open(base, chain_id=ctx.chain.chain_id)
        try:
            stats = Indexer(ctx, store).sync()
            url = out["api"]
            print(f"\nindexed {stats.events} events up to block {stats.indexed_head} into {store.path} "
                  f"({stats.seconds:.1f} s)\n"
                  f"the deal:        {url}/pools/{slug(out['pool_name'])}\n"
                  f"an investor:     {url}/investors/{next(iter(out['claimed']))}/holdings\n"
                  f"API docs:        {url}/docs\n"
                  f"investor portal: {url}/", file=notes, flush=True)
            serve(settings, ctx, store=store, sock=sock, debug=args.debug, access_log=not args.json, out=notes)
        finally:
            store.close()
        return status
    finally:
        if sock is not None:
            sock.close()
