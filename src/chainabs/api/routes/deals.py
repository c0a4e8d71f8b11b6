"""GET /pools/{pool}/tranches, /periods, /periods/{n} and /report: a deal's figures, from its events.

Every number here is a field of a `PeriodReported` event as indexed (names as in waterfall.py
and WATERFALL.md), or a sum or ratio of them; see chainabs.figures.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from chainabs import figures
from chainabs.api.deps import AppState, DealCatalog, DealsDep, PageDep, PoolEntry, PoolEntryDep, StateDep, checksum
from chainabs.api.models import InvestorReport, PeriodOut, TrancheOut
from chainabs.errors import NotFound

router = APIRouter(tags=["deals"])


def deal_of(deals: DealCatalog, entry: PoolEntry) -> figures.DealInfo:
    """The pool's deal; called in the handler, after the request's values are validated."""
    deal = deals.for_pool(entry.files.folder.name)
    if deal is None:
        raise NotFound(f"pool {entry.files.record.name!r} has no deal yet")
    return deal


class TrancheList(BaseModel):
    pool: str
    deal: str
    period: int | None = Field(description="the figures are as of this period's report (None: at closing)")
    items: list[TrancheOut]


class PeriodPage(BaseModel):
    pool: str
    total: int
    limit: int
    offset: int
    items: list[PeriodOut]


PeriodNumber = Annotated[int, Path(ge=1, le=figures.MAX_PERIODS, description="period number, from 1")]


def _period(history: list[dict[str, Any]], n: int, pool: str) -> dict[str, Any]:
    for p in history:
        if p["period"] == n:
            return p
    raise NotFound(f"pool {pool!r} has {len(history)} reported period(s); there is no period {n}")


NO_DEAL: dict[int | str, dict[str, Any]] = {404: {"description": "no such pool or deal"}}


@router.get("/pools/{pool}/tranches", response_model=TrancheList, responses=NO_DEAL)
async def list_tranches(state: StateDep, deals: DealsDep, entry: PoolEntryDep) -> Response:
    """Each tranche's balance, factor, coupon, unpaid interest and credit enhancement now."""
    deal = deal_of(deals, entry)
    return state.responses.answer(state.store, ("tranches", *_key(entry, deal)), lambda: _tranches(state, deal))


def _key(entry: PoolEntry, deal: figures.DealInfo) -> tuple[Any, ...]:
    """What a deal route's answer depends on beside the index: the pool's and the deal's records."""
    return entry.files.folder.name, entry.stamp, deal.slug, deal.stamp


def _tranches(state: AppState, deal: figures.DealInfo) -> TrancheList:
    history = figures.periods(state.store, deal)
    return TrancheList(pool=checksum(deal.pool), deal=checksum(deal.deal),
                       period=history[-1]["period"] if history else None,
                       items=[TrancheOut(**t) for t in figures.tranche_state(deal, history)])


@router.get("/pools/{pool}/periods", response_model=PeriodPage, responses=NO_DEAL)
async def list_periods(state: StateDep, deals: DealsDep, entry: PoolEntryDep, page: PageDep) -> Response:
    """Every reported period, oldest first, with the full waterfall."""
    deal = deal_of(deals, entry)

    def build() -> PeriodPage:
        history = figures.periods(state.store, deal)
        chosen = history[page.offset:page.offset + page.limit]
        return PeriodPage(pool=checksum(deal.pool), total=len(history), limit=page.limit, offset=page.offset,
                          items=[PeriodOut(**p) for p in chosen])
    return state.responses.answer(state.store, ("periods", *_key(entry, deal), page), build)


@router.get("/pools/{pool}/periods/{period}", response_model=PeriodOut,
            responses={404: {"description": "no such period"}})
async def get_period(state: StateDep, deals: DealsDep, entry: PoolEntryDep, period: PeriodNumber) -> Response:
    """One period: every figure of its report and waterfall."""
    deal = deal_of(deals, entry)
    return state.responses.answer(state.store, ("period", *_key(entry, deal), period), lambda: PeriodOut(
        **_period(figures.periods(state.store, deal), period, entry.files.record.name)))


@router.get("/pools/{pool}/report", response_model=InvestorReport, responses={
    200: {"content": {"application/json": {}, "text/csv": {}},
          "description": "the investor report, as JSON or long-format CSV (section, tranche, field, value)"},
    404: {"description": "no such pool, deal or period"}})
async def get_report(state: StateDep, deals: DealsDep, entry: PoolEntryDep,
               period: Annotated[int | None, Query(ge=1, le=figures.MAX_PERIODS,
                                                   description="period number (default: the latest)")] = None,
               format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json") -> Any:
    """The investor report of a period: collections, waterfall, losses, excess spread,
    overcollateralisation, CPR, CDR, reserve and the trigger test."""
    deal = deal_of(deals, entry)
    history = figures.periods(state.store, deal)
    if not history:
        raise NotFound(f"pool {entry.files.record.name!r} has no reported period yet")
    n = period if period is not None else history[-1]["period"]
    _period(history, n, entry.files.record.name)
    report = figures.investor_report(deal, history, n, figures.principal_split_of(deal, entry.files, n))
    if format == "csv":
        name = f"{entry.files.folder.name}-period-{n}.csv"
        return PlainTextResponse(figures.report_csv(report), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return state.responses.answer(state.store, ("report", *_key(entry, deal), n), lambda: InvestorReport(**report))
