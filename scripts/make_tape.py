#!/usr/bin/env python3
"""Write a deterministic synthetic loan tape (see chainabs.tapegen).

    python scripts/make_tape.py --loans 100000 --seed 7 --out tape.csv [--format csv|jsonl]
"""

from __future__ import annotations

import argparse
import sys
import time

from chainabs.tapegen import write_tape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, required=True, metavar="N", help="number of loans")
    parser.add_argument("--seed", type=int, required=True, metavar="S", help="random seed")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the tape")
    parser.add_argument("--format", choices=("csv", "jsonl"), default=None,
                        help="default: from the file suffix, else csv")
    parser.add_argument("--currency", default="EUR", help="ISO 4217 code (default EUR)")
    args = parser.parse_args(argv)
    if args.loans < 0:
        parser.error("--loans must not be negative")
    if not (len(args.currency) == 3 and args.currency.isascii() and args.currency.isalpha()
            and args.currency.isupper()):
        parser.error("--currency must be three upper-case letters")
    fmt = args.format or ("jsonl" if args.out.endswith((".jsonl", ".ndjson")) else "csv")
    started = time.perf_counter()
    write_tape(args.out, args.loans, args.seed, fmt, currency=args.currency)
    print(f"wrote {args.loans} loans to {args.out} ({fmt}) in {time.perf_counter() - started:.2f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
