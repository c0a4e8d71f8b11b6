"""The embedded chain's fast path: the same EVM, state, receipts, logs and gas, with less around it.

A mint of 100,000 loans spent a third of its time in py-evm's execution, a third in its
storage-trie updates, and the rest in hashing, RLP and the layers above py-evm (issue 16's
profile). The levers here change how py-evm is reached and which C code does its hashing and
encoding, never what it computes:

- keccak: py-evm, trie and eth-utils hash through eth-hash's auto backend, which picks
  pycryptodome's object-per-hash API. `use_fast_keccak` points it at safe-pysha3's C keccak, the
  effect of ETH_HASH_BACKEND=pysha3 without importing the `sha3` wrapper (which patches hashlib).
- RLP: pyrlp encodes and decodes through the rusty-rlp wheel when it is installed (a chainabs
  dependency); `rlp_backend` says which one is in use.
- sending: `apply_raw` decodes the signed bytes with the VM's own transaction builder, applies
  them and mines one block with the chain's deterministic miner: what eth-tester does under
  web3's `send_raw_transaction`, without web3's request stack, eth-tester's validation and the
  block it formats for filters after every mine. The journal keeps the same signed bytes and
  replays them through the same function, so a chain rebuilt from it is block for block the same.
"""

from __future__ import annotations

from typing import Any

from chainabs.errors import ChainError
from chainabs.merkle import _pysha3_hasher

keccak_backend = "eth-hash auto"
"""The keccak that py-evm hashes with: "pysha3" once `use_fast_keccak` has switched it."""

_EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def use_fast_keccak() -> str:
    """Make eth-hash's shared keccak (used by py-evm, trie, eth-utils and web3) the pysha3 C
    function when safe-pysha3 is installed; returns the backend now in use."""
    global keccak_backend
    from eth_hash.auto import keccak

    hasher = _pysha3_hasher()
    if hasher is not None and hasher(b"") == _EMPTY_KECCAK:
        keccak.hasher = hasher  # type: ignore[assignment]  # bytes in, as every caller passes
        keccak_backend = "pysha3"
    return keccak_backend


def rlp_backend() -> str:
    """Which RLP codec pyrlp uses: rusty-rlp (compiled) when importable, else pure Python."""
    import rlp.codec

    return "rusty-rlp" if hasattr(rlp.codec, "rusty_rlp") else "python"


class FastSend:
    """Mixed into the embedded chain: its raw transactions go straight to py-evm."""

    backend: Any

    def _send_raw(self, raw: bytes) -> bytes:
        return apply_raw(self.backend, raw)


def apply_raw(backend: Any, raw: bytes) -> bytes:
    """Apply one signed transaction to eth-tester's py-evm chain and mine it into its own block
    (eth-tester's auto-mining); returns the transaction hash. A transaction the chain cannot
    take (nonce, funds, fee, gas limit) changes nothing and raises ChainError naming why."""
    from eth_utils import ValidationError

    chain = backend.chain
    try:
        transaction = chain.get_vm().get_transaction_builder().decode(bytes(raw))
        chain.apply_transaction(transaction)
    except ValidationError as exc:
        raise ChainError(f"the embedded chain refused the transaction: {exc}") from None
    backend.mine_blocks(1)
    return bytes(transaction.hash)
