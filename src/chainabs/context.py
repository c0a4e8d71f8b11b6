"""Where a command runs: the data dir, the chain (embedded and durable, or a node) and the
chain-wide deployment (loan token registry and settlement token)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_checksum_address

from chainabs.chain import Chain, EmbeddedChain, RpcChain
from chainabs.datadir import DataDir
from chainabs.deploy import Manifest, deploy_core
from chainabs.errors import DeploymentError


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data dir given, else $CHAINABS_DATA_DIR, else `.chainabs`; created if missing."""
    return DataDir.resolve(data_dir).root


@dataclass
class Context:
    data_dir: Path
    chain: Chain
    core: Manifest
    manifest_path: Path


def open_context(*, rpc: str | None = None, data_dir: str | os.PathLike[str] | None = None,
                 deployment: str | os.PathLike[str] | None = None, create: bool = True) -> Context:
    """Open the chain and its core deployment, deploying the core contracts on first use."""
    data = DataDir.resolve(data_dir)
    root = data.root
    if rpc is None:
        chain: Chain = EmbeddedChain(state_dir=data.chain_dir)
    else:
        chain = RpcChain(rpc)
    path = Path(deployment) if deployment else data.deployment_path(chain.chain_id)
    if path.exists():
        core = Manifest.read(path)
        if core.chain_id != chain.chain_id:
            raise DeploymentError(f"{path} is for chain {core.chain_id}, but the node is chain {chain.chain_id}")
        missing = [n for n, a in core.contracts.items() if not bytes(chain.w3.eth.get_code(to_checksum_address(a)))]
        if missing:
            raise DeploymentError(f"{path}: no code on chain for {', '.join(missing)}; wrong node or a reset chain?")
    elif create:
        core = deploy_core(chain)
        core.write(path)
    else:
        raise DeploymentError(f"no deployment at {path}: run `chainabs deploy` first")
    return Context(data_dir=root, chain=chain, core=core, manifest_path=path)
