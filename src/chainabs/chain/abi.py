"""The ABI in one place: custom errors into `ContractRevert`, event logs into JSON-able arguments.

Both tables are built from the committed artifacts, never from a node, so a revert or a log is
decoded the same way on every backend and by every reader (the chain layer, the indexer, the
audit). Parameter types are collapsed by eth_utils' `collapse_if_tuple`, the one spelling of
`(uint256,address)[]` that eth_abi and web3 use themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import collapse_if_tuple, event_abi_to_log_topic, function_signature_to_4byte_selector

from chainabs.build import artifact_names, load_artifact
from chainabs.errors import ContractRevert

MAX_JSON_INT = 2**53      # larger integers are stored in args_json as decimal strings

ErrorEntry = tuple[str, tuple[str, ...], tuple[str, ...]]
Convert = Callable[[Any], Any]


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical type of an ABI parameter; tuples spelt out as `(t1,t2)` with their array suffix."""
    return collapse_if_tuple(dict(param))


# -- custom errors -----------------------------------------------------------------------------

@cache
def error_table() -> dict[bytes, ErrorEntry]:
    """Selector -> (name, argument names, argument types) over every artifact's custom errors,
    plus Solidity's built-in `Error(string)` and `Panic(uint256)`."""
    table: dict[bytes, ErrorEntry] = {
        bytes.fromhex("08c379a0"): ("Error", ("message",), ("string",)),
        bytes.fromhex("4e487b71"): ("Panic", ("code",), ("uint256",)),
    }
    for name in artifact_names():
        for item in load_artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = tuple(abi_type(p) for p in item["inputs"])
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], tuple(p["name"] or f"arg{i}" for i, p in enumerate(item["inputs"])), types)
    return table


def decode_revert(data: bytes | str | None) -> ContractRevert:
    """Turn raw revert data into a ContractRevert with the error's name and named arguments.

    No data is `UnknownRevert`; a selector no artifact declares is `UnknownCustomError` carrying
    the raw bytes, so nothing a contract says is lost."""
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


# -- events ------------------------------------------------------------------------------------

def json_int(value: int) -> int | str:
    """An integer as JSON clients can read it exactly: beyond 2**53 (JavaScript's exact range)
    it is a decimal string."""
    return value if -MAX_JSON_INT <= value <= MAX_JSON_INT else str(value)


def _identity(value: Any) -> Any:
    return value


def _value_converter(param: Mapping[str, Any], kind: str | None = None) -> Convert:
    """JSON-able form of an ABI-decoded value: addresses lower-case, bytes 0x-hex, structs as dicts."""
    kind = kind if kind is not None else str(param["type"])
    if kind.endswith("]"):
        inner = _value_converter(param, kind[:kind.rindex("[")])
        return (lambda v: list(v)) if inner is _identity else (lambda v: [inner(x) for x in v])
    if kind == "tuple":
        parts = [(c.get("name") or f"arg{i}", _value_converter(c)) for i, c in enumerate(param["components"])]
        return lambda v: {name: conv(x) for (name, conv), x in zip(parts, v, strict=True)}
    if kind == "address":
        return lambda v: v.lower()
    if kind.startswith("bytes"):
        return lambda v: "0x" + bytes(v).hex()
    if kind.startswith(("uint", "int")):
        return json_int
    return _identity


def _topic_converter(param: Mapping[str, Any]) -> Convert:
    """An indexed value from its topic; dynamic types are stored as their hash (0x-hex)."""
    kind = str(param["type"])
    if kind == "address":
        return lambda t: "0x" + t[12:].hex()
    if kind.startswith("uint"):
        return lambda t: json_int(int.from_bytes(t, "big"))
    if kind.startswith("int"):
        return lambda t: json_int(int.from_bytes(t, "big", signed=True))
    if kind == "bool":
        return lambda t: t[-1] != 0
    if kind.startswith("bytes") and kind != "bytes" and not kind.endswith("]"):
        size = int(kind[5:])
        return lambda t: "0x" + t[:size].hex()
    return lambda t: "0x" + t.hex()


@dataclass(frozen=True)
class EventSpec:
    """How to decode one event: its indexed inputs from the topics after topic0, the others from
    the data, each into its JSON-able form."""

    name: str
    topics: tuple[tuple[str, Convert], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    data_converters: tuple[Convert, ...]
    transfer: str | None                          # "erc20" or "erc721" for a standard Transfer

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        if len(topics) != len(self.topics) + 1:
            raise ValueError(f"{self.name}: {len(topics)} topics, expected {len(self.topics) + 1}")
        args = {name: conv(t) for (name, conv), t in zip(self.topics, topics[1:], strict=True)}
        if self.data_types:
            values = abi_decode(self.data_types, data)
            for name, conv, value in zip(self.data_names, self.data_converters, values, strict=True):
                args[name] = conv(value)
        return args


def _transfer_kind(event: Mapping[str, Any]) -> str | None:
    """ERC-20 and ERC-721 share the name and the signature `Transfer(address,address,uint256)`:
    only which inputs are indexed tells them apart."""
    shape = [(p["type"], p["indexed"]) for p in event["inputs"]]
    if event["name"] != "Transfer":
        return None
    if shape == [("address", True), ("address", True), ("uint256", False)]:
        return "erc20"
    if shape == [("address", True), ("address", True), ("uint256", True)]:
        return "erc721"
    return None


_SPECS: dict[str, dict[bytes, EventSpec]] = {}


def event_specs(artifact: str) -> dict[bytes, EventSpec]:
    """topic0 -> decoder for every non-anonymous event of an artifact's ABI."""
    if artifact not in _SPECS:
        specs = {}
        for item in load_artifact(artifact)["abi"]:
            if item["type"] != "event" or item.get("anonymous"):
                continue
            named = [(p.get("name") or f"arg{i}", p) for i, p in enumerate(item["inputs"])]
            indexed = tuple((n, _topic_converter(p)) for n, p in named if p["indexed"])
            data = [(n, p) for n, p in named if not p["indexed"]]
            specs[event_abi_to_log_topic(item)] = EventSpec(
                name=item["name"], topics=indexed, data_names=tuple(n for n, _ in data),
                data_types=tuple(abi_type(p) for _, p in data),
                data_converters=tuple(_value_converter(p) for _, p in data), transfer=_transfer_kind(item))
        _SPECS[artifact] = specs
    return _SPECS[artifact]


def token_kind(artifact: str) -> str:
    """The artifact's token standard, "erc20" or "erc721", when it emits exactly one kind of
    standard Transfer; "other" otherwise."""
    kinds = {s.transfer for s in event_specs(artifact).values() if s.transfer}
    return kinds.pop() if len(kinds) == 1 else "other"
