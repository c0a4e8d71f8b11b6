"""Simulated loan performance: each loan of a pool evolved month by month into period reports.

Pure Python, integers for every amount, no web3. A `Simulator` takes the pool's eligible loans
(`tape.Loan`, pool share applied), the cut-off day and the scenario, and each `step()` returns
one period: the servicer's `waterfall.PeriodReport(I, P, R, D)` and the loan-level tape after
the period (each loan's status and outstanding units, in the order of the loans given), from
which the period's leaves are `merkle.loan_hash(loan, salt, status=..., outstanding_units=...)`
(or `merkle.commitments(period_loans(loans, outcome), salt)`).

The model, per loan and period k = 1, 2, ... (the k-th month after the cut-off):

- Balance. A loan's outstanding never grows: missed interest is not capitalised (and not
  collected later), so sum(outstanding) moves only by principal collected and defaults and
  B1 = B0 - P - D holds exactly, every period, by construction (`step` also checks it).
- Interest due = floor(outstanding * rate_bps / 120000), the loan's own rate; the period's
  `scheduled_interest` is its sum over the loans that are neither defaulted nor repaid. A loan
  that pays pays exactly its due, so interest collected <= scheduled interest.
- Schedule. n = remaining_months(cut-off, maturity) - (k - 1) payments are left (calendar
  months, a part month counting as whole, as tape.remaining_months). When n <= 1 a paying loan
  pays its whole balance (maturity, or arrears past maturity). Before that an amortizing loan
  pays the principal part of the level annuity over n months at r = rate_bps / 120000:
      principal = floor(B * r / ((1 + r)**n - 1))
                = floor(B * q * 120000**(n-1) / ((120000 + q)**n - 120000**n)),  q = rate_bps
  computed exactly with integers (B / n when q = 0). The annuity is recomputed every month
  from the current balance and the months left, so missed payments and rounding are spread
  over the remaining term and the balance reaches exactly 0 at maturity. Bullet and
  interest-only loans pay the monthly interest and their principal at maturity (the model has
  no accrual, so a bullet loan's interest is collected monthly too).
- Delinquency, one uniform draw u per active loan per period:
  current: u < miss -> dpd_1_30, pays nothing; else with probability SMM (of those that pay)
  prepays the whole balance and is repaid; else pays interest and scheduled principal.
  dpd_k (k = 1..4): u < roll_k -> the next bucket, pays nothing (dpd_90_plus -> defaulted: the
  whole outstanding is this period's D and the loan's outstanding becomes 0); else it cures:
  back to current, paying this month's interest and (re-amortised) principal.
- Rates from the annual scenario: SMM = 1 - (1 - CPR)**(1/12), MDR = 1 - (1 - CDR)**(1/12).
  A current loan defaults through the chain with probability miss * prod(roll) per month of
  exposure, and the chain is set so that this equals MDR: with base roll rates rho (ROLL_RATES)
  and base delinquency m0 (the `delinquency` argument, default 3 % a month),
    MDR = 0                -> miss = m0, roll = 0 (every delinquent loan cures: no defaults);
    0 < MDR <= m0*prod(rho) -> miss = m0, roll_k = rho_k**a with a = ln(MDR/m0) / ln(prod(rho));
    m0*prod(rho) < MDR <= prod(rho) -> miss = MDR / prod(rho), roll = rho;
    MDR > prod(rho)        -> miss = 1, roll_k = rho_k**a with a = ln(MDR) / ln(prod(rho)).
  The map is continuous in CDR and exact at its ends (CDR 1 defaults every loan 5 months in).
  Defaults come out of the pipeline: the first new default of a current loan arrives 5 periods
  after the cut-off, earlier ones come from loans already delinquent on the tape.
- Recoveries. floor(D_k * recovery) (one floor per period, recovery as an exact fraction of
  its decimal text) arrives as R in period k + lag (lag 0: the same period).
- Loans on the tape as defaulted or repaid (only if the pool's criteria admitted them) settle
  in period 1: a defaulted one's balance is D, a repaid one's is paid as principal.

Randomness: one random.Random(seed), one draw per active loan per period, loans in the given
order, so a seed gives the same run; `state_dict()` / `from_state_dict()` carry the generator
state, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from numbers import Real
from operator import attrgetter
from typing import Any

from chainabs.errors import ChainabsError
from chainabs.tape import Loan, remaining_months
from chainabs.waterfall import MONTHLY_BPS, PeriodReport

# Roll-forward rates dpd_1_30 -> dpd_31_60 -> dpd_61_90 -> dpd_90_plus -> defaulted at the base
# default level (scaled as the module docstring says); a loan that does not roll cures.
ROLL_RATES = (0.40, 0.60, 0.75, 0.90)
BASE_DELINQUENCY = 0.03
STATE_VERSION = 1

CURRENT, DPD_1_30, DPD_31_60, DPD_61_90, DPD_90_PLUS, DEFAULTED, REPAID = range(7)
AMORTIZING = 0


class SimulationError(ChainabsError, ValueError):
    """Bad scenario parameters, or a saved state that does not belong to these loans."""


@dataclass(frozen=True)
class PeriodOutcome:
    """One simulated period: the report and the loan-level tape after it (loan order)."""

    period: int
    report: PeriodReport
    statuses: list[int]
    outstanding: list[int]
    pool_balance_start: int
    scheduled_interest: int
    prepayments: int            # the part of report.principal that was prepaid

    @property
    def pool_balance_end(self) -> int:
        return self.pool_balance_start - self.report.principal - self.report.defaults


@dataclass(frozen=True)
class MonthlyRates:
    """The per-month probabilities a scenario resolves to."""

    smm: float
    mdr: float
    miss: float
    roll: tuple[float, float, float, float]


def monthly_rates(cdr: float, cpr: float, *, delinquency: float = BASE_DELINQUENCY,
                  roll_rates: Sequence[float] = ROLL_RATES) -> MonthlyRates:
    """SMM, MDR and the delinquency chain for an annual CDR and CPR (module docstring)."""
    smm = 1.0 - (1.0 - cpr) ** (1 / 12)
    mdr = 1.0 - (1.0 - cdr) ** (1 / 12)
    r1, r2, r3, r4 = (float(r) for r in roll_rates)
    rho = (r1, r2, r3, r4)
    chain = math.prod(rho)
    m0 = delinquency
    if mdr <= 0.0:
        miss, roll = m0, (0.0, 0.0, 0.0, 0.0)
    elif mdr <= m0 * chain:
        a = math.log(mdr / m0) / math.log(chain)
        miss, roll = m0, (r1 ** a, r2 ** a, r3 ** a, r4 ** a)
    elif mdr <= chain:
        miss, roll = mdr / chain, rho
    else:
        a = math.log(mdr) / math.log(chain) if mdr < 1.0 else 0.0
        miss, roll = 1.0, (r1 ** a, r2 ** a, r3 ** a, r4 ** a)
    return MonthlyRates(smm=smm, mdr=mdr, miss=min(1.0, miss), roll=roll)


@lru_cache(maxsize=1 << 16)
def annuity_factor(rate_bps: int, payments: int) -> tuple[int, int]:
    """(num, den) with the level annuity's principal part = balance * num // den, for `payments`
    >= 2 monthly payments left at rate_bps / 120000 a month (rate_bps > 0)."""
    m = MONTHLY_BPS
    mn = m ** (payments - 1)
    return rate_bps * mn, (m + rate_bps) ** payments - mn * m


def scheduled_principal(balance: int, rate_bps: int, left: int, amortizing: bool) -> int:
    """The principal a paying loan pays this month under the schedule above: the whole balance
    with one payment or fewer left; an amortizing loan's annuity principal part; nothing for a
    bullet or interest-only loan before maturity."""
    if left <= 1:
        return balance
    if not amortizing:
        return 0
    if not rate_bps:
        return balance // left
    num, den = annuity_factor(rate_bps, left)
    return balance * num // den


def principal_split(loans: Sequence[Loan], *, cutoff_day: int, period: int, before: tuple[list[int], list[int]],
                    after: tuple[list[int], list[int]]) -> tuple[int, int]:
    """(scheduled, unscheduled) principal of `period`, from the loan-level tapes before and after
    it ((statuses, outstanding) in the order of `loans`; before period 1, the loans as committed).

    Scheduled: what each loan active at the start owed under the schedule (paid or not).
    Unscheduled (prepayments): what each loan paid beyond it. A loan that defaulted in the
    period paid nothing: its balance is the period's defaults. These are the inputs of the
    single monthly mortality SMM = unscheduled / (balance at start - scheduled), whose
    annualised form is the CPR; with a CPR of 0 the simulator's unscheduled principal is 0.
    """
    statuses0, out0 = before
    statuses1, out1 = after
    if not len(loans) == len(statuses0) == len(out0) == len(statuses1) == len(out1):
        raise ValueError("the loan-level tapes and the loans differ in length")
    months: dict[int, int] = {}
    scheduled = unscheduled = 0
    for loan, s0, b0, s1, b1 in zip(loans, statuses0, out0, statuses1, out1, strict=True):
        if not b0 or s1 == DEFAULTED:
            continue
        owed = 0
        if s0 < DEFAULTED:
            d = loan.maturity_day
            n0 = months[d] if d in months else months.setdefault(d, remaining_months(cutoff_day, d))
            owed = scheduled_principal(b0, loan.rate_bps, n0 - (period - 1), loan.repayment_type == AMORTIZING)
        scheduled += owed
        unscheduled += max(0, b0 - b1 - owed)
    return scheduled, unscheduled


class Simulator:
    """Evolves a pool's loans one period per `step()`; see the module docstring."""

    def __init__(self, loans: Sequence[Loan], *, cutoff_day: int, cdr: float, cpr: float,
                 recovery: float | str | Fraction | Decimal, lag: int, seed: int | str,
                 delinquency: float = BASE_DELINQUENCY,
                 roll_rates: Sequence[float] = ROLL_RATES) -> None:
        self.cdr = _probability("cdr", cdr)
        self.cpr = _probability("cpr", cpr)
        self.recovery = _fraction("recovery", recovery)
        self.delinquency = _probability("delinquency", delinquency)
        if len(roll_rates) != 4:
            raise SimulationError("roll_rates: four rates, dpd_1_30 to dpd_90_plus")
        self.roll_rates = tuple(_probability("roll_rates", r) for r in roll_rates)
        if any(r in (0.0, 1.0) for r in self.roll_rates):
            raise SimulationError("roll_rates: each must be strictly between 0 and 1")
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
            raise SimulationError(f"lag: a whole number of months >= 0, got {lag!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, str)):
            raise SimulationError(f"seed: an integer or a string, got {seed!r}")
        if isinstance(cutoff_day, bool) or not isinstance(cutoff_day, int):
            raise SimulationError(f"cutoff_day: days since 1970-01-01, got {cutoff_day!r}")
        self.lag = lag
        self.seed = seed
        self.cutoff_day = cutoff_day
        self.rates = monthly_rates(self.cdr, self.cpr, delinquency=self.delinquency,
                                   roll_rates=self.roll_rates)
        self.period = 0
        self._rng = random.Random(seed)
        self._pending: dict[int, int] = {}      # period -> recoveries arriving then
        self._fingerprint = _fingerprint(loans)
        self._rate = [loan.rate_bps for loan in loans]
        self._amortizing = [loan.repayment_type == AMORTIZING for loan in loans]
        months: dict[int, int] = {}
        self._n0 = [months[d] if (d := loan.maturity_day) in months
                    else months.setdefault(d, remaining_months(cutoff_day, d)) for loan in loans]
        self._status = [loan.status for loan in loans]
        self._out = [loan.outstanding_units for loan in loans]
        self._balance = sum(self._out)

    @property
    def pool_balance(self) -> int:
        """Sum of the loans' outstanding units now (defaulted and repaid loans count 0)."""
        return self._balance

    @property
    def statuses(self) -> list[int]:
        return list(self._status)

    @property
    def outstanding(self) -> list[int]:
        return list(self._out)

    def step(self) -> PeriodOutcome:
        """Simulate the next period."""
        k = self.period + 1
        status, out, rate, amort, n0 = self._status, self._out, self._rate, self._amortizing, self._n0
        rand = self._rng.random
        miss = self.rates.miss
        prepay_below = miss + (1.0 - miss) * self.rates.smm
        roll = (0.0, *self.rates.roll)
        m = MONTHLY_BPS
        first = k - 1          # n = n0 - first payments are left this period
        interest = principal = prepaid = defaults = scheduled = 0
        for i in range(len(out)):
            s = status[i]
            b = out[i]
            if s >= DEFAULTED or not b:
                if b:               # defaulted or repaid on the tape, with a balance: settle now
                    if s == DEFAULTED:
                        defaults += b
                    else:
                        principal += b
                    out[i] = 0
                elif s < DEFAULTED:  # nothing owed: repaid
                    status[i] = REPAID
                continue
            q = rate[i]
            due = b * q // m
            scheduled += due
            u = rand()
            if s == CURRENT:
                if u < miss:
                    status[i] = DPD_1_30
                    continue
                if u < prepay_below:
                    interest += due
                    principal += b
                    prepaid += b
                    out[i] = 0
                    status[i] = REPAID
                    continue
            elif u < roll[s]:
                if s == DPD_90_PLUS:
                    defaults += b
                    out[i] = 0
                    status[i] = DEFAULTED
                else:
                    status[i] = s + 1
                continue
            else:
                status[i] = CURRENT
            interest += due
            p = scheduled_principal(b, q, n0[i] - first, amort[i])
            if not p:
                continue
            principal += p
            b -= p
            out[i] = b
            if not b:
                status[i] = REPAID

        b0 = self._balance
        b1 = b0 - principal - defaults
        if sum(out) != b1:   # cannot happen: every change above moves P or D with the balance
            raise RuntimeError(f"period {k}: balance {sum(out)} != B0 - P - D = {b1}")
        recoveries = self._pending.pop(k, 0)
        recovered = defaults * self.recovery.numerator // self.recovery.denominator
        if recovered:
            if self.lag == 0:
                recoveries += recovered
            else:
                self._pending[k + self.lag] = self._pending.get(k + self.lag, 0) + recovered
        self._balance = b1
        self.period = k
        return PeriodOutcome(
            period=k,
            report=PeriodReport(interest=interest, principal=principal, recoveries=recoveries,
                                defaults=defaults),
            statuses=list(status),
            outstanding=list(out),
            pool_balance_start=b0,
            scheduled_interest=scheduled,
            prepayments=prepaid,
        )

    def run(self, periods: int) -> list[PeriodOutcome]:
        return [self.step() for _ in range(periods)]

    # --- resuming ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, JSON-serialisable (the loans themselves excepted)."""
        version, internal, gauss = self._rng.getstate()
        return {
            "version": STATE_VERSION,
            "loans": self._fingerprint,
            "cutoff_day": self.cutoff_day,
            "cdr": self.cdr,
            "cpr": self.cpr,
            "recovery": str(self.recovery),
            "lag": self.lag,
            "seed": self.seed,
            "delinquency": self.delinquency,
            "roll_rates": list(self.roll_rates),
            "period": self.period,
            "status": list(self._status),
            "outstanding": list(self._out),
            "pending_recoveries": {str(k): v for k, v in sorted(self._pending.items())},
            "rng": [version, list(internal), gauss],
        }

    @classmethod
    def from_state_dict(cls, loans: Sequence[Loan], state: dict[str, Any]) -> Simulator:
        """Resume a run saved by `state_dict()`; `loans` must be the same loans, same order."""
        try:
            if state["version"] != STATE_VERSION:
                raise SimulationError(f"saved simulator state version {state['version']!r}, "
                                      f"expected {STATE_VERSION}")
            if state["loans"] != _fingerprint(loans):
                raise SimulationError("the saved simulator state belongs to a different set of loans")
            sim = cls(loans, cutoff_day=state["cutoff_day"], cdr=state["cdr"], cpr=state["cpr"],
                      recovery=Fraction(state["recovery"]), lag=state["lag"], seed=state["seed"],
                      delinquency=state["delinquency"], roll_rates=state["roll_rates"])
            status, outstanding = list(state["status"]), list(state["outstanding"])
            if len(status) != len(loans) or len(outstanding) != len(loans):
                raise SimulationError("the saved simulator state has the wrong number of loans")
            sim.period = int(state["period"])
            sim._status, sim._out = status, outstanding
            sim._balance = sum(outstanding)
            sim._pending = {int(k): int(v) for k, v in state["pending_recoveries"].items()}
            version, internal, gauss = state["rng"]
            sim._rng.setstate((version, tuple(internal), gauss))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SimulationError):
                raise
            raise SimulationError(f"not a saved simulator state: {exc!r}") from None
        return sim


