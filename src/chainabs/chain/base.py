"""The chain interface: what every backend does the same way, and the few things each does its own.

Shared here, for the embedded chain and any JSON-RPC node alike: deploy a contract from its
committed artifact, send a transaction (EIP-1559 fees that follow the base fee, a nonce under a
per-account lock, a wait for the receipt) and turn any revert into `ContractRevert` naming the
decoded custom error. Transactions are signed here with eth-account on both backends, so the
embedded chain sees exactly the bytes a real node would.

Each backend supplies snapshots, mining and a log source, and may replace the generic storage
reads with faster ones; callers ask the chain, never which chain it is.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import BlockIdentifier, TxParams, TxReceipt

from chainabs.build import load_artifact
from chainabs.chain.abi import decode_revert
from chainabs.errors import ChainError, ContractRevert, RpcError

log = logging.getLogger(__name__)

GWEI = 10**9
DEFAULT_TIP = 1 * GWEI

# (block_number, block_hash, tx_hash, log_index, address, topics, data); hashes and address
# are lower-case 0x-hex, topics 32-byte strings.
RawLog = tuple[int, str, str, int, str, Sequence[bytes], bytes]

StorageReader = Callable[[int], int]
"""A contract's storage: slot -> the 32-byte word as an integer (0 for a slot never written)."""


class LogSource(Protocol):
    """Raw logs and canonical block hashes of one chain: what the indexer and the audit read.

    Every failure of the source is an exception the indexer treats as a refusal of the range."""

    def head(self) -> int: ...

    def block(self, number: int) -> tuple[str, str] | None:
        """(hash, parent hash) of a canonical block, None when the chain has no such block."""

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]: ...


@dataclass(frozen=True)
class SetProbe:
    """A set kept by a contract as a `mapping(uint256 => ...)` whose non-zero entries are its
    members, and the view that asks about many keys at once.

    The two answer the same question: reading the mapping's storage slot by slot (cheap where
    storage is local) or calling `view`, a `(uint256[]) returns (uint256[])` function giving the
    indices of the keys that are members, with `chunk` keys per call (one round trip each)."""

    address: str
    slot: int
    view: str
    chunk: int


def revert_from(exc: ContractLogicError) -> ContractRevert:
    """The revert web3 reports: decoded from its data when it carries any, else its message."""
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return decode_revert(data)
    return ContractRevert("Revert", (exc.message or str(exc),))


@dataclass(frozen=True)
class RawCall:
    """A call whose calldata is already encoded: `Chain.send` takes it like a contract function.
    For hot paths where web3's argument validation and encoding cost more than the call."""

    to: str
    data: bytes

    def build_transaction(self, tx: dict[str, Any]) -> dict[str, Any]:
        return {**tx, "to": to_checksum_address(self.to), "data": "0x" + self.data.hex()}

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        raise NotImplementedError("give RawCall an explicit gas limit")


@dataclass
class Sent:
    """A mined transaction: its receipt and gas used."""

    receipt: TxReceipt

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"])

    @property
    def tx_hash(self) -> str:
        return "0x" + bytes(self.receipt["transactionHash"]).hex()

    @property
    def block_number(self) -> int:
        return int(self.receipt["blockNumber"])


