"""Where a projection's deal and loans come from: a deal file and a tape before issuance, or a
deal in the data dir (its published terms, committed loans and last period tape)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chainabs.analytics.pool import Assumptions, PoolProjection
from chainabs.dealfile import load_deal_file
from chainabs.errors import InvalidInput
from chainabs.tape import apply_eligibility, read_tape, remaining_months
from chainabs.waterfall import DealParams, DealState


@dataclass(frozen=True)
class LoanArrays:
    """The pool's loans as the projection takes them, in base units."""

    outstanding: list[int]
    rate_bps: list[int]
    remaining: list[int]
    repayment: list[int]

    @property
    def balance(self) -> int:
        return sum(self.outstanding)

    @property
    def average(self) -> int:
        return max(1, self.balance // max(1, len(self.outstanding)))

    def projection(self, assumptions: Assumptions) -> PoolProjection:
        return PoolProjection(outstanding=self.outstanding, rate_bps=self.rate_bps, remaining=self.remaining,
                              repayment=self.repayment, assumptions=assumptions)


@dataclass(frozen=True)
class Source:
    deal: DealParams
    loans: LoanArrays
    state: DealState | None  # None: at closing


def from_files(deal_path: str | Path, tape_path: str | Path) -> Source:
    """The deal file's parameters on the tape's eligible loans, at closing."""
    deal_file = load_deal_file(deal_path)
    tape = read_tape(tape_path, decimals=deal_file.pool.decimals)
    eligible, _ = apply_eligibility(tape.loans, deal_file.eligibility())
    if not eligible:
        raise InvalidInput(f"--tape {tape_path}: no loan of the tape is eligible under {deal_path}")
    cutoff = deal_file.pool.cutoff_day
    loans = LoanArrays(
        outstanding=[loan.outstanding_units for loan in eligible],
        rate_bps=[loan.rate_bps for loan in eligible],
        remaining=[max(1, remaining_months(cutoff, loan.maturity_day)) for loan in eligible],
        repayment=[loan.repayment_type for loan in eligible])
    return Source(deal=deal_file.deal_params(loans.balance), loans=loans, state=None)