_LOAN_SLOTS = Loan.__slots__
_GET_LOAN = attrgetter(*_LOAN_SLOTS)
_SET_LOAN = tuple(getattr(Loan, name).__set__ for name in _LOAN_SLOTS)
_STATUS_AT, _OUTSTANDING_AT = _LOAN_SLOTS.index("status"), _LOAN_SLOTS.index("outstanding_units")


def period_loans(loans: Sequence[Loan], outcome: PeriodOutcome) -> list[Loan]:
    """The period's loan-level tape: each loan with its status and outstanding after the
    period, ready for merkle.commitments. (dataclasses.replace does the same, ~60 % slower:
    Loan is a frozen slotted dataclass, so this copies its slots through their descriptors.)"""
    if len(loans) != len(outcome.statuses):
        raise ValueError(f"{len(loans)} loans, the period tape has {len(outcome.statuses)}")
    out = []
    new = object.__new__
    for loan, status, outstanding in zip(loans, outcome.statuses, outcome.outstanding, strict=True):
        values = list(_GET_LOAN(loan))
        values[_STATUS_AT] = status
        values[_OUTSTANDING_AT] = outstanding
        copy = new(Loan)
        for setter, value in zip(_SET_LOAN, values, strict=True):
            setter(copy, value)
        out.append(copy)
    return out


def _fingerprint(loans: Sequence[Loan]) -> str:
    """Identifies the loans a run belongs to: their ids in order and their count."""
    h = hashlib.sha256()
    for loan in loans:
        h.update(loan.loan_id.encode())
        h.update(b"\n")
    return f"{len(loans)}:{h.hexdigest()}"


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, Decimal)):
        raise SimulationError(f"{name}: a number between 0 and 1, got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise SimulationError(f"{name}: must be between 0 and 1, got {value!r}")
    return number


def _fraction(name: str, value: Any) -> Fraction:
    """An exact fraction: a float by its shortest decimal text (0.3 is 3/10, not 0.29999...)."""
    if isinstance(value, bool):
        raise SimulationError(f"{name}: a number between 0 and 1, got {value!r}")
    try:
        exact = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    except (TypeError, ValueError):
        raise SimulationError(f"{name}: a number between 0 and 1, got {value!r}") from None
    if not 0 <= exact <= 1:
        raise SimulationError(f"{name}: must be between 0 and 1, got {value!r}")
    return exact
