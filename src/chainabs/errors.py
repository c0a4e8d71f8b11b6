"""The exception tree: every error chainabs raises derives from ChainabsError.

Translate them once, at the edges (the CLI's top level, the API's exception handlers), so
users see a sentence, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ChainabsError(Exception):
    """Root of every chainabs error."""


class BuildError(ChainabsError):
    """The contracts could not be compiled, or the artifacts are stale or missing."""


@dataclass(frozen=True)
class CellError:
    """One bad cell of a loan tape: 1-based line in the file (header = line 1)."""

    line: int
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "value": self.value, "reason": self.reason}

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column!r}, value {self.value!r}: {self.reason}"


class TapeError(ChainabsError):
    """A malformed loan tape; carries every bad cell found (at least the first 1000)."""

    def __init__(self, errors: list[CellError], total: int | None = None) -> None:
        self.errors = errors
        self.total = total if total is not None else len(errors)
        first = str(errors[0]) if errors else "no errors recorded"
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        super().__init__(f"loan tape rejected: {first}{more}")


class DealError(ChainabsError):
    """A bad deal file or deal parameter; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"deal file: {field}: {reason}")


class WaterfallError(ChainabsError):
    """A period report that breaks the deal rules (for example B1 != B0 - P - D)."""


class ChainError(ChainabsError):
    """Something went wrong talking to the chain."""


class RpcError(ChainError):
    """The node refused a request, could not be reached, or answered nonsense."""


class WrongChain(ChainError):
    """The node's chain id is not the one the deployment expects."""


class ContractRevert(ChainError):
    """A transaction or call reverted; `name` and `args` are the decoded custom error."""

    def __init__(self, name: str, args: dict[str, Any] | tuple[Any, ...] = (), *, tx: str | None = None) -> None:
        self.name = name
        self.args_ = args
        self.tx = tx
        if isinstance(args, dict):
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in args.items())
        else:
            shown = ", ".join(_fmt(v) for v in args)
        super().__init__(f"reverted: {name}({shown})")


class ReorgDetected(ChainError):
    """The chain no longer has a block the indexer stored."""

    def __init__(self, block_number: int) -> None:
        self.block_number = block_number
        super().__init__(f"chain reorganisation detected at block {block_number}")


class DeploymentError(ChainabsError):
    """A deployment manifest is missing, would be overwritten, or does not match the chain."""


def _fmt(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)
