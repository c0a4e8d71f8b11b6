#!/usr/bin/env python3
"""Deploy chainabs to a node, for operators.

    CHAINABS_PRIVATE_KEY=0x... scripts/deploy.py --rpc http://127.0.0.1:8545 --name mainnet-1
    scripts/deploy.py --data-dir DIR --name NAME [--tape T --deal D]   # the data dir's embedded chain
    scripts/deploy.py --rpc URL --keystore key.json --name NAME    # password: $CHAINABS_KEYSTORE_PASSWORD or prompt
    scripts/deploy.py ... --tape TAPE.csv --deal DEAL.toml         # also tokenise a pool and issue its deal

Deploys the chain-wide contracts (loan token registry, settlement token) and, given a tape and
a deal file, a whole deal: the pool created and filled, then (when the deal file has tranches)
the deal with its tranche tokens, investor registry and exchange, through the same code the
`chainabs` CLI runs. The pool's files (secret salt, committed loan rows, Merkle tree) and the
deal's record go to --data-dir (default .chainabs/NAME), so that afterwards
`chainabs --rpc URL --data-dir DIR ...` runs the deal; an interrupted run started again with the
same data dir resumes (the core contracts are reused, minting continues, the deal is not
deployed twice).

The deal's roles are those of the deal file's [roles] section, each one left out held by the
deploying account (the first key); creating the deal signs as its compliance and operator, so
when [roles] gives those to other accounts, pass their keys too (CHAINABS_PRIVATE_KEY=k1,k2,k3).

Writes a manifest (chain id, every address including the deal and its tranches, deployment
block, artifact hashes, deployer, and the deal's roles: who holds each) to deployments/NAME.json,
refuses to overwrite one, and checks that the code on chain matches the artifacts before writing
it. No key is ever printed.

Without --rpc the chain is the data dir's embedded one, signed for by its first dev account: opened
here when no other process holds it, or reached through the JSON-RPC endpoint of the `chainabs
serve` (or `chainabs node`) that does, which is said on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from chainabs.errors import ChainabsError, DeploymentError  # noqa: E402

KEY_ENV = "CHAINABS_PRIVATE_KEY"
PASSWORD_ENV = "CHAINABS_KEYSTORE_PASSWORD"


def load_keys(args: argparse.Namespace) -> list[str]:
    """The signing keys: the keystore's one, or those of $CHAINABS_PRIVATE_KEY (comma-separated;
    the first deploys, the others sign as the deal file's [roles] that creating a deal acts as)."""
    from eth_account import Account

    if args.keystore:
        try:
            keystore = json.loads(Path(args.keystore).read_text())
        except OSError as exc:
            raise DeploymentError(f"{args.keystore}: cannot read the keystore ({exc.strerror})") from None
        except ValueError:
            raise DeploymentError(f"{args.keystore}: not a keystore file (not JSON)") from None
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            password = getpass.getpass(f"password for {args.keystore}: ")
        try:
            return ["0x" + bytes(Account.decrypt(keystore, password)).hex()]
        except (ValueError, KeyError, TypeError):
            raise DeploymentError(f"{args.keystore}: wrong password or not a keystore file") from None
    # as for the CLI: one key, or several separated by commas, the first of which deploys
    keys = [k.strip() for k in os.environ.get(KEY_ENV, "").split(",") if k.strip()]
    if not keys:
        raise DeploymentError(f"no key: set {KEY_ENV} or pass --keystore FILE")
    return keys


def _signer(key: str) -> Any:
    from eth_account import Account

    try:
        return Account.from_key(key)
    except (ValueError, TypeError):
        raise DeploymentError("the private key is malformed: expected 32 bytes as 64 hex digits") from None


def _core(chain: Any, data_dir: Path) -> Any:
    """The data dir's core deployment on this chain (resuming), else a new one recorded there."""
    from chainabs.deploy import Manifest, deploy_core, verify_code

    path = data_dir / f"deployment-{chain.chain_id}.json"
    if not path.exists():
        core = deploy_core(chain)
        core.write(path)
        return core, path
    core = Manifest.read(path)
    if core.deployer.lower() != chain.accounts[0].lower():
        raise DeploymentError(f"{path} was deployed by {core.deployer}, not by this key's account "
                              f"{chain.accounts[0]}")
    problems = verify_code(chain, core)
    if problems:
        raise DeploymentError(f"{path}: {problems[0]}; wrong node or a reset chain?")
    return core, path


