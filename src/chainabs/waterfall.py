"""The reference cash waterfall of shared/WATERFALL.md (version 1): pure integer arithmetic.

The pool contract and the audit code copy these definitions exactly. Every amount is an
integer in settlement-token base units and every division rounds down. A period takes the
report (I, P, R, D) and the carried `DealState`, and splits AF = I + P + R as follows, with
B0 the pool balance at the start of the period and T_1..T_n the tranche balances then:

- Report. Refused (`WaterfallError`, state untouched) if any amount is negative or not an int,
  if D > B0, or if P + D > B0. B1 = B0 - P - D.
- 1. Fee. fee_due = floor(B0 * servicer_fee_bps / 120000) + unpaid fee carried.
- 2. Interest, senior first. interest_due_k = floor(T_k * coupon_bps_k / 120000) + unpaid
  interest_k carried (never interest on interest); the residual's coupon is 0, so its due is 0.
  Each of fee and interest is paid from AF first, then from the reserve as far as it goes;
  the reserve's part counts in reserve_drawn. fee_due - fee_paid and interest_unpaid_k =
  interest_due_k - interest_paid_k are carried to the next period.
- 3. Reserve. target = floor(B1 * reserve_target_bps / 10000). Above target the excess is
  released into AF (reserve_released); below it, min(AF, target - reserve) moves from AF into
  the reserve (reserve_added). reserve_end = reserve_start - drawn - released + added.
- Trigger. cumulative_defaults includes this period's D, then the trigger is breached when
  cumulative_defaults * 10000 > default_trigger_bps * B_initial (strictly exceeds, no
  rounding); once breached it stays breached.
- 4. Principal. owed = max(0, sum(T) - B1), or sum(T) once breached (turbo);
  pay = min(AF, owed), applied to T_1 until zero, then T_2, ..., then T_n.
- 5. Loss. loss = max(0, sum(T) - pay - B1), with sum(T) taken at the start of the period,
  written down from T_n upwards. A principal shortfall (AF < owed) is therefore a loss, not a
  carried amount: without turbo the balances always end at B1.
- 6. Residual. What is left of AF goes to tranche n.

cash_paid_k = interest_paid_k + principal_paid_k, plus residual_paid for tranche n. Cash is
conserved: I + P + R + reserve_drawn + reserve_released = fee_paid + sum(interest_paid) +
sum(principal_paid) + residual_paid + reserve_added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeGuard

from chainabs.errors import DealError, WaterfallError

BPS = 10_000
MONTHLY_BPS = 120_000  # an annual rate in bps, applied to one monthly period: 12 * 10,000
MIN_TRANCHES, MAX_TRANCHES = 2, 5
# A tranche token can be credited CREDIT_CAPACITY base units in its life (its packed per-unit
# accounting); a deal is sized so that any one tranche could receive LIFETIME_CASH_MULTIPLE
# times the pool and the initial reserve (Deal.sol checks the same in its constructor).
CREDIT_CAPACITY = 2**94 - 1
LIFETIME_CASH_MULTIPLE = 16
MAX_FACE = 2**96 - 1  # a tranche's face fits the token's 96-bit balances


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrancheSpec:
    """One tranche: its token's name and symbol, face amount and annual coupon in bps."""

    name: str
    symbol: str
    face: int
    coupon_bps: int


