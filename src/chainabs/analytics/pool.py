"""Loan-level projection of a pool's collections, vectorised with numpy.

Every loan is one element of a few arrays (outstanding balance, monthly rate, months left,
repayment type). A period, under annual CDR and CPR turned into monthly rates
(mdr = 1 - (1 - CDR)^(1/12), smm = 1 - (1 - CPR)^(1/12)), does, per loan and in this order:
defaults = balance x mdr; interest = (balance - defaults) x rate / 12 on the performing
balance; scheduled principal = the level payment on what performs less that interest (the whole
balance in the last month; nothing before the last month for bullet and interest-only loans);
prepaid = (performing balance - scheduled) x smm. Recoveries are the recovery rate of the
(integer) defaults `lag` periods earlier. Revolving purchases join the arrays as one loan per
purchase, at the assumed reinvestment rate and term.

Floats describe expected loan behaviour; the figures handed to the waterfall are integers by
one rule: each series (interest, principal, defaults) is the floor of its running
float total less the floor of its running total one period before, so no series drifts a unit
from its float sum and none is ever negative. The pool is then conserved exactly: defaults
are capped at the integer balance B0 and principal at B0 - defaults, the integer balance
carries as B1 = B0 - P - D + U, and in the period the last loan runs out (or the float balance
is below one unit) the principal takes whatever integer balance is left, so the pool ends at
exactly 0. delinquent_60 = floor((B0 - P - D) x dq60), never above B1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chainabs.errors import InvalidInput

BPS = 10_000
BULLET, INTEREST_ONLY = 1, 2  # tape REPAYMENT_TYPES indexes: amortizing 0, bullet 1, interest_only 2


@dataclass(frozen=True)
class Assumptions:
    """A scenario, every rate in basis points: annual CDR and CPR, the recovery rate of a
    default (recovered `lag` periods after it), the share of the pool 60+ days delinquent at
    each period's end, and the reinvestment terms of revolving purchases (None: the pool's
    balance-weighted rate and remaining term at the start)."""

    cdr_bps: int = 0
    cpr_bps: int = 0
    recovery_bps: int = 0
    lag: int = 0
    dq60_bps: int = 0
    reinvest_rate_bps: int | None = None
    reinvest_term: int | None = None

    def validate(self) -> None:
        """Raise InvalidInput naming the option of the first bad figure."""
        for option, value in (("--cdr", self.cdr_bps), ("--cpr", self.cpr_bps),
                              ("--recovery", self.recovery_bps), ("--dq60", self.dq60_bps)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BPS:
                raise InvalidInput(f"{option} must be from 0 to 100 %, got {_pct(value)}")
        if self.cdr_bps == BPS:
            raise InvalidInput("--cdr must be below 100 % (a CDR of 100 % defaults the whole pool at once)")
        if isinstance(self.lag, bool) or not isinstance(self.lag, int) or not 0 <= self.lag <= 120:
            raise InvalidInput(f"--lag must be a whole number of periods from 0 to 120, got {self.lag!r}")
        rate = self.reinvest_rate_bps
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= 3600):
            raise InvalidInput(f"--reinvest-rate-bps must be from 0 to 3600 basis points, got {rate!r}")
        term = self.reinvest_term
        if term is not None and (isinstance(term, bool) or not isinstance(term, int) or not 1 <= term <= 120):
            raise InvalidInput(f"--reinvest-term must be from 1 to 120 months, got {term!r}")


def _pct(value: object) -> str:
    return f"{value / 100:g} %" if isinstance(value, int) and not isinstance(value, bool) else repr(value)


@dataclass(frozen=True)
class Collections:
    """One period's integer figures for the waterfall's PeriodReport (purchases aside)."""

    interest: int
    principal: int
    defaults: int
    recoveries: int
    delinquent_60: int
    balance_start: int
    balance_end: int  # B0 - P - D, before any purchase


class PoolProjection:
    """The pool's loans under a scenario; `collect()` runs one period, `purchase(units)` adds
    a revolving purchase that amortises from the next period on."""

    def __init__(self, *, outstanding: Sequence[int], rate_bps: Sequence[int], remaining: Sequence[int],
                 repayment: Sequence[int] | None = None, assumptions: Assumptions) -> None:
        assumptions.validate()
        self.a = assumptions
        out = np.asarray(outstanding, dtype=np.int64)
        if out.size and int(out.min()) < 0:
            raise InvalidInput("a loan's outstanding balance is negative")
        self.bal = out.astype(np.float64)
        self.rate = np.asarray(rate_bps, dtype=np.float64) / BPS / 12
        self.rem = np.maximum(np.asarray(remaining, dtype=np.int64), 1)
        self.kind = (np.zeros(out.size, dtype=np.int8) if repayment is None
                     else np.asarray(repayment, dtype=np.int8))
        self.balance = int(out.sum())  # the integer pool balance B0 the waterfall sees
        total = float(self.bal.sum())
        self.reinvest_rate = (assumptions.reinvest_rate_bps / BPS / 12 if assumptions.reinvest_rate_bps is not None
                              else float((self.bal * self.rate).sum() / total) if total else 0.0)
        self.reinvest_term = (assumptions.reinvest_term if assumptions.reinvest_term is not None
                              else max(1, round(float((self.bal * self.rem).sum() / total))) if total else 12)
        self.mdr = 1 - (1 - assumptions.cdr_bps / BPS) ** (1 / 12)
        self.smm = 1 - (1 - assumptions.cpr_bps / BPS) ** (1 / 12)
        self.period = 0
        self._float = {"interest": 0.0, "principal": 0.0, "defaults": 0.0}
        self._given = {"interest": 0, "principal": 0, "defaults": 0, "recoveries": 0}
        self._defaults: list[int] = []

    @property
    def loan_count(self) -> int:
        return int(self.bal.size)

    def collect(self) -> Collections:
        """Project one period and return its integer figures."""
        self.period += 1
        bal, r, rem = self.bal, self.rate, self.rem
        defaults = bal * self.mdr
        perf = bal - defaults
        interest = perf * r
        growth = np.power(1 + r, -rem.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.where(r > 0, perf * r / (1 - growth), perf / rem)
        scheduled = np.where(rem <= 1, perf,
                             np.where(self.kind == 0, np.clip(level - interest, 0, perf), 0.0))
        prepaid = (perf - scheduled) * self.smm
        principal = scheduled + prepaid
        self.bal = np.where(rem <= 1, 0.0, np.maximum(perf - principal, 0.0))
        self.rem = np.maximum(rem - 1, 1)
        alive = (rem > 1) & (self.bal > 0)

        b0 = self.balance
        d = min(self._step("defaults", float(defaults.sum())), b0)
        p = min(self._step("principal", float(principal.sum())), b0 - d)
        if not bool(alive.any()) or float(self.bal.sum()) < 1:
            p = b0 - d  # the pool runs out: principal takes what is left, the pool ends at 0
            self.bal[:] = 0.0
        self._given["principal"] += p
        self._given["defaults"] += d
        i = self._step("interest", float(interest.sum()))
        self._given["interest"] += i
        self._defaults.append(d)
        due = sum(self._defaults[:max(0, len(self._defaults) - self.a.lag)]) * self.a.recovery_bps // BPS
        rec = due - self._given["recoveries"]
        self._given["recoveries"] += rec
        self.balance = b0 - p - d
        dq = self.balance * self.a.dq60_bps // BPS
        return Collections(interest=i, principal=p, defaults=d, recoveries=rec, delinquent_60=dq,
                           balance_start=b0, balance_end=self.balance)

    def _step(self, series: str, amount: float) -> int:
        """This period's integer of `series`: floor of the running float total less what was given."""
        self._float[series] += amount
        return max(0, math.floor(self._float[series]) - self._given[series])

    def purchase(self, units: int) -> None:
        """A revolving purchase of `units` at the reinvestment rate and term (one pooled loan)."""
        if units <= 0:
            return
        self.bal = np.append(self.bal, float(units))
        self.rate = np.append(self.rate, self.reinvest_rate)
        self.rem = np.append(self.rem, self.reinvest_term)
        self.kind = np.append(self.kind, np.int8(0))
        self.balance += units

    @property
    def exhausted(self) -> bool:
        """No balance left and no recovery still to come."""
        return self.balance == 0 and not self.recoveries_pending

    @property
    def recoveries_pending(self) -> bool:
        """Defaults whose recoveries (at the assumed rate, after the lag) are not all paid yet."""
        return sum(self._defaults) * self.a.recovery_bps // BPS > self._given["recoveries"]
