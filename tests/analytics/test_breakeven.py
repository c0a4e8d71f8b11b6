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


def test_missed_interest_breakeven() -> None:
    """Bullet loans, a senior coupon close to the pool's rate, no reserve: interest is first missed at some
    CDR, exactly (missed there, paid in full 1 bp below); a coupon above it misses at CDR 0."""
    from chainabs.analytics.inputs import LoanArrays
    from chainabs.waterfall import DealParams, TrancheSpec

    loans = LoanArrays(outstanding=[400_000_000] * 5, rate_bps=[1200] * 5, remaining=[12, 18, 24, 30, 36],
                       repayment=[1] * 5)  # bullet loans: until maturity the cash is interest and recoveries

    def deal(coupon: int) -> DealParams:
        return DealParams(tranches=(TrancheSpec("A", "A", 1_800_000_000, coupon), TrancheSpec("B", "B", 200_000_000, 0)),
                          servicer_fee_bps=0, reserve_target_bps=0, initial_reserve=0, default_trigger_bps=10_000)

    a = Assumptions(recovery_bps=5000, lag=1)
    assert breakeven(deal(1500), loans, a, tranche="A", what="interest").cdr_bps == 0
    be = breakeven(deal(1300), loans, a, tranche="A", what="interest")
    assert be.cdr_bps is not None and be.cdr_bps > 0

    def missed(cdr: int) -> bool:
        run = project_deal(deal(1300), loans.projection(replace(a, cdr_bps=cdr)), average_loan=loans.average)
        return hits(run, 0, "interest")
    assert missed(be.cdr_bps) and not missed(be.cdr_bps - 1)
