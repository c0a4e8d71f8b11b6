"""Start and stop a local Anvil node (from the npm package) for tests, benchmarks and `make node`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from chainabs import paths
from chainabs.errors import RpcError

# Anvil's well-known development keys (public test mnemonic); never use them on a real network.
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f8a64eb2d5f4e3a0d7a1ddd2a9e8d0f5a10c9e60d22",
]


ANVIL_GAS_LIMIT = 150_000_000
"""Block gas limit of the Anvil nodes chainabs starts (`make node`, tests, benchmarks): a pool's
mint batches keep to half a block (about 2,700 loans), and two pipelined batches share a block,
so a block holds up to about 5,400 loans. Anvil rebuilds its state root once per block, so
fewer, fuller blocks cost it far less than many small ones (issue 16: 19 blocks of 5,000 loans
4.5 s of node CPU, 175 blocks of 536 loans 23 s)."""

PRUNE_HISTORY_STATES = 64
"""States of recent blocks Anvil keeps (`--prune-history`): enough for calls at any block a
chainabs command reads (the head, a reverted transaction's block before), without the memory
and the per-block cost of keeping every state of a long mint."""


def binary(name: str) -> Path:
    modules = paths.node_modules()
    local = modules / ".bin" / name if modules is not None else None
    if local is not None and local.exists():
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    raise RpcError(f"{name} not found: run `make setup` (npm installs @foundry-rs/{name}-linux-amd64)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """An Anvil process on 127.0.0.1; use as a context manager."""

    def __init__(self, port: int | None = None, *, block_gas_limit: int | None = ANVIL_GAS_LIMIT,
                 state: Path | None = None, prune_history: int | None = PRUNE_HISTORY_STATES) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(binary("anvil")), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if block_gas_limit:
            args += ["--gas-limit", str(block_gas_limit)]
        if state is not None:
            args += ["--state", str(state)]
        if prune_history is not None:
            args += ["--prune-history", str(prune_history)]
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Anvil:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RpcError(f"anvil exited at start: {err.strip()[:300]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RpcError(f"anvil did not listen on port {self.port} within {timeout:.0f} s")

    def kill(self) -> None:
        """Hard kill (SIGKILL), as a crashed node would go."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