@dataclass(frozen=True)
class DealParams:
    """The deal's fixed parameters; tranches most senior first, the last is the residual."""

    tranches: tuple[TrancheSpec, ...]
    servicer_fee_bps: int
    reserve_target_bps: int
    initial_reserve: int
    default_trigger_bps: int

    def validate(self) -> None:
        """Raise DealError naming the first bad field.

        2..5 tranches; every face an int > 0 (the residual too: a holder's principal is
        units * T_k / face_k, so a face of 0 cannot be issued); coupons and all bps in
        0..10000; the residual's coupon 0; names and symbols non-empty and unique;
        initial_reserve an int >= 0; every face at most MAX_FACE; and (faces + initial reserve)
        x LIFETIME_CASH_MULTIPLE within a tranche's CREDIT_CAPACITY, so that no period of a
        large deal can be refused for overflowing a tranche's accounting.
        """
        tranches = self.tranches
        if not isinstance(tranches, (tuple, list)) or not MIN_TRANCHES <= len(tranches) <= MAX_TRANCHES:
            raise DealError("tranches", f"a deal has {MIN_TRANCHES} to {MAX_TRANCHES} tranches")
        seen: dict[str, set[str]] = {"name": set(), "symbol": set()}
        for i, t in enumerate(tranches):
            where = f"tranches[{i}]"
            if not isinstance(t, TrancheSpec):
                raise DealError(where, "not a tranche specification")
            for attr in ("name", "symbol"):
                text = getattr(t, attr)
                if not isinstance(text, str) or not text.strip():
                    raise DealError(f"{where}.{attr}", "must be a non-empty string")
                if text in seen[attr]:
                    raise DealError(f"{where}.{attr}", f"duplicate {attr} {text!r}")
                seen[attr].add(text)
            if not _is_int(t.face) or t.face <= 0:
                raise DealError(f"{where}.face", f"must be an integer > 0, got {t.face!r}")
            if t.face > MAX_FACE:
                raise DealError(f"{where}.face", f"{t.face} units exceed a tranche's largest face, {MAX_FACE}")
            _check_bps(f"{where}.coupon_bps", t.coupon_bps)
        if tranches[-1].coupon_bps != 0:
            raise DealError(f"tranches[{len(tranches) - 1}].coupon_bps", "the residual tranche's coupon must be 0")
        for name in ("servicer_fee_bps", "reserve_target_bps", "default_trigger_bps"):
            _check_bps(name, getattr(self, name))
        if not _is_int(self.initial_reserve) or self.initial_reserve < 0:
            raise DealError("initial_reserve", f"must be an integer >= 0, got {self.initial_reserve!r}")
        lifetime = (self.initial_balance + self.initial_reserve) * LIFETIME_CASH_MULTIPLE
        if lifetime > CREDIT_CAPACITY:
            raise DealError("tranches", f"faces {self.initial_balance} and initial reserve {self.initial_reserve} "
                                       f"units are too large: {LIFETIME_CASH_MULTIPLE} x their sum is above a "
                                       f"tranche's lifetime credit capacity of {CREDIT_CAPACITY} units")

    @property
    def initial_balance(self) -> int:
        """B_initial: the faces add up to the initial pool balance."""
        return sum(t.face for t in self.tranches)


def _check_bps(field: str, value: object) -> None:
    if not _is_int(value) or not 0 <= value <= BPS:
        raise DealError(field, f"must be an integer number of basis points in 0..{BPS}, got {value!r}")


@dataclass
class DealState:
    """Everything one period hands to the next."""

    period: int  # periods run so far
    pool_balance: int
    tranche_balances: list[int]
    unpaid_interest: list[int]
    unpaid_fee: int
    reserve: int
    cumulative_defaults: int
    trigger_breached: bool

    @classmethod
    def initial(cls, deal: DealParams) -> DealState:
        """The state at closing: faces outstanding, the initial reserve, nothing carried."""
        deal.validate()
        return cls(
            period=0,
            pool_balance=deal.initial_balance,
            tranche_balances=[t.face for t in deal.tranches],
            unpaid_interest=[0] * len(deal.tranches),
            unpaid_fee=0,
            reserve=deal.initial_reserve,
            cumulative_defaults=0,
            trigger_breached=False,
        )

    @classmethod
    def offering(cls, deal: DealParams) -> DealState:
        """The state while the offering is open: as at closing, but with no reserve yet (the
        originator funds the initial reserve when the offering closes)."""
        state = cls.initial(deal)
        state.reserve = 0
        return state


