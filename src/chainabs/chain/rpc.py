"""Any Ethereum JSON-RPC node (Anvil in the tests, a real network in production).

Transport failures are retried with a doubling delay and then become `RpcError`; a node's
JSON-RPC error object becomes `RpcError` at once (or `ChainError` for insufficient funds), so
a caller never sees requests' or web3's exceptions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint, TxReceipt

from chainabs.chain.base import Chain, RawLog
from chainabs.errors import ChainError, RpcError, WrongChain

log = logging.getLogger(__name__)

KEY_ENV = "CHAINABS_PRIVATE_KEY"

_RECEIPT_FIELD = re.compile(rb'"(status|gasUsed|blockNumber|contractAddress)"\s*:\s*(null|"0x[0-9a-fA-F]*")')
"""The receipt fields a sender needs, read from the node's raw answer without decoding its logs:
none of these keys occurs inside a log, whose blockNumber is the receipt's own."""


class RpcChain(Chain):
    """Any Ethereum JSON-RPC node, with keys from the environment or given explicitly."""

    RETRIES = 5

    def __init__(self, url: str, *, keys: list[str] | None = None, expected_chain_id: int | None = None,
                 timeout: float = 30.0) -> None:
        from web3 import HTTPProvider

        self.url = url
        self.timeout = timeout
        self._local = threading.local()  # each thread's session for raw receipts (_receipt_fields)
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
        """Poll the raw receipt and read only status, gas, block and contract address: decoding
        the thousands of logs of a mint batch (about 2 MB of JSON) costs the client more than
        the node's execution of it."""
        hex_hash = "0x" + bytes(tx_hash).hex()
        deadline = time.monotonic() + 120
        delay = 0.002  # a pipelined sender asks when the receipt is most likely there already
        while True:
            result = self._rpc(lambda: self._receipt_fields(hex_hash))
            if result:
                break
            if time.monotonic() > deadline:
                raise RpcError(f"transaction {hex_hash} not mined within 120 s")
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
        if self.confirmations:
            target = int(result["blockNumber"], 16) + self.confirmations
            while self.block_number() < target:
                time.sleep(0.2)
        return TxReceipt({  # type: ignore[typeddict-item]
            "status": int(result["status"], 16), "gasUsed": int(result["gasUsed"], 16),
            "blockNumber": int(result["blockNumber"], 16), "transactionHash": bytes(tx_hash),
            "contractAddress": result.get("contractAddress"), "logs": [],
        })

    def _receipt_fields(self, hex_hash: str) -> dict[str, Any] | None:
        """eth_getTransactionReceipt's status, gasUsed, blockNumber and contractAddress (None
        while the transaction is pending), read from the raw answer by _RECEIPT_FIELD; an
        answer without them (pending, or an error) is decoded as JSON. ValueError for a
        JSON-RPC error, as web3 raises it, for `_rpc` to translate."""
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [hex_hash]}
        body = session.post(self.url, json=request, timeout=self.timeout).content
        fields: dict[str, Any] = {}
        for key, value in _RECEIPT_FIELD.findall(body):
            fields.setdefault(key.decode(), None if value == b"null" else value[1:-1].decode())
        if "status" in fields and "gasUsed" in fields and "blockNumber" in fields:
            return fields
        answer = json.loads(body)
        if answer.get("error"):
            raise ValueError(answer["error"])
        if answer.get("result"):  # a receipt without the fields this reads: not one we can use
            raise RpcError(f"node answered eth_getTransactionReceipt for {hex_hash} without status or gasUsed")
        return None

    def log_source(self) -> RpcSource:
        return RpcSource(self)

    def snapshot(self) -> str:
        return str(self._rpc(lambda: self.w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]))

    def revert(self, snapshot_id: Any) -> None:
        self._rpc(lambda: self.w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot_id]))

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self._rpc(lambda: self.w3.provider.make_request(RPCEndpoint("evm_mine"), []))


class RpcSource:
    """Raw `eth_getLogs`, parsed here without web3's per-log formatting. Not retried: every
    failure becomes RpcError at once, which makes the indexer shrink its range."""

    def __init__(self, chain: RpcChain) -> None:
        self.provider = chain.w3.provider
        self.url = chain.url

    def _request(self, method: str, params: list[Any]) -> Any:
        import requests

        try:
            response = self.provider.make_request(method, params)  # type: ignore[arg-type]
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RpcError(f"{method} failed: node at {self.url} unreachable: {exc.__class__.__name__}") from None
        except Exception as exc:
            raise RpcError(f"{method} failed: {exc.__class__.__name__}: {exc}") from None
        error = response.get("error")
        if error:
            message = error.get("message", error) if isinstance(error, dict) else error
            raise RpcError(f"node refused {method}: {message}")
        return response.get("result")

    def head(self) -> int:
        return int(self._request("eth_blockNumber", []), 16)

    def block(self, number: int) -> tuple[str, str] | None:
        found = self._request("eth_getBlockByNumber", [hex(number), False])
        return None if not found else (found["hash"].lower(), found["parentHash"].lower())

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str]) -> list[RawLog]:
        result = self._request("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block),
                                                "address": list(addresses)}])
        try:
            return [(int(x["blockNumber"], 16), x["blockHash"].lower(), x["transactionHash"].lower(),
                     int(x["logIndex"], 16), x["address"].lower(), [bytes.fromhex(t[2:]) for t in x["topics"]],
                     bytes.fromhex(x["data"][2:]))
                    for x in result if not x.get("removed")]
        except (KeyError, TypeError, ValueError) as exc:
            raise RpcError(f"node answered eth_getLogs with a malformed log: {exc}") from None
