"""Operator endpoints (bearer API key): investors, period reports, pools, an indexer sync.

Each request is parsed here and handed to one service-layer function (chainabs.service), which
checks it in full before anything is sent, so a refused request (4xx) changes nothing: a period
report goes through the reference model and the servicer's cash is counted first, a tape and a
deal file are parsed before a pool is deployed. A 200 means every transaction of the request is
mined (and, on the embedded chain, fsynced to its journal). The service's errors become
statuses in one place (api/main.py): not found 404, invalid input 422, a refusing state 409.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, UploadFile
from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model

from chainabs import deal as deals
from chainabs import service
from chainabs.api.auth import Operator
from chainabs.api.deps import BadInput, PoolEntryDep, StateDep, checksum, parse_address
from chainabs.api.models import model_fields
from chainabs.chain import Sent
from chainabs.dealfile import DealFile, parse_deal_file
from chainabs.waterfall import PeriodReport, PeriodResult, TrancheResult

router = APIRouter(prefix="/operator", tags=["operator"])

AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "no API key"}, 403: {"description": "wrong API key"}}
MAX_INVESTORS = deals.DEFAULT_BATCH  # one registry transaction: a request is all or nothing
MAX_AMOUNT = 2**255
_ZERO = "0x" + "0" * 40
_EPOCH = date(1970, 1, 1).toordinal()


class Tx(BaseModel):
    tx_hash: str
    block_number: int


def _txs(sent: list[Sent]) -> list[Tx]:
    return [Tx(tx_hash=s.tx_hash, block_number=s.block_number) for s in sent]


# -- investors -----------------------------------------------------------------------------------

class InvestorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["add", "freeze", "unfreeze"] = Field(description="add (or update) investors, freeze or unfreeze")
    addresses: list[str] = Field(min_length=1, max_length=MAX_INVESTORS)
    pool: str | None = Field(None, description="the deal's pool, by name (slug) or address; default: the only pool")
    eligible_until: date | None = Field(None, description="add only: eligible until this day (default: no end)")
    jurisdiction: int = Field(840, ge=1, le=999, description="add only: ISO 3166-1 numeric country code")


class InvestorsOut(BaseModel):
    pool: str
    action: str
    addresses: list[str]
    eligible_until: int | None
    transactions: list[Tx]


def _addresses(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        address = parse_address(value, "investor address")
        if address == _ZERO:
            raise BadInput("the zero address cannot be an investor")
        if address in out:
            raise BadInput(f"investor address {checksum(address)} is listed twice")
        out.append(address)
    return [checksum(a) for a in out]


@router.post("/investors", response_model=InvestorsOut, responses=AUTH)
def investors(body: InvestorsIn, state: StateDep, _: Operator) -> InvestorsOut:
    """Add investors to a deal's registry (eligible until a day, in a jurisdiction), or freeze or
    unfreeze them. Up to 400 addresses: one transaction."""
    addresses = _addresses(body.addresses)
    if body.action != "add" and (body.eligible_until is not None or "jurisdiction" in body.model_fields_set):
        raise BadInput(f"eligible_until and jurisdiction go with action 'add', not {body.action!r}")
    with state.chain_lock:
        pool = state.pools.entry(body.pool).files.record.name if body.pool is not None else None
        if body.action == "add":
            until_day = None if body.eligible_until is None else body.eligible_until.toordinal() - _EPOCH
            done = service.add_investors(state.ctx, investors=addresses, until_day=until_day,
                                         jurisdiction=body.jurisdiction, pool=pool)
        else:
            done = service.freeze_investors(state.ctx, investors=addresses, frozen=body.action == "freeze", pool=pool)
    return InvestorsOut(pool=done.pool, action=body.action, addresses=addresses, eligible_until=done.eligible_until,
                        transactions=_txs(done.transactions))


# -- period reports ------------------------------------------------------------------------------

class PeriodIn(BaseModel):
    """A servicer's period report, in base units of the settlement currency, and optionally the
    period's loan-level tape."""

    model_config = ConfigDict(extra="forbid")

    interest: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="interest collected")
    principal: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="principal collected")
    recoveries: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="recoveries on defaulted loans")
    defaults: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="principal of loans newly defaulted")
    loan_tape: str | None = Field(None, description=(
        "the period's loan-level tape as text, CSV or JSON Lines (TAPE.md), one row per loan of the pool in "
        "any order, with each loan's status and outstanding principal at the period's end: its Merkle root is "
        "posted as the period's loan_root and the tape is kept for proofs, as `chainabs report --loan-tape` "
        "does. Without it the period commits to the zero root"))