@dataclass(frozen=True)
class PeriodReport:
    """The servicer's figures: interest I, principal P, recoveries R, new defaults D."""

    interest: int
    principal: int
    recoveries: int
    defaults: int


@dataclass(frozen=True)
class TrancheResult:
    """What one period did to one tranche."""

    balance_start: int
    interest_due: int
    interest_paid: int
    interest_unpaid: int
    principal_paid: int
    loss: int
    balance_end: int
    cash_paid: int


@dataclass(frozen=True)
class PeriodResult:
    """One period's full cash split, most senior tranche first."""

    period: int
    interest_collected: int
    principal_collected: int
    recoveries: int
    defaulted_principal: int
    pool_balance_start: int
    pool_balance_end: int
    fee_due: int
    fee_paid: int
    reserve_start: int
    reserve_drawn: int
    reserve_released: int
    reserve_added: int
    reserve_end: int
    trigger_breached: bool
    residual_paid: int
    tranches: tuple[TrancheResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """The fields by name; `tranches` becomes a list of dicts."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tranches"] = [asdict(t) for t in self.tranches]
        return out


def _check_report(state: DealState, report: PeriodReport) -> None:
    for name in ("interest", "principal", "recoveries", "defaults"):
        value = getattr(report, name)
        if not _is_int(value) or value < 0:
            raise WaterfallError(f"report refused: {name} must be a non-negative integer, got {value!r}")
    b0, p, d = state.pool_balance, report.principal, report.defaults
    if d > b0:
        raise WaterfallError(f"report refused: defaults {d} exceed the pool balance {b0}")
    if p + d > b0:
        raise WaterfallError(f"report refused: principal {p} + defaults {d} exceed the pool balance {b0}")


def _pay(due: int, cash: int, reserve: int) -> tuple[int, int]:
    """Pay `due` from cash first, then from the reserve; return (from cash, from reserve)."""
    from_cash = min(cash, due)
    return from_cash, min(reserve, due - from_cash)


def _apply_in_order(amount: int, balances: Sequence[int]) -> list[int]:
    """Split `amount` over `balances` in the given order, each taking at most its balance."""
    taken = []
    for balance in balances:
        take = min(amount, balance)
        taken.append(take)
        amount -= take
    return taken


def run_period(deal: DealParams, state: DealState, report: PeriodReport) -> tuple[PeriodResult, DealState]:
    """Run one period of the waterfall; return its result and the next state.

    Pure: `state` is not mutated, and a refused report raises before anything is computed.
    """
    deal.validate()
    n = len(deal.tranches)
    if len(state.tranche_balances) != n or len(state.unpaid_interest) != n:
        raise WaterfallError(f"state has {len(state.tranche_balances)} tranches, the deal has {n}")
    _check_report(state, report)

    b0 = state.pool_balance
    b1 = b0 - report.principal - report.defaults
    cash = report.interest + report.principal + report.recoveries
    reserve = state.reserve
    drawn = 0

    # 1. Fee, then 2. interest senior first (the residual's due is 0: coupon 0, nothing carried).
    fee_due = b0 * deal.servicer_fee_bps // MONTHLY_BPS + state.unpaid_fee
    starts = list(state.tranche_balances)
    coupons = [spec.coupon_bps for spec in deal.tranches]
    interest_due = [t * c // MONTHLY_BPS + u for t, c, u in zip(starts, coupons, state.unpaid_interest, strict=True)]
    paid = []
    for due in [fee_due, *interest_due]:
        from_cash, from_reserve = _pay(due, cash, reserve)
        cash, reserve, drawn = cash - from_cash, reserve - from_reserve, drawn + from_reserve
        paid.append(from_cash + from_reserve)
    fee_paid, interest_paid = paid[0], paid[1:]

    # 3. Reserve.
    target = b1 * deal.reserve_target_bps // BPS
    released = max(0, reserve - target)
    cash, reserve = cash + released, reserve - released
    added = min(cash, max(0, target - reserve))
    cash, reserve = cash - added, reserve + added

    # Trigger: this period's defaults count before the test; a breach is for good.
    cumulative = state.cumulative_defaults + report.defaults
    breached = state.trigger_breached or cumulative * BPS > deal.default_trigger_bps * deal.initial_balance

    # 4. Principal, sequential; 5. losses, junior first; 6. residual.
    total = sum(starts)
    owed = total if breached else max(0, total - b1)
    pay = min(cash, owed)
    residual = cash - pay
    principal_paid = _apply_in_order(pay, starts)
    after_principal = [t - p for t, p in zip(starts, principal_paid, strict=True)]
    loss_total = max(0, total - pay - b1)
    losses = _apply_in_order(loss_total, after_principal[::-1])[::-1]
    ends = [t - loss for t, loss in zip(after_principal, losses, strict=True)]

    tranches = tuple(
        TrancheResult(
            balance_start=starts[k],
            interest_due=interest_due[k],
            interest_paid=interest_paid[k],
            interest_unpaid=interest_due[k] - interest_paid[k],
            principal_paid=principal_paid[k],
            loss=losses[k],
            balance_end=ends[k],
            cash_paid=interest_paid[k] + principal_paid[k] + (residual if k == n - 1 else 0),
        )
        for k in range(n)
    )
    result = PeriodResult(
        period=state.period + 1,
        interest_collected=report.interest,
        principal_collected=report.principal,
        recoveries=report.recoveries,
        defaulted_principal=report.defaults,
        pool_balance_start=b0,
        pool_balance_end=b1,
        fee_due=fee_due,
        fee_paid=fee_paid,
        reserve_start=state.reserve,
        reserve_drawn=drawn,
        reserve_released=released,
        reserve_added=added,
        reserve_end=reserve,
        trigger_breached=breached,
        residual_paid=residual,
        tranches=tranches,
    )
    new_state = DealState(
        period=state.period + 1,
        pool_balance=b1,
        tranche_balances=ends,
        unpaid_interest=[t.interest_unpaid for t in tranches],
        unpaid_fee=fee_due - fee_paid,
        reserve=reserve,
        cumulative_defaults=cumulative,
        trigger_breached=breached,
    )
    return result, new_state


def run_periods(deal: DealParams, reports: Iterable[PeriodReport]) -> list[PeriodResult]:
    """Run the deal from closing through `reports`, one period each."""
    state = DealState.initial(deal)
    results = []
    for report in reports:
        result, state = run_period(deal, state, report)
        results.append(result)
    return results


def check_conservation(result: PeriodResult) -> None:
    """Raise WaterfallError unless the period's cash and reserve ledgers balance.

    WATERFALL.md states "I + P + R + reserve released = fee paid + interest paid + principal
    paid + residual + reserve added", which omits the cash drawn from the reserve for fee and
    interest (its own period 3 pays 662 + 2,155 + 800 from 500 collected). The identity
    checked here adds reserve_drawn to the cash in.
    """
    cash_in = (result.interest_collected + result.principal_collected + result.recoveries
               + result.reserve_drawn + result.reserve_released)
    cash_out = (result.fee_paid + sum(t.interest_paid + t.principal_paid for t in result.tranches)
                + result.residual_paid + result.reserve_added)
    if cash_in != cash_out:
        raise WaterfallError(f"period {result.period}: cash in {cash_in} != cash out {cash_out}")
    reserve_end = result.reserve_start - result.reserve_drawn - result.reserve_released + result.reserve_added
    if reserve_end != result.reserve_end:
        raise WaterfallError(f"period {result.period}: reserve ledger {reserve_end} != {result.reserve_end}")
    paid_to_tranches = sum(t.cash_paid for t in result.tranches)
    if paid_to_tranches != cash_out - result.fee_paid - result.reserve_added:
        raise WaterfallError(f"period {result.period}: tranche cash {paid_to_tranches} != the split")
