"""Where a command runs: the data dir, the chain (embedded and durable, or a node) and the
chain-wide deployment (loan token registry and settlement token).

A data dir's embedded chain has one writer (chainabs.chain.lock). A command that finds it held
by a running service or `chainabs node` sends through that process's JSON-RPC endpoint (and says
so on stderr); one that finds it held by a process without an endpoint (another command) waits
for it, up to $CHAINABS_CHAIN_WAIT seconds (default 120), then stops with a sentence.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_checksum_address

from chainabs.chain import Chain, EmbeddedChain, RpcChain
from chainabs.chain.embedded import embedded_keys
from chainabs.chain.lock import ChainBusy, running_node
from chainabs.datadir import DataDir
from chainabs.deploy import Manifest, deploy_core
from chainabs.errors import ChainabsError, DeploymentError

WAIT_ENV = "CHAINABS_CHAIN_WAIT"
DEFAULT_WAIT = 120.0


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
                 deployment: str | os.PathLike[str] | None = None, create: bool = True,
                 route: bool = True) -> Context:
    """Open the chain and its core deployment, deploying the core contracts on first use.
    `route=False`: the embedded chain must be opened here, not reached through its holder."""
    data = DataDir.resolve(data_dir)
    root = data.root
    chain = open_embedded(data, route=route) if rpc is None else RpcChain(rpc)
    path = Path(deployment) if deployment else data.deployment_path(chain.chain_id)
    core = core_deployment(chain, path, create=create)
    return Context(data_dir=root, chain=chain, core=core, manifest_path=path)


def core_deployment(chain: Chain, path: Path, *, create: bool) -> Manifest:
    """The core deployment recorded at `path`, checked against the chain; deployed and recorded
    there first when missing and `create`."""
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
    return core


def _wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def hold_embedded(data: DataDir) -> EmbeddedChain:
    """The data dir's embedded chain opened by this process (its lock taken), or ChainBusy
    naming the process that holds it."""
    try:
        return EmbeddedChain(state_dir=data.chain_dir)
    except ChainBusy:
        node = running_node(data.chain_dir)
        holder = f"the service or node at {node.url} (pid {node.pid})" if node else "another chainabs process"
        raise ChainBusy(f"the embedded chain in {data.root} is held by {holder}; one process at a time may "
                        "hold a data dir's chain: stop that one first, or use it") from None


def open_embedded(data: DataDir, *, wait: float | None = None, route: bool = True,
                  say: Callable[[str], None] | None = None) -> Chain:
    """The data dir's embedded chain: opened here (taking its lock) when no other process holds
    it; through the JSON-RPC endpoint of the service or node that holds it; else, after waiting
    `wait` seconds for the holder to finish, ChainBusy with a sentence. Without `route` a held
    chain is ChainBusy at once, naming its holder."""
    say = say or (lambda text: print(f"chainabs: {text}", file=sys.stderr, flush=True))
    wait = _wait_seconds() if wait is None else wait
    if not route:
        return hold_embedded(data)
    deadline = time.monotonic() + wait
    waited = False
    while True:
        try:
            return EmbeddedChain(state_dir=data.chain_dir)
        except ChainBusy:
            pass
        node = running_node(data.chain_dir)
        if node is not None:
            try:
                chain = RpcChain(node.url, keys=embedded_keys(), expected_chain_id=node.chain_id, timeout=600.0)
            except ChainabsError:
                chain = None  # listed but not answering yet (starting) or any more (stopping)
            if chain is not None:
                say(f"the chain in {data.root} is held by the service at {node.url}; sending through it")
                return chain
        if time.monotonic() >= deadline:
            raise ChainBusy(f"the embedded chain in {data.root} is held by another chainabs process that serves no "
                            f"JSON-RPC (another command); waited {wait:.0f} s (${WAIT_ENV}). Let it finish and run "
                            "this again, or keep `chainabs serve` running on the data dir and every command goes "
                            "through it")
        if not waited:
            say(f"the chain in {data.root} is in use by another process; waiting for it (up to {wait:.0f} s)")
            waited = True
        time.sleep(0.1)
