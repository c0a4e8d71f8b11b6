"""Where a projection's deal and loans come from: a deal file and a tape before issuance, or a
deal in the data dir (its published terms, committed loans and last period tape)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chainabs.analytics.pool import Assumptions, PoolProjection
from chainabs.context import Context
from chainabs.dealfile import load_deal_file
from chainabs.errors import Conflict, InvalidInput, NotFound
from chainabs.tape import STATUSES, apply_eligibility, read_tape, remaining_months
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


def _months_after(day: int, months: int) -> int:
    """The day `months` calendar months after `day` (clamped to the month's end)."""
    import calendar
    from datetime import date, timedelta
    epoch = date(1970, 1, 1)
    d = epoch + timedelta(days=day)
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    return (date(y, m, min(d.day, calendar.monthrange(y, m)[1])) - epoch).days


def from_data_dir(ctx: Context, pool: str | None = None) -> Source:
    """A deal that exists: its parameters and carried state as the chain holds them (through
    the service layer, so the running node is used when there is one), its committed loans as
    the last period's loan-level tape left them (closing: as committed), remaining terms counted
    from the cut-off plus the periods run. Defaulted and repaid loans are out of the pool."""
    from chainabs import deal as deals
    from chainabs.service.deals import open_deal
    from chainabs.service.periods import deal_cutoff_day

    handle, files = open_deal(ctx, pool)
    state = deals.read_state(handle)
    rows = files.rows
    outstanding = [row.outstanding_units for row in rows]
    statuses = [row.status for row in rows]
    if state.period > 0:
        tape = files.dir.read_period(state.period)
        if tape is None:
            raise NotFound(f"pool {files.record.name!r}: the loan-level tape of period {state.period} is not "
                           f"in the data dir, so the loans' balances are unknown")
        outstanding, statuses = list(tape.outstanding), list(tape.statuses)
    out_of_pool = {STATUSES.index("defaulted"), STATUSES.index("repaid")}
    now = _months_after(deal_cutoff_day(ctx, files), state.period)
    keep = [i for i, s in enumerate(statuses) if s not in out_of_pool and outstanding[i] > 0]
    loans = LoanArrays(
        outstanding=[outstanding[i] for i in keep],
        rate_bps=[rows[i].rate_bps for i in keep],
        remaining=[max(1, remaining_months(now, rows[i].maturity_day)) for i in keep],
        repayment=[rows[i].repayment_type for i in keep])
    if loans.balance != state.pool_balance:
        raise Conflict(f"pool {files.record.name!r}: its loans add up to {loans.balance} units but the deal's pool "
                       f"balance on chain is {state.pool_balance} after period {state.period}")
    return Source(deal=handle.params, loans=loans, state=state)
