"""The reference cash waterfall of shared/WATERFALL.md (version 2): pure integer arithmetic.

The deal contract and the audit code copy these definitions exactly. Every amount is an
integer in settlement-token base units, every division rounds down and every ratio test is
cross-multiplied (never a rounded ratio). A period takes the servicer's `PeriodReport` and the
carried `DealState` and returns the period's figures and the next state; a refused report
raises `WaterfallError` ("report refused: ...", naming the rule and the figures) and changes
nothing (the functions are pure).

With B0 the pool balance at the start of the period, T_1..T_n the tranche balances then, C the
principal account (cash kept for purchases) and U the units purchased this period:
B1 = B0 - P - D + U, or 0 when the clean-up call is exercised (its price B0 - P - D joins the
cash). AF = I + P + R (+ the call price).

- Report. Refused if an amount is not an int >= 0, D > B0, P + D > B0, delinquent_60 > B1, a
  purchase's units, count and root are not all zero or all set, the deal was called, U > 0 in
  an amortising period, the call is not allowed, or (step 5) U > C.
- 0. Triggers (`Trigger`, up to 8), tested on this period's figures with a history of this
  period and the two before (`PeriodHistory`): cumulative_default (all D so far x 10000 >
  threshold x B_initial), delinquency_60 (sum dq60 x 10000 > threshold x sum B1),
  excess_spread (12 x sum ES x 10000 < threshold x sum B0, ES = I - this period's fee and
  coupons without arrears, signed), principal_account (C x 10000 > threshold x sum T, both at
  the start). A non-curable trigger once breached stays breached; a curable one is breached
  exactly when its test holds. `amortise` ends the revolving period for good; `sequential`
  makes principal sequential while breached; `turbo` pays all remaining cash as principal
  (owed = sum T), sequentially, while breached. Period t revolves when t <= revolving_periods
  and no amortise trigger has been breached in t or before.
- 2. Fee, 3. interest senior first: as version 1 (due = this period's + carried; paid from AF,
  then the reserve; the rest carried; never interest on interest).
- 4. Reserve. target = floor(B1 x reserve_target_bps / 10000); the excess is released into
  AF, a shortfall topped up from AF as far as it goes.
- 5. Principal. Revolving: need = max(0, sum T - (B0 - P - D) - C); min(AF, need) moves into
  C; the purchase U is paid from C; no tranche is paid principal. Amortising: C joins AF and
  becomes 0; owed = max(0, sum T - B1), or sum T under turbo; pay = min(AF, owed); sequential
  (mode `sequential`, or a sequential or turbo trigger breached) or pro rata (x_k = floor(pay
  x T_k / sum T), the remainder to T_1, T_2, ... each capped at T_k - x_k).
- 6. Losses. max(0, sum T - B1 - C) after step 5, written down from T_n upwards.
- 7. Residual. What is left of AF goes to tranche n.

Cash is conserved every period (`check_conservation`): I + P + R + call price + reserve drawn +
reserve released + C at start = fee paid + interest paid + principal paid + residual + reserve
added + U + C at end.

Version 1. A deal with `triggers=None` has version 1's one trigger {cumulative_default,
default_trigger_bps, turbo, not curable}; with revolving_periods 0, principal_mode
"sequential" and no call it computes exactly as version 1 did. Its `DealState` keeps that
trigger's latch in `trigger_breached` (as the version 1 contract does) and leaves the version 2
fields at their defaults, so a state read back from a version 1 contract equals the model's.

Two result types. `PeriodResult` holds the figures a version 1 contract emits (and the API,
store and audit read today); `PeriodResultV2` extends it with the version 2 figures. The
engine is `run_period_v2`; `run_period` returns its `PeriodResult` part.
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

METRICS = ("cumulative_default", "delinquency_60", "excess_spread", "principal_account")
EFFECTS = ("amortise", "sequential", "turbo")
PRINCIPAL_MODES = ("sequential", "pro_rata")
STATUSES = ("revolving", "amortising", "called")
MAX_TRIGGERS = 8
MAX_REVOLVING_PERIODS = 1_200  # a hundred years of monthly periods; fits a uint16
HISTORY_PERIODS = 3  # delinquency_60 and excess_spread sum this period and the two before
ZERO_ROOT = bytes(32)


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
class Trigger:
    """One trigger: `metric` (METRICS) against `threshold_bps`, its `effect` (EFFECTS) and
    whether it cures when its test stops holding."""

    metric: str
    threshold_bps: int
    effect: str
    curable: bool = False


@dataclass(frozen=True)
class DealParams:
    """The deal's fixed parameters; tranches most senior first, the last is the residual.

    `triggers=None` is version 1's single trigger made of `default_trigger_bps`; with
    explicit `triggers` (0 to 8 of them) `default_trigger_bps` must be 0.
    """

    tranches: tuple[TrancheSpec, ...]
    servicer_fee_bps: int
    reserve_target_bps: int
    initial_reserve: int
    default_trigger_bps: int
    revolving_periods: int = 0
    principal_mode: str = "sequential"
    cleanup_call_bps: int = 0
    triggers: tuple[Trigger, ...] | None = None

    def validate(self) -> None:
        """Raise DealError naming the first bad field.

        2..5 tranches; every face an int > 0 (the residual too: a holder's principal is
        units * T_k / face_k, so a face of 0 cannot be issued); coupons and all bps in
        0..10000; the residual's coupon 0; names and symbols non-empty and unique;
        initial_reserve an int >= 0; every face at most MAX_FACE; and (faces + initial reserve)
        x LIFETIME_CASH_MULTIPLE within a tranche's CREDIT_CAPACITY, so that no period of a
        large deal can be refused for overflowing a tranche's accounting. Version 2:
        revolving_periods in 0..MAX_REVOLVING_PERIODS, principal_mode one of PRINCIPAL_MODES,
        cleanup_call_bps in bps, at most MAX_TRIGGERS triggers, each with a known metric and
        effect, a bps threshold and a bool `curable`.
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
        self._validate_v2()

    def _validate_v2(self) -> None:
        if not _is_int(self.revolving_periods) or not 0 <= self.revolving_periods <= MAX_REVOLVING_PERIODS:
            raise DealError("revolving_periods", f"must be an integer in 0..{MAX_REVOLVING_PERIODS}, "
                                                 f"got {self.revolving_periods!r}")
        if self.principal_mode not in PRINCIPAL_MODES:
            raise DealError("principal_mode", f'must be "sequential" or "pro_rata", got {self.principal_mode!r}')
        _check_bps("cleanup_call_bps", self.cleanup_call_bps)
        if self.triggers is None:
            return
        if not isinstance(self.triggers, tuple) or len(self.triggers) > MAX_TRIGGERS:
            raise DealError("triggers", f"a deal has at most {MAX_TRIGGERS} triggers, in a tuple")
        if self.default_trigger_bps != 0:
            raise DealError("default_trigger_bps", "must be 0 when the deal lists its triggers (version 1's "
                                                   "trigger is {cumulative_default, default_trigger_bps, turbo, "
                                                   "not curable}: list it as a trigger)")
        for i, trigger in enumerate(self.triggers):
            where = f"triggers[{i}]"
            if not isinstance(trigger, Trigger):
                raise DealError(where, "not a trigger")
            if trigger.metric not in METRICS:
                raise DealError(f"{where}.metric", f"must be one of {', '.join(METRICS)}, got {trigger.metric!r}")
            if trigger.effect not in EFFECTS:
                raise DealError(f"{where}.effect", f"must be one of {', '.join(EFFECTS)}, got {trigger.effect!r}")
            _check_bps(f"{where}.threshold_bps", trigger.threshold_bps)
            if not isinstance(trigger.curable, bool):
                raise DealError(f"{where}.curable", f"must be true or false, got {trigger.curable!r}")

    @property
    def initial_balance(self) -> int:
        """B_initial: the faces add up to the initial pool balance."""
        return sum(t.face for t in self.tranches)

    @property
    def effective_triggers(self) -> tuple[Trigger, ...]:
        """The triggers the waterfall tests: the listed ones, or version 1's one trigger."""
        if self.triggers is not None:
            return self.triggers
        return (Trigger("cumulative_default", self.default_trigger_bps, "turbo", curable=False),)

    @property
    def is_v1(self) -> bool:
        """A version 1 deal: v1's trigger, no revolving period, sequential, no call (the only
        kind the version 1 contract runs)."""
        return (self.triggers is None and self.revolving_periods == 0 and self.principal_mode == "sequential"
                and self.cleanup_call_bps == 0)


