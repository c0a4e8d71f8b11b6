"""A projection run through the v2 reference model, and each tranche's WAL, window, loss and IRR.

Period by period the pool's integer collections (analytics.pool) become a PeriodReport for
`waterfall.run_period_v2`, the engine the contract copies. While the deal revolves the pool
buys, at the assumed reinvestment terms, everything the principal account holds after step 5:
the period is first run without a purchase to learn that amount C, then run again buying C (the
engine is pure, so the trial changes nothing). With `call`, the clean-up call is exercised in
the first period the deal allows it (amortising, B0 x 10000 <= cleanup_call_bps x B_initial).

Conventions. Periods are months. WAL = sum(t x principal_t) / sum(principal_t) / 12, in years.
The principal window is the first and last period paying the tranche principal. IRR: the
buyer pays price% of the tranche balance at the start (a float of the integer balance) and
receives the tranche's integer cash each period (interest, principal and, for the residual
tranche, the residual); the monthly rate r solving NPV = 0 is found by bisection (to 1e-12) and
annualised as (1 + r)^12 - 1, the effective annual yield. None when the cash never repays the
price at any rate above -100 % (no sign change), or when nothing is paid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from chainabs.analytics.pool import PoolProjection
from chainabs.errors import InvalidInput, WaterfallError
from chainabs.waterfall import BPS, DealParams, DealState, PeriodReport, PeriodResultV2, run_period_v2

MAX_PERIODS = 600


@dataclass(frozen=True)
class TrancheSummary:
    name: str
    symbol: str
    balance_start: int
    interest: int
    principal: int
    loss: int
    balance_end: int
    interest_shortfall: int  # interest unpaid at the end (carried, never paid)
    wal_years: float | None
    first_principal_period: int | None
    last_principal_period: int | None
    price: float | None
    irr: float | None


@dataclass(frozen=True)
class Projection:
    deal: DealParams
    periods: list[PeriodResultV2]
    tranches: list[TrancheSummary]
    trigger_first_breach: list[int | None] = field(default_factory=list)
    called_period: int | None = None


def _root(period: int) -> bytes:
    """A stand-in Merkle root for a projected purchase (the real one names real loans)."""
    return hashlib.sha256(b"chainabs projected purchase %d" % period).digest()


def project_deal(deal: DealParams, pool: PoolProjection, *, state: DealState | None = None,
                 periods: int = 360, call: bool = False,
                 prices: Mapping[str, float] | None = None, average_loan: int = 1) -> Projection:
    """Run `pool` through the deal from `state` (closing by default) for up to `periods`
    periods, stopping once the pool and every tranche are paid down and every assumed recovery
    is in (it goes to the residual tranche), or the deal is called."""
    if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= MAX_PERIODS:
        raise InvalidInput(f"--periods must be from 1 to {MAX_PERIODS}, got {periods!r}")
    prices = dict(prices or {})
    names = {t.name: t for t in deal.tranches} | {t.symbol: t for t in deal.tranches}
    for name in prices:
        if name not in names:
            raise InvalidInput(f"--price names tranche {name!r}, which the deal does not have "
                               f"(it has {', '.join(t.name for t in deal.tranches)})")
    state = state or DealState.initial(deal)
    if state.pool_balance != pool.balance:
        raise InvalidInput(f"the pool's loans add up to {pool.balance} units but the deal's pool balance is "
                           f"{state.pool_balance}")
    start = state
    results: list[PeriodResultV2] = []
    called = None
    limit = deal.cleanup_call_bps * deal.initial_balance
    for _ in range(periods):
        if state.called or (state.pool_balance == 0 and sum(state.tranche_balances) == 0
                            and state.principal_account == 0 and not pool.recoveries_pending):
            break
        t = state.period + 1
        c = pool.collect()
        report = PeriodReport(interest=c.interest, principal=c.principal, recoveries=c.recoveries,
                              defaults=c.defaults, delinquent_60=c.delinquent_60)
        may_call = (call and deal.cleanup_call_bps > 0 and c.balance_start * BPS <= limit
                    and not (t <= deal.revolving_periods and not state.early_amortisation))
        trial, _ = run_period_v2(deal, state, report)
        if may_call and trial.status == "amortising":
            report = PeriodReport(interest=c.interest, principal=c.principal, recoveries=c.recoveries,
                                  defaults=c.defaults, delinquent_60=0, call=True)
        elif trial.status == "revolving" and trial.principal_account_end > 0:
            result, state, report = _purchase(deal, state, report, trial.principal_account_end, t, average_loan)
            results.append(result)
            pool.purchase(report.purchased_units)
            continue
        result, state = run_period_v2(deal, state, report)
        results.append(result)
        if report.call:
            called = t
    firsts: list[int | None] = [None] * len(deal.effective_triggers)
    for r in results:
        for i, trig in enumerate(r.triggers):
            if trig.breached and firsts[i] is None:
                firsts[i] = r.period
    summaries = [_summary(k, deal, start, results, prices) for k in range(len(deal.tranches))]
    return Projection(deal=deal, periods=results, tranches=summaries, trigger_first_breach=firsts,
                      called_period=called)


def _purchase(deal: DealParams, state: DealState, report: PeriodReport, units: int, t: int,
              average_loan: int) -> tuple[PeriodResultV2, DealState, PeriodReport]:
    """Run a revolving period buying what the principal account holds. Buying U raises B1 and
    with it the reserve target (by at most ceil(U x reserve_target_bps / 10000) + 1 units of
    cash), so when the account without a purchase cannot pay for all of it, buy that much less."""
    for _ in range(8):
        buy = replace(report, purchased_units=units, purchased_count=max(1, units // max(1, average_loan)),
                      purchase_root=_root(t))
        try:
            result, new_state = run_period_v2(deal, state, buy)
            return result, new_state, buy
        except WaterfallError:
            units -= -(-units * deal.reserve_target_bps // BPS) + 1
            if units <= 0:
                break
    result, new_state = run_period_v2(deal, state, report)
    return result, new_state, report


def _summary(k: int, deal: DealParams, start: DealState, results: Sequence[PeriodResultV2],
             prices: Mapping[str, float]) -> TrancheSummary:
    spec = deal.tranches[k]
    rows = [r.tranches[k] for r in results]
    offset = start.period
    principal = [row.principal_paid for row in rows]
    paid = [i for i, x in enumerate(principal) if x > 0]
    total_principal = sum(principal)
    wal = (sum((i + 1) * x for i, x in enumerate(principal)) / total_principal / 12) if total_principal else None
    price = prices.get(spec.name, prices.get(spec.symbol))
    balance = start.tranche_balances[k]
    irr = None if price is None else irr_annual(balance * price / 100, [row.cash_paid for row in rows])
    return TrancheSummary(
        name=spec.name, symbol=spec.symbol, balance_start=balance,
        interest=sum(row.interest_paid for row in rows), principal=total_principal,
        loss=sum(row.loss for row in rows), balance_end=rows[-1].balance_end if rows else balance,
        interest_shortfall=rows[-1].interest_unpaid if rows else 0,
        wal_years=wal,
        first_principal_period=paid[0] + 1 + offset if paid else None,
        last_principal_period=paid[-1] + 1 + offset if paid else None,
        price=price, irr=irr)


def npv(rate: float, invested: float, cash: Sequence[int]) -> float:
    """-invested + sum over t >= 1 of cash_t / (1 + rate)^t, at a monthly `rate`."""
    value, factor = -invested, 1.0
    for amount in cash:
        factor /= 1 + rate
        value += amount * factor
    return value


def irr_annual(invested: float, cash: Sequence[int]) -> float | None:
    """The effective annual IRR (1 + r)^12 - 1 of paying `invested` now for monthly `cash`;
    r by bisection on NPV between -99.99 % and 1000 % a month."""
    if invested <= 0 or not any(cash):
        return None
    low, high = -0.9999, 10.0
    f_low, f_high = npv(low, invested, cash), npv(high, invested, cash)
    if f_low * f_high > 0:
        return None
    for _ in range(200):
        mid = (low + high) / 2
        f_mid = npv(mid, invested, cash)
        if (f_mid > 0) == (f_low > 0):
            low, f_low = mid, f_mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    r = (low + high) / 2
    return float((1 + r) ** 12 - 1)
