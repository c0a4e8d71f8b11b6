"""`chainabs deploy`: deploy the chain-wide contracts and print their addresses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chainabs.chain import connect
from chainabs.deploy import deploy_core, manifest_summary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deploy", help="deploy the loan token registry and settlement token")
    parser.add_argument("--out", metavar="FILE", default=None, help="write the deployment manifest here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    chain = connect(args.rpc)
    manifest = deploy_core(chain)
    target = args.out or args.deployment
    if target:
        manifest.write(Path(target))
    summary = manifest_summary(manifest)
    if args.json:
        print(json.dumps(summary))
    else:
        where = "embedded chain" if args.rpc is None else args.rpc
        print(f"deployed on {where} (chain id {manifest.chain_id}):")
        for name, address in manifest.contracts.items():
            print(f"  {name:<16} {address}")
    return 0
