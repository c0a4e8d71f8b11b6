"""`chainabs build`: compile contracts/ into src/chainabs/artifacts/."""

from __future__ import annotations

import argparse
import json
import sys
import time

from chainabs import build as builder


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("build", help="compile the contracts and write the artifacts")
    parser.add_argument("--check", action="store_true", help="only report whether the artifacts are stale")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        problems = builder.check_artifacts()
        for p in problems:
            print(f"stale: {p}", file=sys.stderr)
        if args.json:
            print(json.dumps({"fresh": not problems, "problems": problems}))
        return 1 if problems else 0
    started = time.monotonic()
    names, warnings = builder.build()
    for w in warnings:
        print(str(w), file=sys.stderr)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"contracts": names, "warnings": [str(w) for w in warnings], "seconds": round(elapsed, 2)}))
    else:
        print(f"built {len(names)} contracts with solc {builder.COMPILER_VERSION} in {elapsed:.1f} s: "
              f"{', '.join(names)}")
    return 0
