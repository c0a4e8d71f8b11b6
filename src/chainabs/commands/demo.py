"""`chainabs demo`: the whole product on the embedded chain, then a summary."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from chainabs.context import resolve_data_dir
from chainabs.demo import run_demo


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = sub.add_parser("demo", help="generate a tape, tokenise it, issue tranches, run 12 periods, verify")
    demo.add_argument("--loans", type=int, default=10_000)
    demo.add_argument("--periods", type=int, default=12)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-serve", action="store_true",
                      help="exit after the summary (the HTTP audit service is not part of this build yet)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    base = Path(args.data_dir) if args.data_dir else resolve_data_dir(None) / time.strftime("demo-%Y%m%d-%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    say = (lambda _msg: None) if args.json else print
    out = run_demo(data_dir=base, loans=args.loans, periods=args.periods, seed=args.seed, say=say)
    if args.json:
        print(json.dumps(out))
    else:
        print()
        print(f"pool {out['pool_name']!r} ({out['pool']}): {out['loans']} loans, {out['periods']} periods")
        print(f"pool balance {out['pool_balance']}, reserve {out['reserve']}, cumulative defaults "
              f"{out['cumulative_defaults']}, trigger {'BREACHED' if out['trigger_breached'] else 'not breached'}")
        print(f"{'tranche':<8} {'face':>16} {'balance':>16} {'factor':>8} {'unpaid int.':>12}")
        for t in out["tranches"]:
            print(f"{t['symbol']:<8} {t['face']:>16} {t['balance']:>16} {t['balance'] / t['face']:>8.4f} {t['unpaid_interest']:>12}")
        print("claims: " + ", ".join(f"{k[:10]}… {v}" for k, v in out["claimed"].items()))
        for c in out["checks"]:
            print(f"{c['result']}  {c['check']}: {c['detail']}")
        print(f"audit verify: {out['verify']}   ({out['seconds']} s; data in {out['data_dir']})")
    return 0 if out["verify"] == "PASS" else 1
