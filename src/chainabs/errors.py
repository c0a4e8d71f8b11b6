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


class NotFound(ChainabsError):
    """The request names something that does not exist: a pool, a deal, a loan, a period
    (the API answers 404)."""


class InvalidInput(ChainabsError):
    """A value given by the user is malformed or out of range; the message names it (422)."""


class Conflict(ChainabsError):
    """The request is well formed but the state of the deal or the data dir refuses it (409)."""


class WrongPhase(Conflict):
    """The deal is not in the phase the operation needs (offering pending, open, closed...)."""

    def __init__(self, doing: str, phase: str, wanted: str) -> None:
        self.doing, self.phase, self.wanted = doing, phase, wanted
        super().__init__(f"cannot {doing}: the deal's offering is {phase}, it must be {wanted}")


class InsufficientFunds(Conflict):
    """An account holds less cash (or fewer units) than the operation needs."""


class NotEligible(Conflict):
    """An investor is not eligible, or a transfer is restricted, for the operation."""


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


class TapeError(InvalidInput):
    """A malformed loan tape; carries every bad cell found (at least the first 1000)."""

    def __init__(self, errors: list[CellError], total: int | None = None) -> None:
        self.errors = errors
        self.total = total if total is not None else len(errors)
        first = str(errors[0]) if errors else "no errors recorded"
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        super().__init__(f"loan tape rejected: {first}{more}")


class DealError(InvalidInput):
    """A bad deal file or deal parameter; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"deal file: {field}: {reason}")


class WaterfallError(InvalidInput):
    """A period report that breaks the deal rules (for example B1 != B0 - P - D)."""


@dataclass(frozen=True)
class Breach:
    """One concentration limit a purchase would break: the limit (its deal-file key), the
    pool's figure after the purchase as a sentence, and the loans that make it (ids, capped)."""

    limit: str
    figure: str
    loan_ids: list[str]
    loan_count: int

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "figure": self.figure, "loan_ids": self.loan_ids,
                "loan_count": self.loan_count}

    def __str__(self) -> str:
        shown = ", ".join(self.loan_ids[:10])
        more = f" and {self.loan_count - 10} more" if self.loan_count > 10 else ""
        return f"{self.limit}: {self.figure}; loans {shown}{more}"


class PurchaseRefused(InvalidInput):
    """A purchase that would break the deal's concentration limits; carries every breach."""

    def __init__(self, breaches: list[Breach]) -> None:
        self.breaches = breaches
        super().__init__("purchase refused, nothing minted: " + "; ".join(map(str, breaches)))


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


def kind_of(exc: ChainabsError) -> str:
    """The family of an error, as both doors name it: the CLI's `--json` output carries it as
    `kind` and the API maps it to a status (not_found 404, invalid_input 422, conflict 409,
    chain 503, error 400)."""
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, InvalidInput):
        return "invalid_input"
    if isinstance(exc, (Conflict, ContractRevert)):
        return "conflict"
    if isinstance(exc, ChainError):
        return "chain"
    return "error"


def _fmt(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)
