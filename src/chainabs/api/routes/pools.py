"""GET /pools and /pools/{pool}: what each pool holds, from its committed loan rows and the chain.

The loan-side figures (count, balances, WAC, WAM, status and product mix) come from the rows
the pool committed to (loans.json, whose Merkle root is on chain); `minted`, `filled` and
`root_on_chain` are read from the pool contract. Deal figures (pool factor, tranches,
defaults, triggers...) come from the `pool_figures` hook, under `deal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from chainabs.api.deps import AppState, PageDep, PoolEntry, PoolEntryDep, StateDep, checksum
from chainabs.datadir import CommittedLoan
from chainabs.tape import PRODUCTS, STATUSES, format_day

router = APIRouter(tags=["pools"])

DAYS_PER_MONTH = 365.25 / 12
MEMO_DATES = 16
_EPOCH = date(1970, 1, 1).toordinal()


class Bucket(BaseModel):
    count: int
    outstanding_units: int


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
    root_on_chain: str | None = Field(description="the root the pool contract holds")
    loan_count: int
    minted: int | None = Field(description="loans minted on chain so far")
    filled: bool | None
    principal_units: int
    outstanding_units: int
    wac_bps: float = Field(description="weighted average coupon (annual rate, bps), weighted by outstanding")
    wam_months: float = Field(description="weighted average remaining term in months at `as_of`")
    wa_original_term_months: float
    as_of: str = Field(description="the date WAM is computed at: `?as_of=` or the chain's latest block")
    by_status: dict[str, Bucket]
    by_product: dict[str, Bucket]
    deal: dict[str, Any] | None = Field(None, description="deal figures, when the pool has a deal")


class PoolList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PoolSummary]


def loan_figures(*, rows: Sequence[CommittedLoan], as_of_day: int) -> dict[str, Any]:
    """Count, balances, WAC, WAM and mix of committed loans (weights: outstanding units)."""
    outstanding = sum(r.outstanding_units for r in rows)
    weight = outstanding or 1
    by_status = {name: {"count": 0, "outstanding_units": 0} for name in STATUSES}
    by_product = {name: {"count": 0, "outstanding_units": 0} for name in PRODUCTS}
    for r in rows:
        for table, key in ((by_status, STATUSES[r.status]), (by_product, PRODUCTS[r.product])):
            table[key]["count"] += 1
            table[key]["outstanding_units"] += r.outstanding_units
    return {
        "loan_count": len(rows),
        "principal_units": sum(r.principal_units for r in rows),
        "outstanding_units": outstanding,
        "wac_bps": round(sum(r.rate_bps * r.outstanding_units for r in rows) / weight, 2),
        "wam_months": round(sum(max(0, r.maturity_day - as_of_day) * r.outstanding_units for r in rows)
                            / weight / DAYS_PER_MONTH, 2),
        "wa_original_term_months": round(sum(r.term_months * r.outstanding_units for r in rows) / weight, 2),
        "as_of": format_day(as_of_day),
        "by_status": by_status,
        "by_product": by_product,
    }


def _chain_day(state: AppState) -> int:
    with state.chain_lock:
        timestamp = int(state.ctx.chain.w3.eth.get_block("latest")["timestamp"])
    return timestamp // 86_400


def pool_summary(*, state: AppState, entry: PoolEntry, as_of_day: int) -> PoolSummary:
    files = entry.files
    record = files.record
    key = ("figures", as_of_day)
    if key not in entry.memo:
        if len(entry.memo) >= MEMO_DATES:  # any date may be asked for: keep a few
            entry.memo.clear()
        entry.memo[key] = loan_figures(rows=files.rows, as_of_day=as_of_day)
    minted = filled = root_on_chain = None
    if record.address:
        chain = state.ctx.chain
        contract = chain.contract("LoanPool", record.address)
        with state.chain_lock:
            minted = int(chain.call(contract.functions.mintedCount()))
            filled = bool(chain.call(contract.functions.filled()))
            root_on_chain = "0x" + bytes(chain.call(contract.functions.loanRoot())).hex()
    deal = None
    if state.hooks.pool_figures is not None:
        deal = state.hooks.pool_figures(ctx=state.ctx, store=state.store, files=files)
    return PoolSummary(name=record.name, slug=files.folder.name,
                       address=checksum(record.address.lower()) if record.address else None,
                       status=record.status, currency=record.currency, decimals=record.decimals,
                       chain_id=record.chain_id, deployment_block=record.deployment_block, root=record.root,
                       root_on_chain=root_on_chain, minted=minted, filled=filled, deal=deal, **entry.memo[key])


AsOf = Annotated[date | None, Query(description="date for WAM (YYYY-MM-DD); default: the chain's latest block")]


def _as_of_day(state: AppState, as_of: date | None) -> int:
    return as_of.toordinal() - _EPOCH if as_of is not None else _chain_day(state)


@router.get("/pools", response_model=PoolList)
def list_pools(state: StateDep, page: PageDep, as_of: AsOf = None) -> PoolList:
    """Every pool of the data dir, by name."""
    day = _as_of_day(state, as_of)
    entries = state.pools.entries()
    chosen = entries[page.offset:page.offset + page.limit]
    return PoolList(total=len(entries), limit=page.limit, offset=page.offset,
                    items=[pool_summary(state=state, entry=e, as_of_day=day) for e in chosen])


@router.get("/pools/{pool}", response_model=PoolSummary, responses={404: {"description": "no such pool"}})
def get_pool(state: StateDep, entry: PoolEntryDep, as_of: AsOf = None) -> PoolSummary:
    """One pool, by address or name."""
    return pool_summary(state=state, entry=entry, as_of_day=_as_of_day(state, as_of))
