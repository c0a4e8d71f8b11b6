"""`chainabs audit verify`: re-derive a deal's figures from chain events and print each check."""

from __future__ import annotations

import argparse
import json

from chainabs.audit import audit
from chainabs.context import open_context


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="independent checks of a deal")
    asub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = asub.add_parser(
        "verify", help="rebuild the deal from chain events, re-run the waterfall, check cash, claims, the index, "
                       "the API and the loan roots; exit 1 on any FAIL")
    verify.add_argument("--pool", default=None, help="pool name (default: the only pool)")
    verify.add_argument("--tape", metavar="FILE", default=None,
                        help="the loan tape: recompute every loan commitment and the root (needs --salt-file)")
    verify.add_argument("--salt-file", metavar="FILE", default=None,
                        help="the pool's salt file (64 hex digits; never printed)")
    verify.add_argument("--no-api", action="store_true", help="skip the in-process audit API comparison")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    ctx = open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment, create=False)
    report = audit(ctx, args.pool, tape=args.tape, salt_file=args.salt_file, api=not args.no_api)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        for check in report.checks:
            print(check.line())
        print(f"{'PASS' if report.ok else 'FAIL'}: {sum(c.ok is True for c in report.checks)} passed, "
              f"{sum(c.ok is False for c in report.checks)} failed, {sum(c.ok is None for c in report.checks)} "
              f"not checked; {report.events} events to block {report.head} in {report.seconds:.1f} s")
    return 0 if report.ok else 1
