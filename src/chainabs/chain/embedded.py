"""The embedded chain: eth-tester's in-process py-evm with funded dev accounts, made durable by
the journal.

Where py-evm is in reach, this backend goes around web3 for speed: receipts, logs and storage
are read from py-evm's database directly, and gas is found by one simulation instead of a
binary search. Each shortcut returns what the generic path would.
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_utils import keccak, to_canonical_address
from web3 import Web3
from web3.types import TxParams, TxReceipt

from chainabs.chain.abi import decode_revert
from chainabs.chain.base import GWEI, Chain, RawLog, SetProbe, StorageReader
from chainabs.chain.fastpath import FastSend, use_fast_keccak
from chainabs.chain.journal import Journal
from chainabs.errors import ContractRevert

log = logging.getLogger(__name__)

EMBEDDED_GAS_LIMIT = 60_000_000
EMBEDDED_ACCOUNTS = 10
EMBEDDED_BALANCE = 10**12 * 10**18  # base fees can climb far on a busy embedded chain


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes eth-tester's TransactionFailed carries somewhere in its chain."""
    seen: BaseException | None = exc
    while seen is not None:
        first = seen.args[0] if seen.args else None
        if isinstance(first, (bytes, bytearray)):
            return bytes(first)
        if isinstance(first, str) and first.startswith("execution reverted: b"):
            return bytes(ast.literal_eval(first.removeprefix("execution reverted: ")))
        seen = seen.__cause__ or seen.__context__
    return None


def _tester_revert(exc: BaseException) -> ContractRevert:
    data = revert_data(exc)
    return decode_revert(data) if data is not None else ContractRevert("Revert", (str(exc),))


def embedded_keys(accounts: int = EMBEDDED_ACCOUNTS) -> list[str]:
    """The dev accounts' private keys (eth-tester's well-known ones), as 0x-hex."""
    from eth_tester.backends.pyevm.main import get_default_account_keys

    return ["0x" + k.to_bytes().hex() for k in get_default_account_keys(accounts)]


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