def _check_bps(field: str, value: object) -> None:
    if not _is_int(value) or not 0 <= value <= BPS:
        raise DealError(field, f"must be an integer number of basis points in 0..{BPS}, got {value!r}")


@dataclass(frozen=True)
class PeriodHistory:
    """One past period's figures that the delinquency_60 and excess_spread triggers sum."""

    pool_balance_start: int  # B0
    pool_balance_end: int  # B1
    delinquent_60: int
    excess_spread: int  # signed


@dataclass
class DealState:
    """Everything one period hands to the next.

    Version 2 fields (defaults = closing, and what a version 1 deal keeps throughout):
    `principal_account` C; `early_amortisation`: an amortise trigger has been breached, the
    revolving period is over for good; `called`: the clean-up call was exercised, no report is
    taken; `latched`: bit i set once non-curable trigger i has been breached (a deal with
    `triggers=None` keeps its one trigger's latch in `trigger_breached` instead); `history`:
    the last HISTORY_PERIODS - 1 periods' figures, oldest first (kept for listed triggers only).
    `trigger_breached` is "any trigger breached in the last period run".
    """

    period: int  # periods run so far
    pool_balance: int
    tranche_balances: list[int]
    unpaid_interest: list[int]
    unpaid_fee: int
    reserve: int
    cumulative_defaults: int
    trigger_breached: bool
    principal_account: int = 0
    early_amortisation: bool = False
    called: bool = False
    latched: int = 0
    history: tuple[PeriodHistory, ...] = ()

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
    """The servicer's figures: interest I, principal P, recoveries R, new defaults D; version
    2 adds delinquent_60 (outstanding units 60+ days past due at the end of the period), the
    period's purchase (units U, loan count and Merkle root; all zero when none) and `call`
    (the originator exercises the clean-up call with this report)."""

    interest: int
    principal: int
    recoveries: int
    defaults: int
    delinquent_60: int = 0
    purchased_units: int = 0
    purchased_count: int = 0
    purchase_root: bytes = ZERO_ROOT
    call: bool = False


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
class TriggerResult:
    """One trigger in one period: the deal's definition and whether it was breached."""

    metric: str
    threshold_bps: int
    effect: str
    curable: bool
    breached: bool


