"""Connect to a chain: the embedded eth-tester (py-evm) chain or any JSON-RPC node.

    base.py      the interface (`Chain`), `Sent`, `RawCall`, `LogSource`, `SetProbe`
    abi.py       custom errors and event logs decoded from the committed artifacts
    embedded.py  `EmbeddedChain` and its py-evm log source
    journal.py   the embedded chain's durability: an fsynced journal replayed at start
    rpc.py       `RpcChain` and its `eth_getLogs` log source
    anvil.py     a local Anvil node for tests, benchmarks and `make node`
"""

from __future__ import annotations

from typing import Any

from chainabs.chain.abi import decode_revert, error_table
from chainabs.chain.base import (
    DEFAULT_TIP,
    GWEI,
    Chain,
    LogSource,
    RawCall,
    RawLog,
    Sent,
    SetProbe,
    StorageReader,
)
from chainabs.chain.embedded import (
    EMBEDDED_ACCOUNTS,
    EMBEDDED_BALANCE,
    EMBEDDED_GAS_LIMIT,
    EmbeddedChain,
    EmbeddedSource,
)
from chainabs.chain.rpc import KEY_ENV, RpcChain, RpcSource

__all__ = [
    "DEFAULT_TIP", "EMBEDDED_ACCOUNTS", "EMBEDDED_BALANCE", "EMBEDDED_GAS_LIMIT", "GWEI", "KEY_ENV",
    "Chain", "EmbeddedChain", "EmbeddedSource", "LogSource", "RawCall", "RawLog", "RpcChain", "RpcSource",
    "Sent", "SetProbe", "StorageReader", "connect", "decode_revert", "error_table",
]


def connect(rpc: str | None = None, **kwargs: Any) -> Chain:
    """The embedded chain when `rpc` is None, else a node by URL."""
    return EmbeddedChain(**kwargs) if rpc is None else RpcChain(rpc, **kwargs)
