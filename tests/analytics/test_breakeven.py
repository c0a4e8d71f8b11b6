"""Breakeven CDR: exact to the basis point on the model, and monotone in the recovery."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chainabs.analytics.breakeven import bisect, breakeven, hits
from chainabs.analytics.inputs import from_files
from chainabs.analytics.pool import Assumptions
from chainabs.analytics.run import project_deal
from chainabs.errors import InvalidInput
from chainabs.tapegen import write_tape

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("tape") / "tape.csv"
    write_tape(path, 200, 7, "csv")
    return from_files(ROOT / "examples" / "deal.toml", path)


def _loses(source, a: Assumptions, cdr: int, k: int, what: str = "loss") -> bool:  # type: ignore[no-untyped-def]
    run = project_deal(source.deal, source.loans.projection(replace(a, cdr_bps=cdr)),
                       average_loan=source.loans.average)
    return hits(run, k, what)


def test_breakeven_within_one_bp_and_monotone(source) -> None:  # type: ignore[no-untyped-def]
    a = Assumptions(cpr_bps=1000, recovery_bps=4000, lag=3)
    found = {}
    for k, name in ((0, "Class A"), (1, "Class B")):
        be = breakeven(source.deal, source.loans, a, tranche=name)
        assert be.cdr_bps is not None and be.projections <= 16
        assert _loses(source, a, be.cdr_bps, k)
        assert not _loses(source, a, be.cdr_bps - 1, k)
        found[k] = be.cdr_bps
    assert found[1] < found[0]  # the junior tranche breaks first
    stressed = breakeven(source.deal, source.loans, replace(a, recovery_bps=1000), tranche="Class B")
    assert stressed.cdr_bps is not None and stressed.cdr_bps < found[1]
    richer = breakeven(source.deal, source.loans, replace(a, recovery_bps=6000), tranche="CABS-B")
    assert richer.cdr_bps is not None and richer.cdr_bps > found[1]


def test_bisect_finds_the_least() -> None:
    for edge in (0, 1, 17, 5000, 9998, 9999):
        def event(x: int, e: int = edge) -> bool:
            return x >= e
        assert bisect(event, 0, 9999) == edge
    assert bisect(lambda x: False, 0, 9999) is None


def test_unknown_tranche_and_what(source) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="^--tranche 'Class Z' is not a tranche"):
        breakeven(source.deal, source.loans, Assumptions(), tranche="Class Z")
    with pytest.raises(InvalidInput, match="^--what "):
        breakeven(source.deal, source.loans, Assumptions(), tranche="Class A", what="yield")
