"""Connect to a chain: the embedded eth-tester (py-evm) chain or any JSON-RPC node.

Both are one small interface, `Chain`: deploy a contract from its committed artifact, send a
transaction (EIP-1559 fees that follow the base fee, a nonce under a per-account lock, a wait
for the receipt) and turn any revert into `ContractRevert` naming the decoded custom error.
Transactions are signed here with eth-account on both backends, so the embedded chain sees
exactly the bytes a real node would.
"""

from __future__ import annotations

import ast
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import TxReceipt

from chainabs.build import artifact_names, load_artifact
from chainabs.errors import ChainError, ContractRevert, RpcError, WrongChain
from chainabs.journal import Journal

log = logging.getLogger(__name__)

GWEI = 10**9
DEFAULT_TIP = 1 * GWEI
EMBEDDED_GAS_LIMIT = 60_000_000
EMBEDDED_ACCOUNTS = 10
EMBEDDED_BALANCE = 10**12 * 10**18  # base fees can climb far on a busy embedded chain
KEY_ENV = "CHAINABS_PRIVATE_KEY"


# -- revert decoding ---------------------------------------------------------------------------

def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


@cache
def error_table() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Selector -> (name, argument names, argument types) over every artifact's custom errors."""
    table: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
        bytes.fromhex("08c379a0"): ("Error", ("message",), ("string",)),
        bytes.fromhex("4e487b71"): ("Panic", ("code",), ("uint256",)),
    }
    for name in artifact_names():
        for item in load_artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = tuple(_abi_type(p) for p in item["inputs"])
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], tuple(p["name"] or f"arg{i}" for i, p in enumerate(item["inputs"])), types)
    return table


def decode_revert(data: bytes | str | None) -> ContractRevert:
    """Turn raw revert data into a ContractRevert with the error's name and named arguments."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x")) if data.startswith("0x") else None
    if not data:
        return ContractRevert("UnknownRevert", ())
    entry = error_table().get(data[:4])
    if entry is None:
        return ContractRevert("UnknownCustomError", ("0x" + data.hex(),))
    name, names, types = entry
    values = abi_decode(list(types), data[4:])
    return ContractRevert(name, dict(zip(names, values, strict=True)))


def _revert_from(exc: ContractLogicError) -> ContractRevert:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return decode_revert(data)
    return ContractRevert("Revert", (exc.message or str(exc),))


def _tester_revert(exc: BaseException) -> ContractRevert:
    """eth-tester's TransactionFailed carries the raw revert bytes somewhere in its chain."""
    seen: BaseException | None = exc
    while seen is not None:
        first = seen.args[0] if seen.args else None
        if isinstance(first, (bytes, bytearray)):
            return decode_revert(bytes(first))
        if isinstance(first, str) and first.startswith("execution reverted: b"):
            literal = ast.literal_eval(first.removeprefix("execution reverted: "))
            return decode_revert(bytes(literal))
        seen = seen.__cause__ or seen.__context__
    return ContractRevert("Revert", (str(exc),))


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


# -- the interface -----------------------------------------------------------------------------

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


