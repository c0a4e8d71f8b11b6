"""The reference model's values as WaterfallV2.sol's structs, and back.

WaterfallV2's structs carry the model's dataclass fields under the same names and in the same
order (waterfall.DealParams, DealState, PeriodReport, PeriodResultV2), so these conversions are
positional. Enums are indices into the model's tuples: Metric = METRICS, Effect = EFFECTS,
PrincipalMode = PRINCIPAL_MODES, Status = STATUSES and ModeApplied = MODES_APPLIED (None while
revolving). `Params.triggers_listed` is the model's `triggers is not None`; a tranche's name and
symbol stay off chain's waterfall (the tokens carry them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from chainabs.waterfall import (
    EFFECTS,
    METRICS,
    PRINCIPAL_MODES,
    STATUSES,
    DealParams,
    DealState,
    PeriodHistory,
    PeriodReport,
    PeriodResultV2,
    TrancheResult,
    TriggerResult,
)

MODES_APPLIED: tuple[str | None, ...] = (None, "pro_rata", "sequential", "turbo")  # WaterfallV2.ModeApplied


def params_struct(deal: DealParams) -> tuple[Any, ...]:
    """WaterfallV2.Params of a deal."""
    return (
        [(t.face, t.coupon_bps) for t in deal.tranches],
        deal.servicer_fee_bps, deal.reserve_target_bps, deal.initial_reserve, deal.default_trigger_bps,
        deal.revolving_periods, PRINCIPAL_MODES.index(deal.principal_mode), deal.cleanup_call_bps,
        deal.triggers is not None,
        [(METRICS.index(t.metric), t.threshold_bps, EFFECTS.index(t.effect), t.curable) for t in deal.triggers or ()],
    )


def state_struct(state: DealState) -> tuple[Any, ...]:
    """WaterfallV2.State of a model state."""
    s = state
    return (s.period, s.pool_balance, list(s.tranche_balances), list(s.unpaid_interest), s.unpaid_fee, s.reserve,
            s.cumulative_defaults, s.trigger_breached, s.principal_account, s.early_amortisation, s.called,
            s.latched, [(h.pool_balance_start, h.pool_balance_end, h.delinquent_60, h.excess_spread)
                         for h in s.history])


def report_struct(report: PeriodReport) -> tuple[Any, ...]:
    """WaterfallV2.Report of a model report."""
    r = report
    return (r.interest, r.principal, r.recoveries, r.defaults, r.delinquent_60, r.purchased_units,
            r.purchased_count, r.purchase_root, r.call)


def state_from(raw: Sequence[Any]) -> DealState:
    """A decoded WaterfallV2.State as the model's DealState."""
    (period, pool, balances, unpaid, fee, reserve, cumulative, breached, account, early, called, latched,
     history) = raw
    return DealState(period, pool, list(balances), list(unpaid), fee, reserve, cumulative, breached, account,
                     early, called, latched, tuple(PeriodHistory(*h) for h in history))


def result_from(raw: Sequence[Any]) -> PeriodResultV2:
    """A decoded WaterfallV2.Result as the model's PeriodResultV2."""
    values = dict(zip([f.name for f in fields(PeriodResultV2)], raw, strict=True))
    values["tranches"] = tuple(TrancheResult(*t) for t in values["tranches"])
    values["triggers"] = tuple(TriggerResult(METRICS[m], th, EFFECTS[e], curable, hit)
                               for m, th, e, curable, hit in values["triggers"])
    values["status"] = STATUSES[values["status"]]
    values["principal_mode_applied"] = MODES_APPLIED[values["principal_mode_applied"]]
    values["purchase_root"] = bytes(values["purchase_root"])
    return PeriodResultV2(**values)
