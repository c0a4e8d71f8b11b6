"""GET /pools and /pools/{pool}: what each pool holds, from its committed loan rows and its events.

The loan-side figures (count, balances, WAC, WAM, status and product mix) come from the rows
the pool committed to, whose Merkle root is on chain (chainabs.figures.loan_figures); `minted`,
`filled` and `root_on_chain` from the pool contract's indexed events (TapeCommitted,
LoansMinted), as of the indexed head. Deal figures (pool factor, tranches, defaults,
triggers...) are the deal catalog's (chainabs.figures), under `deal`. Nothing here reads the
chain per request.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from chainabs import figures
from chainabs.api.deps import AppState, DealCatalog, DealsDep, PageDep, PoolEntry, PoolEntryDep, StateDep, checksum
from chainabs.api.models import Bucket, DealFigures

router = APIRouter(tags=["pools"])

MEMO_DATES = 16
_EPOCH = date(1970, 1, 1).toordinal()


class PoolSummary(BaseModel):
    name: str
    slug: str
    address: str | None
    status: str = Field(description="planned, deployed, committed or filled (the pool folder's record)")
    currency: str
    decimals: int
    chain_id: int
    deployment_block: int | None
    root: str = Field(description="Merkle root over the pool's loan commitments, as recorded")
    root_on_chain: str | None = Field(description="the root the pool contract committed to (its TapeCommitted "
                                      "event, indexed)")
    loan_count: int
    minted: int | None = Field(description="loans minted on chain so far (LoansMinted, as of the indexed head)")
    filled: bool | None
    principal_units: int
    outstanding_units: int
    wac_bps: float = Field(description="weighted average coupon (annual rate, bps), weighted by outstanding")
    wam_months: float = Field(description="weighted average remaining term in months at `as_of`")
    wa_original_term_months: float
    as_of: str = Field(description="the date WAM is computed at: `?as_of=` or the indexed head's block")
    by_status: dict[str, Bucket]
    by_product: dict[str, Bucket]
    deal: DealFigures | None = Field(None, description="deal figures, when the pool has a deal")


class PoolList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PoolSummary]


def pool_summary(*, state: AppState, deals: DealCatalog, entry: PoolEntry, as_of_day: int) -> PoolSummary:
    files = entry.files
    record = files.record
    key = ("figures", as_of_day)
    if key not in entry.memo:
        if len(entry.memo) >= MEMO_DATES:  # any date may be asked for: keep a few
            entry.memo.clear()
        entry.memo[key] = figures.loan_figures(rows=files.rows, as_of_day=as_of_day)
    minted = filled = root_on_chain = None
    if record.address:
        chain = figures.pool_chain_state(state.store, record.address, entry.memo)
        minted, filled = chain.minted, chain.filled
        root_on_chain = chain.root or "0x" + "00" * 32  # loanRoot() before the tape is committed
    deal = deals.pool_figures(store=state.store, files=files)
    return PoolSummary(name=record.name, slug=files.folder.name,
                       address=checksum(record.address.lower()) if record.address else None,
                       status=record.status, currency=record.currency, decimals=record.decimals,
                       chain_id=record.chain_id, deployment_block=record.deployment_block, root=record.root,
                       root_on_chain=root_on_chain, minted=minted, filled=filled, deal=deal, **entry.memo[key])


AsOf = Annotated[date | None, Query(description="date for WAM (YYYY-MM-DD); default: the indexed head's block")]


def _as_of_day(state: AppState, as_of: date | None) -> int:
    return as_of.toordinal() - _EPOCH if as_of is not None else figures.index_day(state.store)


@router.get("/pools", response_model=PoolList)
async def list_pools(state: StateDep, deals: DealsDep, page: PageDep, as_of: AsOf = None) -> Response:
    """Every pool of the data dir, by name."""
    day = _as_of_day(state, as_of)
    entries = state.pools.entries()
    chosen = entries[page.offset:page.offset + page.limit]
    key = ("pools", page, day, len(entries), tuple((e.files.folder.name, e.stamp) for e in chosen), deals.stamps())
    return state.responses.answer(state.store, key, lambda: PoolList(
        total=len(entries), limit=page.limit, offset=page.offset,
        items=[pool_summary(state=state, deals=deals, entry=e, as_of_day=day) for e in chosen]))


@router.get("/pools/{pool}", response_model=PoolSummary, responses={404: {"description": "no such pool"}})
async def get_pool(state: StateDep, deals: DealsDep, entry: PoolEntryDep, as_of: AsOf = None) -> Response:
    """One pool, by address or name."""
    day = _as_of_day(state, as_of)
    deal = deals.for_pool(entry.files.folder.name)
    key = ("pool", entry.files.folder.name, entry.stamp, None if deal is None else deal.stamp, day)
    return state.responses.answer(state.store, key,
                                  lambda: pool_summary(state=state, deals=deals, entry=entry, as_of_day=day))