class Chain:
    """One chain and the accounts that may sign on it."""

    w3: Web3
    signers: list[LocalAccount]
    confirmations: int = 0

    def __init__(self, w3: Web3, signers: list[LocalAccount]) -> None:
        self.w3 = w3
        self.signers = signers
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.chain_id = self._rpc(lambda: w3.eth.chain_id)

    # accounts
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

    # contracts
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

    def call(self, fn: ContractFunction, block: int | str = "latest") -> Any:
        from eth_tester.exceptions import TransactionFailed

        try:
            return self._rpc(lambda: fn.call(block_identifier=block))
        except ContractLogicError as exc:
            raise _revert_from(exc) from None
        except TransactionFailed as exc:
            raise _tester_revert(exc) from None

    # transactions
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
            tx_hash = self._rpc(lambda: self.w3.eth.send_raw_transaction(raw))
            receipt = self.wait(tx_hash) if logs else self._light_receipt(tx_hash)
            self._mined(bytes(raw), receipt)
        if receipt["status"] != 1:
            raise self._replay_revert(built, receipt)
        return Sent(receipt)

    def _gas_for(self, fn: Any, tx: dict[str, Any]) -> int:
        """Gas for a transaction, surfacing a revert before anything is sent."""
        try:
            estimate = self._rpc(lambda: fn.estimate_gas(tx))
        except ContractLogicError as exc:
            raise _revert_from(exc) from None
        return int(estimate * 1.2) + 10_000

    def _mined(self, raw: bytes, receipt: TxReceipt) -> None:
        """Called with every mined transaction, before its sender is told."""

    def _light_receipt(self, tx_hash: bytes) -> TxReceipt:
        return self.wait(tx_hash)

    def wait(self, tx_hash: bytes, timeout: float = 120.0) -> TxReceipt:
        try:
            receipt = self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05))
        except TimeExhausted as exc:
            raise RpcError(f"transaction 0x{bytes(tx_hash).hex()} not mined within {timeout:.0f} s") from exc
        if self.confirmations:
            target = int(receipt["blockNumber"]) + self.confirmations
            while self.block_number() < target:
                time.sleep(0.2)
        return receipt

    def _replay_revert(self, tx: dict[str, Any], receipt: TxReceipt) -> ContractRevert:
        call = {k: tx[k] for k in ("from", "to", "data", "value", "maxFeePerGas", "maxPriorityFeePerGas") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=int(receipt["blockNumber"]) - 1)
        except Exception as exc:  # noqa: BLE001 - either backend's revert type
            if not isinstance(exc, ContractLogicError) and type(exc).__name__ != "TransactionFailed":
                raise
            err = _revert_from(exc) if isinstance(exc, ContractLogicError) else _tester_revert(exc)
            err.tx = "0x" + bytes(receipt["transactionHash"]).hex()
            return err
        return ContractRevert("Reverted", (f"out of gas or state changed; tx 0x{bytes(receipt['transactionHash']).hex()}",))

    # chain state
    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number))

    def snapshot(self) -> Any:
        raise NotImplementedError

    def revert(self, snapshot_id: Any) -> None:
        raise NotImplementedError

    def mine(self, blocks: int = 1) -> None:
        raise NotImplementedError

    def _rpc(self, thunk: Callable[[], Any]) -> Any:
        """Run one request; transient transport failures are the subclass's to retry."""
        return thunk()


def _call_fees_middleware(backend: Any) -> type:
    """eth-tester validates an eth_call's fee against the base fee as if it were sent, and
    defaults to 1 gwei, so plain calls fail once the base fee rises above it. Give calls and
    estimates that name no fee the pending block's base fee."""
    from web3.middleware import Web3Middleware

    class CallFees(Web3Middleware):
        def request_processor(self, method: Any, params: Any) -> Any:
            if method in ("eth_call", "eth_estimateGas") and params and isinstance(params[0], dict):
                tx = params[0]
                if "gasPrice" not in tx and "maxFeePerGas" not in tx:
                    base = backend.chain.get_block().header.base_fee_per_gas
                    params = [{**tx, "maxFeePerGas": 2 * base + GWEI, "maxPriorityFeePerGas": 0}, *params[1:]]
            return method, params

    return CallFees


def _backend_class() -> type:
    """eth-tester's py-evm backend, with each block's prevrandao (mix hash) derived from its
    parent instead of drawn at random: replaying the journal then re-creates the very same
    blocks and hashes, so an index built before a restart stays valid after it."""
    from eth_tester import PyEVMBackend
    from eth_tester.backends.pyevm.main import ParisVM, PragueVM, get_total_blob_gas

    class DeterministicPyEVMBackend(PyEVMBackend):  # type: ignore[misc]
        def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = b"\0" * 20) -> tuple[bytes, ...]:
            hashes = []
            for _ in range(num_blocks):
                kwargs: dict[str, Any] = {"coinbase": coinbase}
                vm = self.chain.get_vm()
                if isinstance(vm, ParisVM):
                    parent = self.chain.get_canonical_head().hash
                    kwargs["mix_hash"] = keccak(b"chainabs-prevrandao" + parent)
                if isinstance(vm, PragueVM):
                    kwargs["blob_gas_used"] = sum(get_total_blob_gas(tx) for tx in self.chain.get_block().transactions)
                hashes.append(self.chain.mine_block(**kwargs).hash)
            return tuple(hashes)

    return DeterministicPyEVMBackend