TrancheFigures = create_model("TrancheFigures", **model_fields(TrancheResult))
PeriodPosted = create_model(
    "PeriodPosted", pool=(str, ...), **model_fields(PeriodResult, skip=("tranches",)),
    tranches=(list[TrancheFigures], ...),
    matches_model=(bool, Field(description="whether the chain's figures equal the reference model's")))


@router.post("/pools/{pool}/periods", response_model=PeriodPosted, responses={
    **AUTH, 404: {"description": "no such pool, or it has no deal"},
    409: {"description": "the offering is not closed, or the servicer lacks the cash"},
    422: {"description": "the report breaks the deal's rules, or a bad loan-level tape (every bad cell listed)"}})
def post_period(body: PeriodIn, entry: PoolEntryDep, state: StateDep, _: Operator) -> Any:
    """Post the next period's report: the reference model checks it first, the servicer pays the
    collections in and the waterfall runs on chain. With `loan_tape` the period commits to that
    tape's root, which must cover every loan of the pool. Returns the period's figures (the names
    of WATERFALL.md) and whether the chain's equal the model's."""
    report = PeriodReport(body.interest, body.principal, body.recoveries, body.defaults)
    tape = None
    if body.loan_tape is not None:
        tape = service.TapeSource.upload("loan_tape", body.loan_tape.encode("utf-8", "surrogatepass"))
    with state.chain_lock:
        done = service.report_period(state.ctx, report=report, loan_tape=tape, pool=entry.files.record.name)
    return PeriodPosted(pool=done.pool, **done.result.as_dict(), matches_model=done.matches_model)


# -- pools ---------------------------------------------------------------------------------------

class PoolCreated(BaseModel):
    """The new pool (its folder's slug) and what minting it did (`chainabs pool create`'s report)."""

    slug: str
    pool: str = Field(description="the LoanPool contract's address")
    name: str
    root: str = Field(description="Merkle root of the committed loans")
    loans: int = Field(description="loans on the tape")
    eligible: int = Field(description="loans taken into the pool")
    ineligible: dict[str, int] = Field(description="loans left out, by reason")
    outstanding_units: int
    minted_now: int
    batches: int
    gas_used: int
    seconds: dict[str, float]
    tape_sha256: str


def _deal_file(raw: bytes, name: str) -> DealFile:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"deal file {name!r} is not UTF-8 text") from None
    return parse_deal_file(text, name=name)


@router.post("/pools", response_model=PoolCreated,
             responses={**AUTH, 409: {"description": "a pool of that name already exists"},
                        422: {"description": "a bad tape (every bad cell listed) or deal file"}})
def create(state: StateDep, _: Operator,
           tape: Annotated[UploadFile, File(description="the loan tape, CSV or JSON Lines (TAPE.md)")],
           deal: Annotated[UploadFile, File(description="the deal file (TOML): the pool's name, currency, "
                                                        "decimals and eligibility")]) -> PoolCreated:
    """Tokenise the tape's eligible loans into a new pool named by the deal file, as `chainabs
    pool create` does; a pool whose minting was interrupted is finished when the same tape is
    sent again. The tape is not kept: only its committed rows (no borrower references)."""
    dealfile = _deal_file(deal.file.read(), deal.filename or "deal file")
    upload = service.TapeSource.upload(tape.filename or "", tape.file.read())
    with state.chain_lock:
        done = service.create_pool(state.ctx, tape=upload, dealfile=dealfile, new_only=True)
    return PoolCreated(slug=done.slug, **dataclasses.asdict(done.report), tape_sha256=done.tape_sha256)


# -- the index -----------------------------------------------------------------------------------

class Synced(BaseModel):
    """What one indexer sync read."""

    events: int = Field(description="new events stored")
    blocks: int = Field(description="blocks covered")
    seconds: float
    events_per_second: float
    pages: int = Field(description="eth_getLogs requests")
    reorgs: int
    rolled_back_to: list[int] = Field(description="the blocks a reorganisation rolled the index back to")
    indexed_head: int | None
    chain_head: int | None
    range: int = Field(description="the eth_getLogs block range at the end")


@router.post("/index", response_model=Synced, responses=AUTH)
def index_now(state: StateDep, _: Operator) -> Synced:
    """Index every confirmed block not yet indexed, now; returns what was read. No request body."""
    return Synced(**state.indexer.sync().as_dict())