def deploy(args: argparse.Namespace) -> dict[str, Any]:
    from chainabs.chain import Chain, RpcChain
    from chainabs.context import Context
    from chainabs.deploy import Manifest, verify_code

    out = Path(args.out) if args.out else ROOT / "deployments" / f"{args.name}.json"
    if out.exists():
        raise DeploymentError(f"{out} exists; refusing to overwrite a deployment manifest")
    if bool(args.tape) != bool(args.deal):
        raise DeploymentError("--tape and --deal go together: a pool needs its tape and its deal file")
    dealfile = None
    if args.deal:
        from chainabs.dealfile import load_deal_file

        dealfile = load_deal_file(args.deal)  # a bad deal file stops us before anything is sent
        if not Path(args.tape).is_file():
            raise DeploymentError(f"no loan tape at {args.tape}")
    data_dir = Path(args.data_dir) if args.data_dir else ROOT / ".chainabs" / args.name
    data_dir.mkdir(parents=True, exist_ok=True)
    chain: Chain
    if args.rpc:
        keys = load_keys(args)
        for key in keys:
            _signer(key)
        chain = RpcChain(args.rpc, keys=keys, expected_chain_id=args.chain_id)
    else:
        from chainabs.context import open_embedded
        from chainabs.datadir import DataDir

        chain = open_embedded(DataDir.resolve(data_dir))
        if args.chain_id is not None and chain.chain_id != args.chain_id:
            raise DeploymentError(f"the embedded chain is chain {chain.chain_id}, not {args.chain_id}")
    chain.confirmations = args.confirmations
    core, core_path = _core(chain, data_dir)
    manifest = Manifest(chain_id=core.chain_id, deployer=core.deployer, deployment_block=core.deployment_block)
    for name, address in core.contracts.items():
        manifest.add(name, address)
    result: dict[str, Any] = {}
    if dealfile is not None:
        from chainabs.datadir import DataDir, slug
        from chainabs.pool import create_pool
        from chainabs.service import create_deal, open_deal

        ctx = Context(data_dir=data_dir, chain=chain, core=core, manifest_path=core_path)
        report = create_pool(ctx, tape_path=args.tape, name=dealfile.pool.name, currency=dealfile.pool.currency,
                             decimals=dealfile.pool.decimals, eligibility=dealfile.eligibility())
        manifest.add("LoanPool", report.pool)
        result["pool"] = {"name": report.name, "root": report.root, "loans": report.eligible,
                          "minted_now": report.minted_now, "outstanding_units": report.outstanding_units}
        if dealfile.has_tranches:
            if DataDir(data_dir).has_deal(slug(dealfile.pool.name)):
                handle, _ = open_deal(ctx, dealfile.pool.name)  # resuming: the deal is already on chain
            else:
                handle = create_deal(ctx, dealfile=dealfile)
            for name, address in handle.addresses.items():
                if name not in manifest.contracts:
                    manifest.add(name, address)
            manifest.roles = {key: value or handle.roles.admin for key, value in asdict(handle.roles).items()}
            result["tranches"] = {t.symbol: t.face for t in handle.params.tranches}
    problems = verify_code(chain, manifest)
    if problems:
        raise DeploymentError("; ".join(problems))
    manifest.write(out)
    return {"manifest": str(out), "data_dir": str(data_dir), "chain_id": manifest.chain_id,
            "deployer": manifest.deployer, "deployment_block": manifest.deployment_block,
            "contracts": manifest.contracts, "code_verified": True, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", default=None, help="node URL (default: the data dir's embedded chain)")
    parser.add_argument("--name", default="local", help="manifest name under deployments/")
    parser.add_argument("--out", default=None, help="manifest path (default deployments/NAME.json)")
    parser.add_argument("--keystore", default=None, help=f"encrypted keystore file (else ${KEY_ENV})")
    parser.add_argument("--chain-id", type=int, default=None, help="refuse a node on another chain")
    parser.add_argument("--confirmations", type=int, default=0, help="blocks to wait after each transaction")
    parser.add_argument("--tape", default=None, help="loan tape to tokenise into the deal's pool")
    parser.add_argument("--deal", default=None, help="deal file: the pool, and the deal's tranches if it has them")
    parser.add_argument("--data-dir", default=None, help="the pool's and the deal's files (default .chainabs/NAME)")
    args = parser.parse_args(argv)
    if not args.name or Path(args.name).name != args.name or args.name in (".", ".."):
        print(f"error: --name {args.name!r} must be a plain file name", file=sys.stderr)
        return 1
    try:
        print(json.dumps(deploy(args)))
    except ChainabsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