@dataclass(frozen=True)
class PeriodResult:
    """One period's full cash split, most senior tranche first (the figures of version 1's
    PeriodReported event; `trigger_breached`: any trigger breached this period)."""

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


@dataclass(frozen=True)
class PeriodResultV2(PeriodResult):
    """A period under version 2: every PeriodResult figure, and

    status ("revolving" | "amortising" | "called"); the principal account at the start and end;
    the purchase (units, count, root); delinquent_60 as reported; excess_spread (signed: I -
    this period's fee and coupons, without arrears); principal_mode_applied ("pro_rata" |
    "sequential" | "turbo", None while revolving); call_price (0 when none); one TriggerResult
    per trigger in the deal's order. `pool_balance_end` is B1 (0 after the call).
    """

    status: str
    principal_account_start: int
    principal_account_end: int
    purchased_units: int
    purchased_count: int
    purchase_root: bytes
    delinquent_60: int
    excess_spread: int
    principal_mode_applied: str | None
    call_price: int
    triggers: tuple[TriggerResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """As PeriodResult.as_dict, with `triggers` a list of dicts and the root 0x-hex."""
        out = super().as_dict()
        out["triggers"] = [asdict(t) for t in self.triggers]
        out["purchase_root"] = "0x" + self.purchase_root.hex()
        return out

    def v1(self) -> PeriodResult:
        """The PeriodResult part (what a version 1 contract emits for the period)."""
        return PeriodResult(**{f.name: getattr(self, f.name) for f in fields(PeriodResult)})


# -- report checks -------------------------------------------------------------------------------

def _refuse(reason: str) -> WaterfallError:
    return WaterfallError(f"report refused: {reason}")


def _check_report(state: DealState, report: PeriodReport) -> None:
    """The checks that need no waterfall step (all but U > C)."""
    for name in ("interest", "principal", "recoveries", "defaults", "delinquent_60", "purchased_units",
                 "purchased_count"):
        value = getattr(report, name)
        if not _is_int(value) or value < 0:
            raise _refuse(f"{name} must be a non-negative integer, got {value!r}")
    if not isinstance(report.call, bool):
        raise _refuse(f"call must be true or false, got {report.call!r}")
    root = report.purchase_root
    if not isinstance(root, bytes) or len(root) != 32:
        raise _refuse(f"purchase_root must be 32 bytes, got {root!r}")
    if state.called:
        raise _refuse(f"the deal was called (clean-up call) by period {state.period}; it takes no further report")
    b0, p, d = state.pool_balance, report.principal, report.defaults
    if d > b0:
        raise _refuse(f"defaults {d} exceed the pool balance {b0}")
    if p + d > b0:
        raise _refuse(f"principal {p} + defaults {d} exceed the pool balance {b0}")
    u, count = report.purchased_units, report.purchased_count
    if (u == 0) != (count == 0) or (u == 0) != (root == ZERO_ROOT):
        raise _refuse(f"a purchase names its units, loan count and Merkle root, all three or none: got units {u}, "
                      f"count {count}, root 0x{root.hex()}")
    b1 = 0 if report.call else b0 - p - d + u
    if report.delinquent_60 > b1:
        shown = "0 (the call)" if report.call else f"{b1} (B0 {b0} - P {p} - D {d} + U {u})"
        raise _refuse(f"delinquent_60 {report.delinquent_60} exceeds the pool balance at the end of the "
                      f"period, {shown}")


# -- step 0: triggers ----------------------------------------------------------------------------

def excess_spread(deal: DealParams, state: DealState, report: PeriodReport) -> int:
    """ES = I - floor(B0 x fee / 120000) - sum over k < n of floor(T_k x coupon_k / 120000),
    this period's fee and coupons without arrears; negative when they exceed the interest."""
    coupons = sum(t * spec.coupon_bps // MONTHLY_BPS for t, spec in zip(state.tranche_balances, deal.tranches,
                                                                     strict=True))
    return report.interest - state.pool_balance * deal.servicer_fee_bps // MONTHLY_BPS - coupons


