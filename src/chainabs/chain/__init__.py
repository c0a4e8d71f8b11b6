"""Connect to a chain: the embedded eth-tester (py-evm) chain or any JSON-RPC node.

    base.py      the interface (`Chain`), `Sent`, `RawCall`, `LogSource`, `SetProbe`
    abi.py       custom errors and event logs decoded from the committed artifacts
    embedded.py  `EmbeddedChain` and its py-evm log source
    journal.py   the embedded chain's durability: an fsynced journal replayed at start
    rpc.py       `RpcChain` and its `eth_getLogs` log source
    anvil.py     a local Anvil node for tests, benchmarks and `make node`
"""

from __future__ import annotations

import sys
from typing import Any

import eth_tester  # noqa: F401  (here, not when the first embedded chain opens: see RECURSION_LIMIT)

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

RECURSION_LIMIT = 1000
"""CPython's default, put back here, once, after the imports that raise it: py_ecc (imported by
web3) sets 100,000 and py-evm (by eth-tester) 12,288. Under either, C code that recurses, such
as the JSON decoder given 200,000 '[', overflows the C stack and the process dies (SIGSEGV)
where it would raise RecursionError. The deepest Python stack a demo deal reaches through
py-evm (pool, deal, subscriptions, periods) is about 60 frames."""
sys.setrecursionlimit(RECURSION_LIMIT)

__all__ = [
    "DEFAULT_TIP", "EMBEDDED_ACCOUNTS", "EMBEDDED_BALANCE", "EMBEDDED_GAS_LIMIT", "GWEI", "KEY_ENV", "RECURSION_LIMIT",
    "Chain", "EmbeddedChain", "EmbeddedSource", "LogSource", "RawCall", "RawLog", "RpcChain", "RpcSource",
    "Sent", "SetProbe", "StorageReader", "connect", "decode_revert", "error_table",
]


def connect(rpc: str | None = None, **kwargs: Any) -> Chain:
    """The embedded chain when `rpc` is None, else a node by URL."""
    return EmbeddedChain(**kwargs) if rpc is None else RpcChain(rpc, **kwargs)
