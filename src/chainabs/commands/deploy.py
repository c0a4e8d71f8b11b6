"""`chainabs deploy`: the chain-wide contracts of the data dir's chain, deployed once and recorded
in the data dir (`deployment-<chain id>.json`), and their addresses printed.

On the embedded chain the data dir's own chain is used (its journal keeps them; through the
running service when one holds it); a rerun finds the deployment and prints it again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chainabs.chain import RpcChain
from chainabs.context import core_deployment, open_embedded
from chainabs.datadir import DataDir
from chainabs.deploy import manifest_summary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deploy", help="deploy the loan token registry and settlement token into the data dir")
    parser.add_argument("--out", metavar="FILE", default=None, help="also write the deployment manifest here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = DataDir.resolve(args.data_dir)
    chain = open_embedded(data) if args.rpc is None else RpcChain(args.rpc)
    path = Path(args.deployment) if args.deployment else data.deployment_path(chain.chain_id)
    before = path.exists()
    manifest = core_deployment(chain, path, create=True)
    if args.out:
        manifest.write(Path(args.out))
    summary = manifest_summary(manifest)
    if args.json:
        print(json.dumps({**summary, "manifest": str(path), "already_deployed": before}))
    else:
        where = "the embedded chain" if args.rpc is None else args.rpc
        verb = "already deployed" if before else "deployed"
        print(f"{verb} on {where} (chain id {manifest.chain_id}), recorded in {path}:")
        for name, address in manifest.contracts.items():
            print(f"  {name:<16} {address}")
        print(f"next: chainabs --data-dir {data.root} pool create --tape TAPE --deal DEAL, or chainabs serve")
    return 0
