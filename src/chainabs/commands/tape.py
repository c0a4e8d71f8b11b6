"""`chainabs tape check FILE`: validate a loan tape and summarise what a pool would take from it.

Exit status 0 when the tape is well formed (ineligible loans are normal and only counted), 1 when
it is rejected or cannot be read; the report then lists every bad cell.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chainabs.commands import args as argtypes
from chainabs.errors import CellError, TapeError
from chainabs.tape import MAX_DECIMALS, PRODUCTS, STATUSES, Eligibility, read_tape, summarize

_SUMMARY_KEYS = ("source", "currency", "cutoff", "loans", "eligible", "ineligible",
                 "principal_units", "outstanding_units", "wac_bps", "wam_months", "by_product",
                 "by_status", "warnings")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("tape", help="loan tape tools",
                                   description="Loan tape tools (format: shared/TAPE.md).")
    actions = parser.add_subparsers(dest="tape_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate a loan tape and summarise it",
        description="Validate a loan tape (CSV or JSON Lines), apply the default eligibility "
                    "criteria and print a summary, or every bad cell when the tape is malformed.")
    check.add_argument("file", metavar="FILE", help="the tape: .csv or .jsonl")
    # SUPPRESS keeps the global `chainabs --json` when the flag is not repeated here.
    check.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON object")
    check.add_argument("--decimals", type=argtypes.whole(0, MAX_DECIMALS), default=6, metavar="N",
                       help="settlement token decimals (default 6)")
    check.add_argument("--cutoff", type=argtypes.day, default=None, metavar="YYYY-MM-DD",
                       help="pool cut-off date: loans must mature after it")
    check.add_argument("--max-errors", type=argtypes.whole(1), default=1000, metavar="N",
                       help="bad cells to list at most (all are counted; default 1000)")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    try:
        tape = read_tape(args.file, decimals=args.decimals, max_errors=args.max_errors)
    except OSError as exc:
        reason = f"cannot read the file: {exc.strerror or exc}"
        if not as_json:
            print(f"error: {args.file}: {reason}", file=sys.stderr)
            return 1
        return _rejected(str(args.file), [CellError(0, "", str(args.file), reason)], 1, as_json)
    except TapeError as exc:
        return _rejected(str(args.file), exc.errors, exc.total, as_json)
    summary = summarize(tape, Eligibility(cutoff_day=args.cutoff))
    if as_json:
        print(json.dumps({**summary, "errors": []}))
    else:
        print(_describe(summary, args.decimals))
    return 0


def _rejected(source: str, errors: list[CellError], total: int, as_json: bool) -> int:
    if as_json:
        report: dict[str, Any] = dict.fromkeys(_SUMMARY_KEYS)
        report.update(source=source, error=str(TapeError(errors, total)), error_count=total,
                      errors=[e.as_dict() for e in errors])
        print(json.dumps(report))
        return 1
    print(f"{source}: rejected, {total} bad cell{'s' if total != 1 else ''}")
    for e in errors:
        where = f"line {e.line}" + (f", column {e.column!r}" if e.column else "")
        value = f", value {e.value!r}" if e.value else ""
        print(f"  {where}{value}: {e.reason}")
    if total > len(errors):
        print(f"  ... and {total - len(errors)} more")
    return 1


def _describe(s: dict[str, Any], decimals: int) -> str:
    ccy = s["currency"]
    lines = [
        f"{s['source']}: {s['loans']} loans in {ccy}, well formed",
        f"cut-off: {s['cutoff'] or 'none'}",
        f"eligible: {s['eligible']} loans, outstanding {_amount(s['outstanding_units'], decimals)} "
        f"{ccy} of principal {_amount(s['principal_units'], decimals)} {ccy} (pool share)",
        f"WAC {s['wac_bps'] / 100:.2f} % ({s['wac_bps']} bps), WAM {s['wam_months']:.2f} months",
    ]
    ineligible = s["ineligible"]
    lines.append(f"ineligible: {sum(ineligible.values())} loans")
    for reason, count in sorted(ineligible.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {reason:<26} {count:>9}")
    for title, names, buckets in (("product", PRODUCTS, s["by_product"]),
                                  ("status", STATUSES, s["by_status"])):
        lines.append(f"by {title}:{'loans':>20}{'eligible':>10}  outstanding")
        for name in names:
            b = buckets[name]
            lines.append(f"  {name:<18}{b['loans']:>9}{b['eligible']:>10}  "
                         f"{_amount(b['outstanding_units'], decimals)}")
    lines.extend(f"warning: {w}" for w in s["warnings"])
    return "\n".join(lines)


def _amount(units: int, decimals: int) -> str:
    """Base units as a grouped decimal: 1234560000 with 6 decimals -> 1,234.56."""
    whole, frac = divmod(units, 10 ** decimals)
    return f"{whole:,}.{frac:0{decimals}d}" if decimals else f"{whole:,}"
