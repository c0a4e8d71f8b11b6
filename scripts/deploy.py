#!/usr/bin/env python3
"""Deploy chainabs to a node, for operators.

    CHAINABS_PRIVATE_KEY=0x... scripts/deploy.py --rpc http://127.0.0.1:8545 --name mainnet-1
    scripts/deploy.py --rpc URL --keystore key.json --name NAME    # password: $CHAINABS_KEYSTORE_PASSWORD or prompt
    scripts/deploy.py ... --tape TAPE.csv --deal DEAL.toml         # also tokenise a pool and issue its deal

Writes a manifest (chain id, addresses, deployment block, artifact hashes, deployer) to
deployments/NAME.json, refuses to overwrite one, and checks that the code on chain matches
the artifacts. The key is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chainabs.errors import ChainabsError, DeploymentError  # noqa: E402


def load_key(args: argparse.Namespace) -> str:
    from eth_account import Account

    if args.keystore:
        password = os.environ.get("CHAINABS_KEYSTORE_PASSWORD")
        if password is None:
            password = getpass.getpass(f"password for {args.keystore}: ")
        try:
            return "0x" + bytes(Account.decrypt(json.loads(Path(args.keystore).read_text()), password)).hex()
        except ValueError:
            raise DeploymentError(f"{args.keystore}: wrong password or not a keystore file") from None
    key = os.environ.get("CHAINABS_PRIVATE_KEY")
    if not key:
        raise DeploymentError("no key: set CHAINABS_PRIVATE_KEY or pass --keystore FILE")
    return key


def deploy(args: argparse.Namespace) -> dict:
    from chainabs.chain import RpcChain
    from chainabs.context import Context
    from chainabs.deploy import deploy_core, verify_code

    out = Path(args.out) if args.out else ROOT / "deployments" / f"{args.name}.json"
    if out.exists():
        raise DeploymentError(f"{out} exists; refusing to overwrite a deployment manifest")
    chain = RpcChain(args.rpc, keys=[load_key(args)], expected_chain_id=args.chain_id)
    chain.confirmations = args.confirmations
    manifest = deploy_core(chain)
    if args.tape and args.deal:
        from chainabs.dealfile import load_deal_file
        from chainabs.pool import create_pool

        deal = load_deal_file(args.deal)
        data_dir = Path(args.data_dir or out.with_suffix(""))
        data_dir.mkdir(parents=True, exist_ok=True)
        ctx = Context(data_dir=data_dir, chain=chain, core=manifest, manifest_path=out)
        report = create_pool(ctx, tape_path=args.tape, name=deal.pool.name, currency=deal.pool.currency,
                             decimals=deal.pool.decimals, eligibility=deal.eligibility())
        manifest.add("LoanPool", report.pool)
        try:
            from chainabs.deal import deploy_deal_from_file
        except ImportError:
            deploy_deal_from_file = None
        if deploy_deal_from_file is not None and deal.has_tranches:
            for name, address in deploy_deal_from_file(ctx, deal=deal, pool_address=report.pool).items():
                manifest.add(name, address)
    problems = verify_code(chain, manifest)
    if problems:
        raise DeploymentError("; ".join(problems))
    manifest.write(out)
    return {"manifest": str(out), "chain_id": manifest.chain_id, "deployer": manifest.deployer,
            "deployment_block": manifest.deployment_block, "contracts": manifest.contracts, "code_verified": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", required=True, help="node URL")
    parser.add_argument("--name", default="local", help="manifest name under deployments/")
    parser.add_argument("--out", default=None, help="manifest path (default deployments/NAME.json)")
    parser.add_argument("--keystore", default=None, help="encrypted keystore file (else $CHAINABS_PRIVATE_KEY)")
    parser.add_argument("--chain-id", type=int, default=None, help="refuse a node on another chain")
    parser.add_argument("--confirmations", type=int, default=0, help="blocks to wait after each transaction")
    parser.add_argument("--tape", default=None, help="also tokenise this loan tape into a pool")
    parser.add_argument("--deal", default=None, help="deal file for the pool (and its tranches)")
    parser.add_argument("--data-dir", default=None, help="where the pool's files go")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(deploy(args)))
    except ChainabsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