class Chain(ABC):
    """One chain and the accounts that may sign on it.

    Invariants: a sending account's transactions are built, signed and sent one at a time (its
    lock), with the node's `pending` nonce, so concurrent senders never reuse a nonce; every
    revert, whether found by estimation, by a call or in a mined receipt, surfaces as
    `ContractRevert`; `_mined` hears of every mined transaction before its sender does.
    """

    w3: Web3
    signers: list[LocalAccount]
    confirmations: int = 0
    chain_id: int

    def __init__(self, w3: Web3, signers: list[LocalAccount]) -> None:
        self.w3 = w3
        self.signers = signers
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.chain_id = self._rpc(lambda: w3.eth.chain_id)

    # -- what each backend supplies --------------------------------------------------------

    @abstractmethod
    def snapshot(self) -> Any:
        """An id for the current state, for `revert`."""

    @abstractmethod
    def revert(self, snapshot_id: Any) -> None:
        """Back to the state of `snapshot`; blocks after it leave the canonical chain."""

    @abstractmethod
    def mine(self, blocks: int = 1) -> None:
        """Mine empty blocks."""

    @abstractmethod
    def log_source(self) -> LogSource:
        """The fastest way this backend has to read raw logs and block hashes."""

    def storage_reader(self, address: str) -> StorageReader:
        """Read a contract's storage slots: generically one `eth_getStorageAt` per slot."""
        checksum = to_checksum_address(address)
        return lambda slot: int.from_bytes(self._rpc(lambda: self.w3.eth.get_storage_at(checksum, slot)), "big")

    def members(self, probe: SetProbe, keys: Sequence[int]) -> list[int]:
        """Indices into `keys` of the set's members, ascending: generically by the probe's view,
        one call per chunk of keys (a node answers one call far sooner than as many slot reads)."""
        selector = keccak(text=probe.view)[:4]
        found: list[int] = []
        for start in range(0, len(keys), probe.chunk):
            chunk = list(keys[start:start + probe.chunk])
            data = selector + abi_encode(["uint256[]"], [chunk])
            reply = self._rpc(partial(self.w3.eth.call, {"to": probe.address, "data": data}))
            (indices,) = abi_decode(["uint256[]"], bytes(reply))
            found.extend(start + int(i) for i in indices)
        return found

    def _as_revert(self, exc: BaseException) -> ContractRevert | None:
        """The revert an exception of this backend reports, None when it is not a revert."""
        return revert_from(exc) if isinstance(exc, ContractLogicError) else None

    def _rpc(self, thunk: Callable[[], Any]) -> Any:
        """Run one request; transient transport failures are the subclass's to retry."""
        return thunk()

    def _send_raw(self, raw: bytes) -> bytes:
        """Send one signed transaction; its hash."""
        return bytes(self._rpc(lambda: self.w3.eth.send_raw_transaction(raw)))

    def _mined(self, raw: bytes, receipt: TxReceipt) -> None:  # noqa: B027 - a hook; only a journal needs it
        """Called with every mined transaction, before its sender is told."""

    def _light_receipt(self, tx_hash: bytes) -> TxReceipt:
        """Status, gas, block and hash of a mined transaction; a backend may skip its logs."""
        return self.wait(tx_hash)

    # -- accounts --------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return [s.address for s in self.signers]

    def signer(self, address: str | None = None) -> LocalAccount:
        if address is None:
            return self.signers[0]
        for s in self.signers:
            if s.address.lower() == address.lower():
                return s
        raise ChainError(f"no signing key for account {address}")

    def add_signer(self, account: LocalAccount) -> None:
        self.signers.append(account)

    # -- contracts -------------------------------------------------------------------------

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        sent = self.send(factory.constructor(*args), sender=sender)
        address = sent.receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {name} produced no contract address")
        log.info("deployed %s at %s (gas %d)", name, address, sent.gas_used)
        return self.contract(name, address)

    def call(self, fn: ContractFunction, block: BlockIdentifier = "latest") -> Any:
        try:
            return self._rpc(lambda: fn.call(block_identifier=block))
        except Exception as exc:
            revert = self._as_revert(exc)
            if revert is None:
                raise
            raise revert from None

    # -- transactions ----------------------------------------------------------------------

    def fees(self) -> dict[str, int]:
        """EIP-1559 fees that follow the base fee: room for it to double before inclusion."""
        base = int(self._rpc(lambda: self.w3.eth.get_block("latest")).get("baseFeePerGas", 0))
        return {"maxFeePerGas": 2 * base + DEFAULT_TIP, "maxPriorityFeePerGas": DEFAULT_TIP}

    @contextmanager
    def _account_lock(self, address: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(address.lower(), threading.Lock())
        with lock:
            yield

    def send(self, fn: Any, *, sender: str | None = None, value: int = 0, gas: int | None = None,
             logs: bool = True) -> Sent:
        """Sign and send a contract call or constructor; wait for the receipt; raise on revert.

        `logs=False` lets a backend skip decoding the receipt's logs (bulk minting emits
        thousands); the receipt then has status, gas, block and hash only.
        """
        account = self.signer(sender)
        with self._account_lock(account.address):
            tx: dict[str, Any] = {"from": account.address, "value": value, "chainId": self.chain_id, **self.fees()}
            if gas is None:
                gas = self._gas_for(fn, tx)
            tx["gas"] = gas
            tx["nonce"] = self._rpc(lambda: self.w3.eth.get_transaction_count(account.address, "pending"))
            built = fn.build_transaction(tx)
            raw = account.sign_transaction(built).raw_transaction
            tx_hash = self._send_raw(raw)
            receipt = self.wait(tx_hash) if logs else self._light_receipt(tx_hash)
            self._mined(bytes(raw), receipt)
        if receipt["status"] != 1:
            raise self._replay_revert(built, receipt)
        return Sent(receipt)

    def send_many(self, calls: Iterable[tuple[Any, int]], *, sender: str | None = None, window: int = 4,
                  mined: Callable[[Sent], None] | None = None) -> list[Sent]:
        """Send (call, gas limit) pairs in order without waiting for each to be mined: nonces in
        sequence from the node's pending count, at most `window` in flight, each receipt (status,
        gas, block, hash) collected once the window is full and at the end. A node packs what
        arrives together into one block, and the next call is encoded while the node executes.

        For bulk work whose transactions need no result of the one before (a pool's mint
        batches, revolving purchases). `calls` is read lazily. Each transaction is signed with
        the fees of the latest block: with at most `window` blocks between that block and its
        own, the base fee cannot outgrow the doubling `fees` allows for (4 full blocks: x1.6).
        At the first revert or refusal nothing more is sent; the receipts of what was sent are
        collected (and each mined one reported to `_mined`), then the first revert is raised.
        `mined` hears of each transaction as its receipt is collected, in order."""
        account = self.signer(sender)
        sent: list[Sent] = []
        failure: Exception | None = None
        in_flight: deque[tuple[bytes, dict[str, Any], bytes]] = deque()

        def collect() -> None:
            nonlocal failure
            raw, built, tx_hash = in_flight.popleft()
            receipt = self._light_receipt(tx_hash)
            self._mined(raw, receipt)
            if receipt["status"] != 1 and failure is None:
                failure = self._replay_revert(built, receipt)
            sent.append(Sent(receipt))
            if mined is not None:
                mined(sent[-1])

        with self._account_lock(account.address):
            nonce = self._rpc(lambda: self.w3.eth.get_transaction_count(account.address, "pending"))
            for fn, gas in calls:
                if failure is not None:
                    break
                tx = {"from": account.address, "value": 0, "chainId": self.chain_id, "gas": gas, "nonce": nonce,
                      **self.fees()}
                built = fn.build_transaction(tx)
                raw = bytes(account.sign_transaction(built).raw_transaction)
                try:
                    tx_hash = self._send_raw(raw)
                except Exception as exc:
                    failure = exc
                    break
                in_flight.append((raw, built, tx_hash))
                nonce += 1
                while len(in_flight) >= max(1, window):
                    collect()
            while in_flight:
                collect()
        if failure is not None:
            raise failure
        return sent

    def _gas_for(self, fn: Any, tx: dict[str, Any]) -> int:
        """Gas for a transaction, surfacing a revert before anything is sent."""
        try:
            estimate = self._rpc(lambda: fn.estimate_gas(tx))
        except ContractLogicError as exc:
            raise revert_from(exc) from None
        return int(estimate * 1.2) + 10_000

    def wait(self, tx_hash: bytes, timeout: float = 120.0) -> TxReceipt:
        try:
            receipt = self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(
                Hash32(tx_hash), timeout=timeout, poll_latency=0.05))
        except TimeExhausted as exc:
            raise RpcError(f"transaction 0x{bytes(tx_hash).hex()} not mined within {timeout:.0f} s") from exc
        if self.confirmations:
            target = int(receipt["blockNumber"]) + self.confirmations
            while self.block_number() < target:
                time.sleep(0.2)
        return receipt

    def _replay_revert(self, tx: dict[str, Any], receipt: TxReceipt) -> ContractRevert:
        """Why a mined transaction failed: it is replayed as a call on the block before its own."""
        call = {k: tx[k] for k in ("from", "to", "data", "value", "maxFeePerGas", "maxPriorityFeePerGas") if k in tx}
        try:
            self.w3.eth.call(cast(TxParams, call), block_identifier=int(receipt["blockNumber"]) - 1)
        except Exception as exc:
            err = self._as_revert(exc)
            if err is None:
                raise
            err.tx = "0x" + bytes(receipt["transactionHash"]).hex()
            return err
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        return ContractRevert("Reverted", (f"out of gas or state changed; tx {tx_hash}",))

    # -- chain state -----------------------------------------------------------------------

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number))