class EmbeddedChain(Chain):
    """eth-tester's in-process py-evm chain with funded dev accounts."""

    def __init__(self, *, accounts: int = EMBEDDED_ACCOUNTS, gas_limit: int = EMBEDDED_GAS_LIMIT,
                 state_dir: str | os.PathLike[str] | None = None) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from eth_tester.backends.pyevm.main import get_default_account_keys
        from web3 import EthereumTesterProvider

        keys = get_default_account_keys(accounts)
        genesis_state = {
            k.public_key.to_canonical_address(): {"balance": EMBEDDED_BALANCE, "storage": {}, "code": b"", "nonce": 0}
            for k in keys
        }
        self.journal = Journal(Path(state_dir)) if state_dir is not None else None
        overrides: dict[str, Any] = {"gas_limit": gas_limit}
        if self.journal is not None:
            overrides["timestamp"] = self.journal.genesis_timestamp
        params = PyEVMBackend.generate_genesis_params(overrides=overrides)
        self.backend = _backend_class()(genesis_parameters=params, genesis_state=genesis_state)
        self.tester = EthereumTester(backend=self.backend)
        w3 = Web3(EthereumTesterProvider(self.tester))
        w3.middleware_onion.add(_call_fees_middleware(self.backend), name="call_fees")
        super().__init__(w3, [Account.from_key(k.to_bytes()) for k in keys])
        self.gas_limit = gas_limit
        if self.journal is not None:
            self.replayed = self._replay()

    def _set_next_timestamp(self, timestamp: int) -> None:
        chain = self.backend.chain
        chain.header = chain.header.copy(timestamp=timestamp)

    def _replay(self) -> int:
        assert self.journal is not None
        count = 0
        for record in self.journal.records():
            self._set_next_timestamp(record.timestamp)
            if record.kind == b"M":
                self.backend.mine_blocks(1)
            else:
                self.w3.eth.send_raw_transaction(record.payload)
            count += 1
        log.info("replayed %d journal records from %s", count, self.journal.path)
        return count

    def _light_receipt(self, tx_hash: bytes) -> TxReceipt:
        """Status and gas straight from py-evm, without formatting thousands of logs."""
        chain = self.backend.chain
        block_number, index = chain.chaindb.get_transaction_index(bytes(tx_hash))
        header = chain.get_canonical_block_header_by_number(block_number)
        receipts = chain.chaindb.get_receipts(header, chain.get_vm_class(header).get_receipt_builder())
        before = receipts[index - 1].gas_used if index else 0
        receipt = receipts[index]
        return TxReceipt({  # type: ignore[typeddict-item]
            "status": 1 if receipt.state_root == b"\x01" else 0,
            "gasUsed": receipt.gas_used - before,
            "blockNumber": block_number,
            "transactionHash": bytes(tx_hash),
            "contractAddress": None,
            "logs": [],
        })

    def _mined(self, raw: bytes, receipt: TxReceipt) -> None:
        if self.journal is not None:
            block = self.backend.chain.get_canonical_block_header_by_number(int(receipt["blockNumber"]))
            self.journal.append(b"T", int(block.timestamp), raw)

    def _gas_for(self, fn: Any, tx: dict[str, Any]) -> int:
        """py-evm estimates by binary search (about twenty executions): simulate once instead,
        then send with the block's gas limit; unused gas is not charged."""
        from eth_tester.exceptions import TransactionFailed

        trial = fn.build_transaction({**tx, "gas": self.gas_limit, "nonce": 0})
        call = {k: trial[k] for k in ("from", "to", "data", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas") if k in trial}
        try:
            self.w3.eth.call(call)
        except ContractLogicError as exc:
            raise _revert_from(exc) from None
        except TransactionFailed as exc:
            raise _tester_revert(exc) from None
        return self.gas_limit

    def storage_reader(self, address: str) -> Callable[[int], int]:
        """Read a contract's storage slots straight from py-evm's state, without the EVM (about
        four times faster than a view call for bulk existence checks)."""
        from eth_utils import to_canonical_address

        state = self.backend.chain.get_vm().state
        canonical = to_canonical_address(address)
        return lambda slot: int(state.get_storage(canonical, slot))

    def snapshot(self) -> int:
        return int(self.tester.take_snapshot())

    def revert(self, snapshot_id: Any) -> None:
        self.tester.revert_to_snapshot(snapshot_id)

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.tester.mine_blocks(1)
            if self.journal is not None:
                self.journal.append(b"M", int(self.backend.chain.get_canonical_head().timestamp))

    def time_travel(self, timestamp: int) -> None:
        """Move the chain's clock forward: the next block is at `timestamp` (mines one block)."""
        self._set_next_timestamp(timestamp - 1)
        self.mine(1)


class RpcChain(Chain):
    """Any Ethereum JSON-RPC node, with keys from the environment or given explicitly."""

    RETRIES = 5

    def __init__(self, url: str, *, keys: list[str] | None = None, expected_chain_id: int | None = None,
                 timeout: float = 30.0) -> None:
        from web3 import HTTPProvider

        self.url = url
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
        if keys is None:  # one key, or several separated by commas (the first signs by default)
            keys = [k.strip() for k in os.environ.get(KEY_ENV, "").split(",") if k.strip()]
        try:
            signers = [Account.from_key(k) for k in keys]
        except (ValueError, TypeError):
            raise ChainError("a signing key is malformed: expected 32 bytes as 64 hex digits") from None
        super().__init__(w3, signers)
        if expected_chain_id is not None and self.chain_id != expected_chain_id:
            raise WrongChain(f"node at {url} is chain {self.chain_id}, expected {expected_chain_id}")

    def _rpc(self, thunk: Callable[[], Any]) -> Any:
        import requests

        delay = 0.2
        for attempt in range(self.RETRIES):
            try:
                return thunk()
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.RETRIES - 1:
                    raise RpcError(f"node at {self.url} unreachable: {exc.__class__.__name__}") from None
                log.warning("RPC to %s failed (%s); retrying in %.1f s", self.url, exc.__class__.__name__, delay)
                time.sleep(delay)
                delay *= 2
            except ValueError as exc:  # JSON-RPC error object
                text = str(exc)
                if "insufficient funds" in text:
                    raise ChainError("insufficient funds for gas * price + value") from None
                raise RpcError(f"node refused the request: {text}") from None
        raise AssertionError("unreachable")

    def _light_receipt(self, tx_hash: bytes) -> TxReceipt:
        """Poll the raw receipt and read only status and gas: web3's formatting of thousands of
        logs costs more than the node's execution of a mint batch."""
        hex_hash = "0x" + bytes(tx_hash).hex()
        deadline = time.monotonic() + 120
        while True:
            raw = self._rpc(lambda: self.w3.provider.make_request("eth_getTransactionReceipt", [hex_hash]))
            result = raw.get("result")
            if result:
                break
            if time.monotonic() > deadline:
                raise RpcError(f"transaction {hex_hash} not mined within 120 s")
            time.sleep(0.02)
        if self.confirmations:
            target = int(result["blockNumber"], 16) + self.confirmations
            while self.block_number() < target:
                time.sleep(0.2)
        return TxReceipt({  # type: ignore[typeddict-item]
            "status": int(result["status"], 16), "gasUsed": int(result["gasUsed"], 16),
            "blockNumber": int(result["blockNumber"], 16), "transactionHash": bytes(tx_hash),
            "contractAddress": result.get("contractAddress"), "logs": [],
        })

    def snapshot(self) -> str:
        return str(self._rpc(lambda: self.w3.provider.make_request("evm_snapshot", [])["result"]))

    def revert(self, snapshot_id: Any) -> None:
        self._rpc(lambda: self.w3.provider.make_request("evm_revert", [snapshot_id]))

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self._rpc(lambda: self.w3.provider.make_request("evm_mine", []))


def connect(rpc: str | None = None, **kwargs: Any) -> Chain:
    """The embedded chain when `rpc` is None, else a node by URL."""
    return EmbeddedChain(**kwargs) if rpc is None else RpcChain(rpc, **kwargs)
