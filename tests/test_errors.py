"""The exception tree's families and the one mapping both doors use (CLI `kind`, API status)."""

from __future__ import annotations

import pytest

from chainabs.api.main import _STATUS
from chainabs.errors import (
    CellError,
    ChainabsError,
    ChainError,
    Conflict,
    ContractRevert,
    DealError,
    InsufficientFunds,
    InvalidInput,
    NotEligible,
    NotFound,
    RpcError,
    TapeError,
    WaterfallError,
    WrongPhase,
    kind_of,
)


@pytest.mark.parametrize(("error", "kind", "status"), [
    (NotFound("no pool named 'x'"), "not_found", 404),
    (InvalidInput("bad value"), "invalid_input", 422),
    (TapeError([CellError(2, "loan_id", "", "empty")]), "invalid_input", 422),
    (DealError("deal.tranches", "too few"), "invalid_input", 422),
    (WaterfallError("B1 != B0 - P - D"), "invalid_input", 422),
    (WrongPhase("subscribe", "closed", "open"), "conflict", 409),
    (InsufficientFunds("holds 0"), "conflict", 409),
    (NotEligible("not eligible"), "conflict", 409),
    (Conflict("already has a deal"), "conflict", 409),
    (ContractRevert("NotServicer", ()), "conflict", 409),
    (RpcError("node down"), "chain", 503),
    (ChainError("chain"), "chain", 503),
    (ChainabsError("anything else"), "error", 400),
])
def test_each_family_has_one_kind_and_one_status(error: ChainabsError, kind: str, status: int) -> None:
    assert kind_of(error) == kind
    assert _STATUS[kind] == status


def test_wrong_phase_says_what_was_refused_and_why() -> None:
    exc = WrongPhase("post a period report", "open", "closed")
    assert str(exc) == "cannot post a period report: the deal's offering is open, it must be closed"
    assert (exc.doing, exc.phase, exc.wanted) == ("post a period report", "open", "closed")
