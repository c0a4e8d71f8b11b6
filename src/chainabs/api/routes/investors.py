"""GET /investors/{address}/holdings and /transfers: positions and their history, from the index.

Holdings are the index's balances (kept in step with every Transfer event), one entry per
indexed token the address holds: ERC-20 amounts in base units, ERC-721 token counts. Tranche
tokens also carry the holder's position (outstanding principal, claimable, claimed,
eligibility), from the deal catalog (chainabs.figures.enrich_holdings).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from chainabs.api.deps import (
    AddressPath,
    AppState,
    DealCatalog,
    DealsDep,
    Page,
    PageDep,
    StateDep,
    checksum,
    parse_address,
)

router = APIRouter(prefix="/investors", tags=["investors"])


class Holding(BaseModel):
    model_config = ConfigDict(extra="allow")

    token: str
    contract: str | None = Field(description="the token's artifact, e.g. TrancheToken")
    label: str | None = Field(description="the token's label in the index, e.g. consumer-loans/TrancheToken:A")
    kind: str | None = Field(description="erc20 (amount in base units) or erc721 (amount = tokens held)")
    amount: str = Field(description="decimal string: uint256 exceeds JSON's safe integers")


class TrancheHolding(Holding):
    """A tranche token held (or held before: cash left to claim), with the holder's position."""

    pool: str
    deal: str
    tranche: str
    symbol: str
    tranche_index: int
    units: str = Field(description="the amount, as tranche units (decimal string)")
    outstanding_principal: int = Field(description="units x the tranche's balance / face, rounded down, as of "
                                                   "the last reported period")
    claimable: int = Field(description="cash the holder can claim (the token's claimableOf at the indexed head, "
                                       "replayed from its Transfer, Distributed, Claimed and EntitlementMoved "
                                       "events); a frozen or ineligible holder's cash is held, not lost")
    claimed: int = Field(description="cash claimed so far (Claimed events)")
    eligible: bool = Field(description="eligible to hold, receive and claim (the registry's events, at the "
                                       "indexed head's block time)")
    eligible_until: int = Field(description="unix time the eligibility ends (as the token mirrors it)")
    frozen: bool


class Holdings(BaseModel):
    address: str
    indexed_head: int | None = Field(description="the balances are as of this block")
    holdings: list[TrancheHolding | Holding]


class TransferOut(BaseModel):
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    token: str
    contract: str | None
    label: str | None
    kind: str
    direction: str = Field(description="in, out or self, seen from the address asked about")
    from_: str = Field(alias="from")
    to: str
    amount: str
    token_id: str | None = Field(description="ERC-721 token id (decimal), else null")

    model_config = ConfigDict(populate_by_name=True)


class TransferPage(BaseModel):
    address: str
    total: int
    limit: int
    offset: int
    items: list[TransferOut]


@router.get("/{address}/holdings", response_model=Holdings)
async def holdings(state: StateDep, deals: DealsDep, address: AddressPath) -> Response:
    """Per indexed token, what the address holds now (as of the indexed head)."""
    return state.responses.answer(state.store, ("holdings", address, deals.stamps()),
                                  lambda: _holdings(state, deals, address))


def _holdings(state: AppState, deals: DealCatalog, address: str) -> Holdings:
    store = state.store
    items: list[dict[str, Any]] = [
        {"token": checksum(b.token), "contract": b.artifact, "label": b.label, "kind": b.kind, "amount": str(b.amount)}
        for b in store.holdings(address)]
    items = deals.holdings(store=store, address=address, holdings=items)
    return Holdings(address=checksum(address), indexed_head=store.cursor(),
                    holdings=[TrancheHolding(**item) if "tranche_index" in item else Holding(**item)
                              for item in items])


@router.get("/{address}/transfers", response_model=TransferPage, response_model_by_alias=True)
async def transfers(state: StateDep, address: AddressPath, page: PageDep,
                    token: Annotated[str | None, Query(description="only this token's transfers")] = None) -> Response:
    """Every indexed token transfer from or to the address, oldest first."""
    token_filter = parse_address(token, "token address") if token is not None else None
    return state.responses.answer(state.store, ("transfers", address, token_filter, page),
                                  lambda: _transfers(state, address, page, token_filter))


def _transfers(state: AppState, address: str, page: Page, token_filter: str | None) -> TransferPage:
    total, rows = state.store.transfers(address, limit=page.limit, offset=page.offset, token=token_filter)
    items = []
    for t in rows:
        direction = "self" if t.from_addr == t.to_addr else ("out" if t.from_addr == address else "in")
        items.append(TransferOut(block_number=t.block_number, block_hash=t.block_hash, log_index=t.log_index,
                                 tx_hash=t.tx_hash, token=checksum(t.token), contract=t.artifact, label=t.label,
                                 kind=t.kind, direction=direction, from_=checksum(t.from_addr),
                                 to=checksum(t.to_addr), amount=str(t.amount),
                                 token_id=None if t.token_id is None else str(t.token_id)))
    return TransferPage(address=checksum(address), total=total, limit=page.limit, offset=page.offset, items=items)
