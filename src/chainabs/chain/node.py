"""The embedded chain as a node: standard Ethereum JSON-RPC over HTTP for every client (web3.py,
cast, a browser wallet, chainabs's own CLI in another process).

The methods' semantics are eth-tester's and web3's own: a request goes through the embedded
chain's web3 middleware and `EthereumTesterProvider` (web3.providers.eth_tester), which map
JSON-RPC methods onto eth-tester and format its answers as RPC results; this module only puts
those results on the wire (quantities and byte strings as 0x-hex) and adds what a node needs
beyond eth-tester:

- writes stay durable: `eth_sendRawTransaction` (and `eth_sendTransaction` for the dev
  accounts, signed here as Anvil's unlocked accounts are) is mined, then fsynced to the
  journal, then answered; `evm_mine`/`anvil_mine` journal their blocks; `evm_revert` truncates
  the journal back to its snapshot, so a restart replays what the chain shows;
- fees: `eth_gasPrice` follows the base fee (eth-tester's fixed 1 gwei falls below it), calls
  and estimates that name no fee get one (the chain's call_fees middleware);
- reverts are JSON-RPC error 3 with the revert data, as Geth and Anvil answer, so clients
  decode custom errors;
- Anvil's helpers where they can be journalled: evm_snapshot, evm_revert, evm_mine,
  evm_increaseTime, evm_setNextBlockTimestamp, anvil_mine, anvil_setNextBlockTimestamp,
  anvil_snapshot, anvil_revert. Those that would change state without a signed transaction
  (anvil_setBalance, anvil_setCode, impersonation) are refused with a sentence.

Every request holds one lock around the chain (the service's `chain_lock`), the chain not being
safe for two threads at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from chainabs import __version__
from chainabs.chain.base import DEFAULT_TIP
from chainabs.chain.embedded import EmbeddedChain, revert_data
from chainabs.jsondepth import nested_deeper_than

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RPC_PATH = "/rpc"
MAX_RPC_BODY = 64 * 1024 * 1024  # a mint batch's calldata, hex-encoded, with room to spare
MAX_RPC_DEPTH = 64
MAX_BATCH = 1000
ZERO_ADDRESS = "0x" + "0" * 40

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, SERVER_ERROR, REVERTED = (
    -32700, -32600, -32601, -32602, -32000, 3)

NOT_JOURNALLED = ("anvil_setBalance", "anvil_setCode", "anvil_setNonce", "anvil_setStorageAt",
                  "anvil_impersonateAccount", "anvil_stopImpersonatingAccount", "anvil_autoImpersonateAccount",
                  "anvil_reset", "anvil_dropTransaction", "anvil_setCoinbase", "hardhat_setBalance",
                  "hardhat_setCode", "hardhat_impersonateAccount", "hardhat_reset")


class RpcFailure(Exception):
    """A JSON-RPC error object to answer with."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def wire(value: Any) -> Any:
    """An RPC result as JSON: integers as QUANTITY (0x-hex), byte strings as DATA (0x-hex)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _bloom(v) if k == "logsBloom" else wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    return str(value)


def _bloom(value: Any) -> Any:
    """eth-tester gives a bloom filter as an integer; on the wire it is 256 bytes of DATA."""
    return "0x" + value.to_bytes(256, "big").hex() if isinstance(value, int) else wire(value)


def _quantity(value: Any, what: str) -> int:
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        shown = str(value)[:40]
        raise RpcFailure(INVALID_PARAMS, f"{what} must be a quantity (0x-hex or a number), got {shown!r}") from None


def _data(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcFailure(INVALID_PARAMS, f"{what} must be 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RpcFailure(INVALID_PARAMS, f"{what} is not valid hex") from None


class EmbeddedNode:
    """JSON-RPC requests answered by one EmbeddedChain, under `lock`."""

    def __init__(self, chain: EmbeddedChain, lock: AbstractContextManager[Any] | None = None) -> None:
        self.chain = chain
        self.lock = lock if lock is not None else threading.RLock()
        w3 = chain.w3
        self._request = w3.provider.request_func(w3, w3.middleware_onion)
        self._keys = {s.address.lower(): s for s in chain.signers}
        self._handlers: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda p: chain.chain_id,
            "net_version": lambda p: str(chain.chain_id),
            "net_listening": lambda p: True,
            "web3_clientVersion": lambda p: f"chainabs/{__version__}/eth-tester-py-evm",
            "eth_gasPrice": lambda p: self._base_fee() + DEFAULT_TIP,
            "eth_maxPriorityFeePerGas": lambda p: DEFAULT_TIP,
            "eth_accounts": lambda p: [s.address for s in chain.signers],
            "eth_sendRawTransaction": self._send_raw,
            "eth_sendTransaction": self._send_transaction,
            "evm_mine": self._mine,
            "anvil_mine": self._anvil_mine,
            "evm_snapshot": lambda p: chain.snapshot(),
            "anvil_snapshot": lambda p: chain.snapshot(),
            "evm_revert": self._revert,
            "anvil_revert": self._revert,
            "evm_increaseTime": self._increase_time,
            "evm_setNextBlockTimestamp": self._next_timestamp,
            "anvil_setNextBlockTimestamp": self._next_timestamp,
        }

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, payload: Any) -> Any:
        """One request object or a batch (a list), answered as JSON-RPC 2.0."""
        if isinstance(payload, list):
            if not payload:
                return self._error(None, RpcFailure(INVALID_REQUEST, "empty batch"))
            if len(payload) > MAX_BATCH:
                return self._error(None, RpcFailure(INVALID_REQUEST, f"a batch of more than {MAX_BATCH} requests"))
            return [self._one(item) for item in payload]
        return self._one(payload)

    @staticmethod
    def _error(request_id: Any, failure: RpcFailure) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "error": failure.as_dict()}

    def _one(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return self._error(None, RpcFailure(INVALID_REQUEST, "a request is an object with a string 'method'"))
        request_id = request.get("id")
        params = request.get("params", [])
        if not isinstance(params, list):
            return self._error(request_id, RpcFailure(INVALID_PARAMS, "params must be an array"))
        try:
            with self.lock:
                result = self.call(request["method"], params)
        except RpcFailure as failure:
            return self._error(request_id, failure)
        except Exception as exc:
            return self._error(request_id, self._failure(exc))
        return {"jsonrpc": "2.0", "id": request_id, "result": wire(result)}

    def call(self, method: str, params: list[Any]) -> Any:
        """One method's result (not yet on the wire); the caller holds the lock."""
        handler = self._handlers.get(method)
        if handler is not None:
            return handler(params)
        if method in NOT_JOURNALLED:
            raise RpcFailure(METHOD_NOT_FOUND, f"{method} is not offered by the embedded chain: its journal keeps "
                                               "only signed transactions and mined blocks, so the change would not "
                                               "survive a restart")
        if method in ("eth_call", "eth_estimateGas") and params and isinstance(params[0], dict) \
                and "input" in params[0]:  # the newer name of a call's data (cast sends it)
            call = dict(params[0])
            call["data"] = call.pop("input")
            params = [call, *params[1:]]
        if method in ("eth_call", "eth_estimateGas") and params and isinstance(params[0], dict):
            params = [self._affordable(params[0]), *params[1:]]
        if method in ("eth_call", "eth_estimateGas") and params[1:2] == ["pending"]:
            params = [params[0], "latest", *params[2:]]  # every transaction is mined at once: the same state
        response = self._request(method, params)
        if "error" in response:
            error = response["error"]
            message = error.get("message", str(error)) if isinstance(error, Mapping) else str(error)
            code = METHOD_NOT_FOUND if "Unknown RPC Endpoint" in message or "not been implemented" in message \
                else SERVER_ERROR
            raise RpcFailure(code, message)
        result = response.get("result")
        if method == "eth_getTransactionReceipt" and isinstance(result, Mapping):
            result = self._with_bloom(dict(result))
        return result

    def _with_bloom(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """eth-tester's receipts lack the bloom filter that clients (cast) require: read it from py-evm."""
        chain = self.chain.backend.chain
        tx_hash = receipt["transactionHash"]
        number, index = chain.chaindb.get_transaction_index(bytes(HexBytes(tx_hash)))
        header = chain.get_canonical_block_header_by_number(number)
        receipts = chain.chaindb.get_receipts(header, chain.get_vm_class(header).get_receipt_builder())
        receipt["logsBloom"] = receipts[index].bloom
        receipt.pop("state_root", None)
        return receipt

    @staticmethod
    def _failure(exc: Exception) -> RpcFailure:
        from eth_tester.exceptions import TransactionFailed

        if isinstance(exc, TransactionFailed):
            data = revert_data(exc)
            if data is None:
                return RpcFailure(REVERTED, f"execution reverted: {exc}")
            message = "execution reverted"
            if data[:4] == bytes.fromhex("08c379a0"):  # Error(string)
                from eth_abi import decode

                try:
                    message += f": {decode(['string'], data[4:])[0]}"
                except Exception:  # a malformed reason: the data still says it all
                    pass
            return RpcFailure(REVERTED, message, "0x" + data.hex())
        if isinstance(exc, (TypeError, KeyError, IndexError)):
            return RpcFailure(INVALID_PARAMS, f"invalid params: {exc.__class__.__name__}: {str(exc)[:200]}")
        return RpcFailure(SERVER_ERROR, (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300])

    # -- what eth-tester does not do as a node ----------------------------------------------

    def _affordable(self, call: dict[str, Any]) -> dict[str, Any]:
        """A call with no gas and no fee given: Geth runs it at a gas price of 0, but eth-tester
        charges its default fee (twice the base fee and a tip) for the whole block's gas and refuses a
        sender that cannot pay. Give it the gas its sender's balance pays for at that fee (at
        most the block's limit); cast's stand-in for "no sender", the zero address, when that is
        too little, becomes no sender (eth-tester then calls from its first account). What the
        caller set is kept."""
        if "gas" in call or "from" not in call or {"gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"} & call.keys():
            return call
        try:
            balance = int(self.chain.w3.eth.get_balance(call["from"]))
        except (ValueError, TypeError):
            return call  # a malformed address: the call's own answer says so
        gas = min(self.chain.gas_limit, balance // (2 * self._base_fee() + 2 * 10**9))  # eth-tester adds a tip
        if gas >= 21_000:
            return {**call, "gas": hex(gas)}
        if str(call["from"]).lower() == ZERO_ADDRESS:
            return {k: v for k, v in call.items() if k != "from"}
        return call

    def _base_fee(self) -> int:
        return int(self.chain.backend.chain.get_block().header.base_fee_per_gas or 0)

    def _send_raw(self, params: list[Any]) -> bytes:
        if len(params) != 1:
            raise RpcFailure(INVALID_PARAMS, "eth_sendRawTransaction takes one parameter, the signed transaction")
        return self.chain.send_raw(_data(params[0], "the signed transaction"))

    def _send_transaction(self, params: list[Any]) -> bytes:
        """A transaction from a dev account, signed here (Anvil's unlocked accounts)."""
        if len(params) != 1 or not isinstance(params[0], dict):
            raise RpcFailure(INVALID_PARAMS, "eth_sendTransaction takes one parameter, the transaction object")
        tx = dict(params[0])
        sender = str(tx.get("from", ""))
        account = self._keys.get(sender.lower())
        if account is None:
            raise RpcFailure(SERVER_ERROR, f"no unlocked dev account {sender[:42]!r}: sign the transaction and "
                                           "send it with eth_sendRawTransaction")
        fields: dict[str, Any] = {"from": account.address, "chainId": self.chain.chain_id,
                                  "value": _quantity(tx.get("value", 0), "value")}
        if tx.get("to"):
            fields["to"] = to_checksum_address(str(tx["to"]))
        payload = tx.get("input", tx.get("data"))
        fields["data"] = _data(payload, "data") if payload else b""
        fields["nonce"] = _quantity(tx["nonce"], "nonce") if "nonce" in tx else \
            self.chain.w3.eth.get_transaction_count(account.address, "pending")
        if "gasPrice" in tx:
            fields["gasPrice"] = _quantity(tx["gasPrice"], "gasPrice")
        else:
            tip = tx.get("maxPriorityFeePerGas", DEFAULT_TIP)
            fields["maxPriorityFeePerGas"] = _quantity(tip, "maxPriorityFeePerGas")
            cap = tx.get("maxFeePerGas", 2 * self._base_fee() + DEFAULT_TIP)
            fields["maxFeePerGas"] = _quantity(cap, "maxFeePerGas")
        if "gas" in tx:
            fields["gas"] = _quantity(tx["gas"], "gas")
        else:
            estimate = {k: v for k, v in fields.items() if k not in ("nonce", "chainId")}
            fields["gas"] = int(self.call("eth_estimateGas", [wire(estimate)]))
        raw = Account.sign_transaction(fields, account.key).raw_transaction
        return self.chain.send_raw(bytes(raw))

    def _mine(self, params: list[Any]) -> str:
        if params and params[0] is not None:
            self.chain._set_next_timestamp(_quantity(params[0], "timestamp"))
        self.chain.mine(1)
        return "0x0"

    def _anvil_mine(self, params: list[Any]) -> None:
        blocks = _quantity(params[0], "blocks") if params and params[0] is not None else 1
        if not 0 < blocks <= 10_000:
            raise RpcFailure(INVALID_PARAMS, f"blocks must be from 1 to 10000, got {blocks}")
        self.chain.mine(blocks)

    def _revert(self, params: list[Any]) -> bool:
        if len(params) != 1:
            raise RpcFailure(INVALID_PARAMS, "evm_revert takes one parameter, the snapshot id")
        snapshot_id = _quantity(params[0], "snapshot id")
        if snapshot_id not in self.chain._marks and self.chain.journal is not None:
            return False  # unknown (or already reverted past): nothing changes
        try:
            self.chain.revert(snapshot_id)
        except Exception:
            return False
        return True

    def _next_timestamp(self, params: list[Any]) -> None:
        if len(params) != 1:
            raise RpcFailure(INVALID_PARAMS, "takes one parameter, the timestamp")
        timestamp = _quantity(params[0], "timestamp")
        latest = int(self.chain.backend.chain.get_canonical_head().timestamp)
        if timestamp <= latest:
            raise RpcFailure(INVALID_PARAMS, f"timestamp {timestamp} is not after the latest block's ({latest})")
        self.chain._set_next_timestamp(timestamp)

    def _increase_time(self, params: list[Any]) -> int:
        if len(params) != 1:
            raise RpcFailure(INVALID_PARAMS, "evm_increaseTime takes one parameter, the seconds")
        seconds = _quantity(params[0], "seconds")
        if seconds < 0:
            raise RpcFailure(INVALID_PARAMS, f"seconds must not be negative, got {seconds}")
        latest = int(self.chain.backend.chain.get_canonical_head().timestamp)
        pending = int(self.chain.backend.chain.header.timestamp)
        self.chain._set_next_timestamp(max(pending, latest + 1) + seconds)
        return seconds


# -- HTTP --------------------------------------------------------------------------------------

async def _reply(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def rpc_app(node: EmbeddedNode, *, max_body: int = MAX_RPC_BODY, remote_key_hash: str | None = None) -> ASGIApp:
    """The node as an ASGI app: JSON-RPC over HTTP POST at whatever path it is mounted on.

    Clients on this machine (loopback) are answered as Anvil answers them, without a key: the
    dev accounts' keys are public anyway. A client from elsewhere (the service bound to another
    interface) must send the operator key as a bearer token (`remote_key_hash` is its sha256;
    without one configured, remote clients are refused)."""
    import anyio.to_thread

    from chainabs.api.auth import refusal

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served alone (`chainabs node`): nothing to start
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        client = scope.get("client") or ("", 0)
        if client[0] not in LOOPBACK:
            authorization = dict(scope.get("headers", [])).get(b"authorization")
            refused = refusal(None if authorization is None else authorization.decode("latin-1"), remote_key_hash)
            if refused is not None:
                await _reply(send, 401 if authorization is None else 403, {
                    "error": "JSON-RPC from another machine needs the operator key as a bearer token"})
                return
        if scope["method"] != "POST":
            await _reply(send, 405, {"error": "JSON-RPC is answered to POST requests with a JSON body"})
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > max_body:
                await _reply(send, 413, {"jsonrpc": "2.0", "id": None, "error": {
                    "code": INVALID_REQUEST, "message": f"request body over {max_body} bytes"}})
                return
        if nested_deeper_than(bytes(body), MAX_RPC_DEPTH):
            failure = RpcFailure(INVALID_REQUEST, f"JSON nested deeper than {MAX_RPC_DEPTH} levels")
            await _reply(send, 200, EmbeddedNode._error(None, failure))
            return
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            await _reply(send, 200, EmbeddedNode._error(None, RpcFailure(PARSE_ERROR, "the body is not JSON")))
            return
        answer = await anyio.to_thread.run_sync(node.handle, payload)
        await _reply(send, 200, answer)

    return app


def with_rpc(app: ASGIApp, rpc: ASGIApp, path: str = RPC_PATH) -> ASGIApp:
    """`app`, except that HTTP requests to `path` go to `rpc` (in front of the app's own
    middleware, whose body caps are for the audit API)."""

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").rstrip("/") == path:
            await rpc(scope, receive, send)
        else:
            await app(scope, receive, send)

    return routed