def trigger_test(trigger: Trigger, *, deal: DealParams, cumulative_defaults: int,
                 window: Sequence[PeriodHistory], principal_account: int, tranche_total: int) -> bool:
    """Whether `trigger`'s test holds this period (its latch aside): `window` is this period
    and up to two before it, `principal_account` and `tranche_total` those at the start."""
    th = trigger.threshold_bps
    if trigger.metric == "cumulative_default":
        return cumulative_defaults * BPS > th * deal.initial_balance
    if trigger.metric == "delinquency_60":
        return sum(h.delinquent_60 for h in window) * BPS > th * sum(h.pool_balance_end for h in window)
    if trigger.metric == "excess_spread":
        return 12 * sum(h.excess_spread for h in window) * BPS < th * sum(h.pool_balance_start for h in window)
    if trigger.metric == "principal_account":
        return principal_account * BPS > th * tranche_total
    raise DealError("triggers", f"unknown metric {trigger.metric!r}")


# -- steps 2 to 7 --------------------------------------------------------------------------------

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


def pro_rata(pay: int, balances: Sequence[int]) -> list[int]:
    """x_k = floor(pay x T_k / sum T) for every k, then the remainder pay - sum x_k to T_1, T_2,
    ... in order, each capped at T_k - x_k. Needs pay <= sum T; all zero when sum T is 0."""
    total = sum(balances)
    if total == 0:
        return [0] * len(balances)
    shares = [pay * t // total for t in balances]
    extra = _apply_in_order(pay - sum(shares), [t - x for t, x in zip(balances, shares, strict=True)])
    return [x + e for x, e in zip(shares, extra, strict=True)]


def run_period_v2(deal: DealParams, state: DealState, report: PeriodReport) -> tuple[PeriodResultV2, DealState]:
    """Run one period of the version 2 waterfall; return its result and the next state.

    Pure: `state` is not mutated, and a refused report raises WaterfallError with nothing
    changed.
    """
    deal.validate()
    n = len(deal.tranches)
    if len(state.tranche_balances) != n or len(state.unpaid_interest) != n:
        raise WaterfallError(f"state has {len(state.tranche_balances)} tranches, the deal has {n}")
    if len(state.history) >= HISTORY_PERIODS:
        raise WaterfallError(f"state carries {len(state.history)} periods of history, at most "
                             f"{HISTORY_PERIODS - 1} are kept")
    _check_report(state, report)

    t = state.period + 1
    b0, p, d, u = state.pool_balance, report.principal, report.defaults, report.purchased_units
    call_price = b0 - p - d if report.call else 0
    b1 = 0 if report.call else b0 - p - d + u
    starts = list(state.tranche_balances)
    total = sum(starts)
    c_start = state.principal_account

    # 0. Triggers, on this period's figures; the latches of non-curable triggers carry.
    listed = deal.triggers is not None
    triggers = deal.effective_triggers
    latched_before = state.latched if listed else int(state.trigger_breached)
    es = excess_spread(deal, state, report)
    cumulative = state.cumulative_defaults + d
    now = PeriodHistory(pool_balance_start=b0, pool_balance_end=b1, delinquent_60=report.delinquent_60,
                        excess_spread=es)
    window = (*state.history, now)
    breached = [(not trig.curable and bool(latched_before >> i & 1))
                or trigger_test(trig, deal=deal, cumulative_defaults=cumulative, window=window,
                                principal_account=c_start, tranche_total=total)
                for i, trig in enumerate(triggers)]
    latched = sum(1 << i for i, (trig, hit) in enumerate(zip(triggers, breached, strict=True))
                  if hit and not trig.curable)
    effects = {trig.effect for trig, hit in zip(triggers, breached, strict=True) if hit}
    early = state.early_amortisation or "amortise" in effects
    revolving = t <= deal.revolving_periods and not early

    if u > 0 and not revolving:
        raise _refuse(f"a purchase of {u} units in period {t}, which amortises "
                      + ("(an amortise trigger has been breached)" if early
                         else f"(the revolving period ended with period {deal.revolving_periods})"))
    if report.call:
        limit = deal.cleanup_call_bps * deal.initial_balance
        if deal.cleanup_call_bps == 0:
            raise _refuse("the clean-up call is not allowed: the deal has no call (cleanup_call_bps 0)")
        if revolving:
            raise _refuse(f"the clean-up call is not allowed in period {t}: it revolves")
        if b0 * BPS > limit:
            raise _refuse(f"the clean-up call is not allowed: the pool balance {b0} x 10000 exceeds "
                          f"cleanup_call_bps {deal.cleanup_call_bps} x the initial balance {deal.initial_balance}")

    cash = report.interest + report.principal + report.recoveries + call_price
    reserve = state.reserve
    drawn = 0

    # 2. Fee, then 3. interest senior first (the residual's due is 0: coupon 0, nothing carried).
    fee_due = b0 * deal.servicer_fee_bps // MONTHLY_BPS + state.unpaid_fee
    coupons = [spec.coupon_bps for spec in deal.tranches]
    interest_due = [b * c // MONTHLY_BPS + o for b, c, o in zip(starts, coupons, state.unpaid_interest, strict=True)]
    paid = []
    for due in [fee_due, *interest_due]:
        from_cash, from_reserve = _pay(due, cash, reserve)
        cash, reserve, drawn = cash - from_cash, reserve - from_reserve, drawn + from_reserve
        paid.append(from_cash + from_reserve)
    fee_paid, interest_paid = paid[0], paid[1:]

    # 4. Reserve.
    target = b1 * deal.reserve_target_bps // BPS
    released = max(0, reserve - target)
    cash, reserve = cash + released, reserve - released
    added = min(cash, max(0, target - reserve))
    cash, reserve = cash - added, reserve + added

    # 5. Principal.
    if revolving:
        mode: str | None = None
        need = max(0, total - (b0 - p - d) - c_start)
        moved = min(cash, need)
        cash, principal_account = cash - moved, c_start + moved
        if u > principal_account:
            raise _refuse(f"a purchase of {u} units exceeds the principal account, {principal_account} after "
                          f"step 5 ({c_start} at the start + {moved} moved in)")
        principal_account -= u
        principal_paid = [0] * n
    else:
        cash, principal_account = cash + c_start, 0
        turbo = "turbo" in effects
        mode = ("turbo" if turbo else
                "sequential" if deal.principal_mode == "sequential" or "sequential" in effects else "pro_rata")
        owed = total if turbo else max(0, total - b1)
        pay = min(cash, owed)
        cash -= pay
        principal_paid = pro_rata(pay, starts) if mode == "pro_rata" else _apply_in_order(pay, starts)
    after_principal = [b - x for b, x in zip(starts, principal_paid, strict=True)]

    # 6. Losses, junior first; 7. residual.
    loss_total = max(0, sum(after_principal) - b1 - principal_account)
    losses = _apply_in_order(loss_total, after_principal[::-1])[::-1]
    ends = [b - loss for b, loss in zip(after_principal, losses, strict=True)]
    residual = cash

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
    any_breached = any(breached)
    result = PeriodResultV2(
        period=t,
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
        trigger_breached=any_breached,
        residual_paid=residual,
        tranches=tranches,
        status="called" if report.call else "revolving" if revolving else "amortising",
        principal_account_start=c_start,
        principal_account_end=principal_account,
        purchased_units=u,
        purchased_count=report.purchased_count,
        purchase_root=report.purchase_root,
        delinquent_60=report.delinquent_60,
        excess_spread=es,
        principal_mode_applied=mode,
        call_price=call_price,
        triggers=tuple(TriggerResult(trig.metric, trig.threshold_bps, trig.effect, trig.curable, hit)
                       for trig, hit in zip(triggers, breached, strict=True)),
    )
    new_state = DealState(
        period=t,
        pool_balance=b1,
        tranche_balances=ends,
        unpaid_interest=[x.interest_unpaid for x in tranches],
        unpaid_fee=fee_due - fee_paid,
        reserve=reserve,
        cumulative_defaults=cumulative,
        trigger_breached=any_breached,
        principal_account=principal_account,
        early_amortisation=early,
        called=report.call,
        latched=latched if listed else 0,
        history=window[-(HISTORY_PERIODS - 1):] if listed else (),
    )
    return result, new_state


def run_period(deal: DealParams, state: DealState, report: PeriodReport) -> tuple[PeriodResult, DealState]:
    """Run one period; return its PeriodResult (the version 1 figures) and the next state.

    The same engine and refusals as run_period_v2, which also returns the version 2 figures.
    """
    result, new_state = run_period_v2(deal, state, report)
    return result.v1(), new_state


def run_periods_v2(deal: DealParams, reports: Iterable[PeriodReport]) -> list[PeriodResultV2]:
    """Run the deal from closing through `reports`, one period each."""
    state = DealState.initial(deal)
    results = []
    for report in reports:
        result, state = run_period_v2(deal, state, report)
        results.append(result)
    return results


def run_periods(deal: DealParams, reports: Iterable[PeriodReport]) -> list[PeriodResult]:
    """Run the deal from closing through `reports`, one period each (version 1 figures)."""
    return [result.v1() for result in run_periods_v2(deal, reports)]


def check_conservation(result: PeriodResult) -> None:
    """Raise WaterfallError unless the period's cash and reserve ledgers balance.

    Cash in = I + P + R + reserve drawn + reserve released; for a PeriodResultV2 also the call
    price and the principal account at the start, and cash out also the purchase U and the
    principal account at the end (WATERFALL.md v2's identity). Also: the reserve's ledger, the
    tranches' cash = interest + principal + residual, and for a PeriodResultV2 the page's
    bound sum T <= B1 + C after step 7.
    """
    cash_in = (result.interest_collected + result.principal_collected + result.recoveries
               + result.reserve_drawn + result.reserve_released)
    cash_out = (result.fee_paid + sum(t.interest_paid + t.principal_paid for t in result.tranches)
                + result.residual_paid + result.reserve_added)
    if isinstance(result, PeriodResultV2):
        cash_in += result.call_price + result.principal_account_start
        cash_out += result.purchased_units + result.principal_account_end
    if cash_in != cash_out:
        raise WaterfallError(f"period {result.period}: cash in {cash_in} != cash out {cash_out}")
    reserve_end = result.reserve_start - result.reserve_drawn - result.reserve_released + result.reserve_added
    if reserve_end != result.reserve_end:
        raise WaterfallError(f"period {result.period}: reserve ledger {reserve_end} != {result.reserve_end}")
    paid_to_tranches = sum(t.cash_paid for t in result.tranches)
    split = sum(t.interest_paid + t.principal_paid for t in result.tranches) + result.residual_paid
    if paid_to_tranches != split:
        raise WaterfallError(f"period {result.period}: tranche cash {paid_to_tranches} != the split {split}")
    if isinstance(result, PeriodResultV2):
        notes = sum(t.balance_end for t in result.tranches)
        if notes > result.pool_balance_end + result.principal_account_end:
            raise WaterfallError(f"period {result.period}: tranche balances {notes} exceed B1 "
                                 f"{result.pool_balance_end} + C {result.principal_account_end}")
