"""Response models of the deal figures (chainabs.figures), shared by the pool and deal routes.

A period's and a tranche's figures carry the reference model's field names (waterfall.py,
WATERFALL.md): those models are derived from its dataclasses, so a field added there appears
here. Every model lists its fields in the order chainabs.figures writes them, which is the
order of the JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from pydantic import BaseModel, Field, create_model

from chainabs.waterfall import PeriodResult, TrancheResult


def model_fields(cls: type, skip: tuple[str, ...] = (), prefix: str = "") -> dict[str, Any]:
    """A waterfall dataclass's fields as pydantic field definitions, in their order; with
    `prefix`, only the fields named so, without it (`reserve_end` -> `end`)."""
    hints = get_type_hints(cls)
    return {f.name.removeprefix(prefix): (hints[f.name], ...) for f in dataclasses.fields(cls)
            if f.name not in skip and f.name.startswith(prefix)}


class Bucket(BaseModel):
    count: int
    outstanding_units: int


# -- the tranches now ------------------------------------------------------------------------------

class TrancheOut(BaseModel):
    index: int
    name: str
    symbol: str
    address: str
    face: int
    balance: int
    factor: float = Field(description="balance / face")
    coupon_bps: int
    residual: bool
    unpaid_interest: int
    credit_enhancement_units: int = Field(description="pool balance + reserve - this and every senior tranche")
    credit_enhancement_bps: int = Field(description="credit enhancement as a share of the pool balance")


# -- a pool's deal figures ---------------------------------------------------------------------------

class TriggerOut(BaseModel):
    breached: bool
    default_trigger_bps: int
    cumulative_default_bps: int


class DealFigures(BaseModel):
    """A deal's pool performance now (chainabs.figures.deal_figures)."""

    name: str
    deal: str
    registry: str | None
    exchange: str | None
    periods: int = Field(description="periods reported so far")
    last_period: int | None
    initial_balance: int
    pool_balance: int
    pool_factor: float = Field(description="pool balance / initial balance")
    loan_count: int | None = Field(description="loans in the last period's report (None: at closing)")
    cumulative_defaults: int
    cumulative_recoveries: int
    cumulative_net_loss: int
    cumulative_default_bps: int
    prepayments_last_period: int | None = Field(description="None without the period's loan-level tapes")
    cpr_last_period: float | None = Field(description="the last period's SMM: prepayments over the balance "
                                                       "at its start less the scheduled principal")
    cpr_annualised: float | None = Field(description="1 - (1 - SMM)^12; None without the loan-level tapes")
    cdr_last_period: float = Field(description="defaulted principal over the balance at the start")
    cdr_annualised: float
    overcollateralisation_units: int = Field(description="pool balance beyond the rated (non-residual) tranches")
    overcollateralisation_ratio: float | None
    reserve: int
    reserve_target_bps: int
    servicer_fee_bps: int
    trigger: TriggerOut
    delinquency: dict[str, Bucket] | None = Field(description="loans by status: count and outstanding units")
    tranches: list[TrancheOut]


# -- periods ---------------------------------------------------------------------------------------

TranchePeriod = create_model("TranchePeriod", index=(int, ...), name=(str, ...), symbol=(str, ...),
                             **model_fields(TrancheResult))
PeriodOut = create_model(
    "PeriodOut", **model_fields(PeriodResult, skip=("tranches",)), loan_count=(int, ...),
    loan_root=(str, Field(description="Merkle root of the period's loan-level tape")),
    tranches=(list[TranchePeriod], ...),
    block_number=(int, ...), block_hash=(str, ...), tx_hash=(str, ...))


# -- the investor report -----------------------------------------------------------------------------

class Collections(BaseModel):
    interest: int
    principal: int
    scheduled_principal: int | None = Field(description="None without the loan-level tapes")
    prepayments: int | None = Field(description="principal beyond the loans' schedule; None without the tapes")
    recoveries: int
    total: int


class PoolPerformance(BaseModel):
    balance_start: int
    balance_end: int
    factor: float
    defaulted_principal: int
    cumulative_defaults: int
    cumulative_recoveries: int
    cumulative_net_loss: int
    cpr_monthly: float | None
    cpr_annualised: float | None
    cdr_monthly: float
    cdr_annualised: float


class Overcollateralisation(BaseModel):
    units: int
    ratio: float | None


class TriggerTest(BaseModel):
    cumulative_default_bps: int
    threshold_bps: int
    breached: bool


Fees = create_model("Fees", **model_fields(PeriodResult, prefix="fee_"))
Reserve = create_model("Reserve", **model_fields(PeriodResult, prefix="reserve_"))
ReportTranche = create_model("ReportTranche", __base__=TranchePeriod,
                             factor=(float, Field(description="balance at the period's end / face")))


class InvestorReport(BaseModel):
    """A period's investor report (chainabs.figures.investor_report)."""

    deal: str = Field(description="the deal's name")
    pool_address: str
    period: int
    loan_root: str
    loan_count: int
    block_number: int
    tx_hash: str
    collections: Collections
    pool: PoolPerformance
    fees: Fees
    excess_spread: int = Field(description="interest collected less the fee and the rated tranches' interest paid")
    overcollateralisation: Overcollateralisation
    reserve: Reserve
    trigger_test: TriggerTest
    residual_paid: int
    tranches: list[ReportTranche]