class EmbeddedChain(FastSend, Chain):
    """eth-tester's in-process py-evm chain with funded dev accounts.

    With a `state_dir` every mined transaction and empty block is journalled before its sender
    hears of it, and replayed at start: the same blocks, hash for hash; the chain folder's
    exclusive lock is held from the start until `close` (ChainBusy when another process has
    it). Not safe for two threads at once: callers that share it (the service and its JSON-RPC
    endpoint) hold one lock around it."""

    def __init__(self, *, accounts: int = EMBEDDED_ACCOUNTS, gas_limit: int = EMBEDDED_GAS_LIMIT,
                 state_dir: str | os.PathLike[str] | None = None) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from eth_tester.backends.pyevm.main import get_default_account_keys
        from web3 import EthereumTesterProvider

        use_fast_keccak()
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
        self._marks: dict[Any, int] = {}  # snapshot id -> journal size when it was taken
        if self.journal is not None:
            try:
                self.replayed = self._replay()
            except BaseException:
                self.journal.close()
                raise

    def close(self) -> None:
        """Stop journalling and drop the data dir's lock; the chain may not be sent to after."""
        if self.journal is not None:
            self.journal.close()

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
                self._send_raw(record.payload)
            count += 1
        log.info("replayed %d journal records from %s", count, self.journal.path)
        return count

    def _as_revert(self, exc: BaseException) -> ContractRevert | None:
        from eth_tester.exceptions import TransactionFailed

        return _tester_revert(exc) if isinstance(exc, TransactionFailed) else super()._as_revert(exc)

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

    def send_raw(self, raw: bytes) -> bytes:
        """A signed transaction from elsewhere (the JSON-RPC endpoint): mined, then journalled
        before its hash is returned, as `send` does for this process's own."""
        tx_hash = bytes(self.w3.eth.send_raw_transaction(raw))
        self._mined(raw, self._light_receipt(tx_hash))
        return tx_hash

    def _mined(self, raw: bytes, receipt: TxReceipt) -> None:
        if self.journal is not None:
            block = self.backend.chain.get_canonical_block_header_by_number(int(receipt["blockNumber"]))
            self.journal.append(b"T", int(block.timestamp), raw)

    def _gas_for(self, fn: Any, tx: dict[str, Any]) -> int:
        """py-evm estimates by binary search (about twenty executions): simulate once instead,
        then send with the block's gas limit; unused gas is not charged."""
        trial = fn.build_transaction({**tx, "gas": self.gas_limit, "nonce": 0})
        keys = ("from", "to", "data", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas")
        call = {k: trial[k] for k in keys if k in trial}
        try:
            self.w3.eth.call(cast(TxParams, call))
        except Exception as exc:
            revert = self._as_revert(exc)
            if revert is None:
                raise
            raise revert from None
        return self.gas_limit

    def storage_reader(self, address: str) -> StorageReader:
        """Read a contract's storage slots straight from py-evm's state, without the EVM (about
        four times faster than a view call for bulk existence checks)."""
        state = self.backend.chain.get_vm().state
        canonical = to_canonical_address(address)
        return lambda slot: int(state.get_storage(canonical, slot))

    def members(self, probe: SetProbe, keys: Sequence[int]) -> list[int]:
        """The set's members read from the mapping's slots (`keccak(key . slot)`), not by the view."""
        read = self.storage_reader(probe.address)
        slot = probe.slot.to_bytes(32, "big")
        return [i for i, key in enumerate(keys) if read(int.from_bytes(keccak(key.to_bytes(32, "big") + slot), "big"))]

    def log_source(self) -> EmbeddedSource:
        return EmbeddedSource(self)

    def snapshot(self) -> int:
        snapshot_id = int(self.tester.take_snapshot())
        if self.journal is not None:
            self._marks[snapshot_id] = self.journal.size()
        return snapshot_id

    def revert(self, snapshot_id: Any) -> None:
        """Back to a snapshot; on a durable chain the journal forgets what came after it too, so
        a restart replays the state reverted to."""
        self.tester.revert_to_snapshot(snapshot_id)
        if self.journal is not None and snapshot_id in self._marks:
            self.journal.truncate(self._marks[snapshot_id])
            self._marks = {k: v for k, v in self._marks.items() if v <= self._marks[snapshot_id]}

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.tester.mine_blocks(1)
            if self.journal is not None:
                self.journal.append(b"M", int(self.backend.chain.get_canonical_head().timestamp))

    def time_travel(self, timestamp: int) -> None:
        """Move the chain's clock forward: the next block is at `timestamp` (mines one block)."""
        self._set_next_timestamp(timestamp - 1)
        self.mine(1)


class EmbeddedSource:
    """The embedded chain's receipts, read from py-evm's database: about six times faster than
    eth-tester's `get_logs`, and the same logs in the same order."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self.backend = chain.backend

    def head(self) -> int:
        return int(self.backend.chain.get_canonical_head().block_number)

    def block(self, number: int) -> tuple[str, str] | None:
        from eth.exceptions import HeaderNotFound

        if not 0 <= number <= self.head():  # after a revert py-evm still maps higher numbers
            return None
        try:
            header = self.backend.chain.get_canonical_block_header_by_number(number)
        except HeaderNotFound:
            return None
        return "0x" + header.hash.hex(), "0x" + header.parent_hash.hex()

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        chain = self.backend.chain
        wanted = {bytes.fromhex(a[2:]) for a in addresses}
        out: list[RawLog] = []
        append = out.append
        head = min(to_block, self.head())
        for number in range(max(from_block, 0), head + 1):
            header = chain.get_canonical_block_header_by_number(number)
            receipts = chain.chaindb.get_receipts(header, chain.get_vm_class(header).get_receipt_builder())
            if not any(lg.address in wanted for r in receipts for lg in r.logs):
                continue
            block_hash = "0x" + header.hash.hex()
            transactions = chain.get_canonical_block_by_number(number).transactions
            index = 0
            for i, receipt in enumerate(receipts):
                tx_hash = None
                for lg in receipt.logs:
                    if lg.address in wanted:
                        if tx_hash is None:
                            tx_hash = "0x" + transactions[i].hash.hex()
                        append((number, block_hash, tx_hash, index, "0x" + lg.address.hex(),
                                [t.to_bytes(32, "big") for t in lg.topics], lg.data))
                    index += 1
        return out

