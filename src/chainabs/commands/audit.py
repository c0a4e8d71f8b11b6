"""`chainabs audit verify`: re-derive a deal's figures and print each check as PASS or FAIL."""

from __future__ import annotations

import argparse
import json

from chainabs.audit import verify_deal
from chainabs.context import open_context
from chainabs.operations import open_deal


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="independent checks of a deal")
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = asub.add_parser("verify", help="re-run the waterfall, check cash and roots; exit 1 on any FAIL")
    verify.add_argument("--pool", default=None, help="pool name (default: the only pool)")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    ctx = open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment, create=False)
    handle, files = open_deal(ctx, args.pool)
    checks = verify_deal(handle, files)
    ok = all(c.ok for c in checks)
    if args.json:
        print(json.dumps({"verify": "PASS" if ok else "FAIL", "checks": [c.as_dict() for c in checks]}))
    else:
        for c in checks:
            print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
    return 0 if ok else 1
