"""Operator endpoints that write to the chain (bearer API key): investors, period reports, pools.

Each request is checked in full before anything is sent, so a refused request (4xx) changes
nothing: addresses and amounts are validated, a period report goes through the reference model
(`operations.post_period`) and the servicer's cash is counted first, a tape and a deal file are
parsed before a pool is deployed. A 200 means every transaction of the request is mined (and,
on the embedded chain, fsynced to its journal).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, HTTPException, UploadFile
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chainabs import deal as deals
from chainabs.api.auth import Operator
from chainabs.api.deps import AppState, BadInput, PoolEntryDep, StateDep, checksum, parse_address
from chainabs.dealfile import DealFile, parse_deal_file
from chainabs.errors import ChainabsError, WaterfallError
from chainabs.operations import FAR_FUTURE, open_deal
from chainabs.operations import post_period as post_period_report
from chainabs.datadir import DataDir
from chainabs.pool import create_pool
from chainabs.waterfall import PeriodReport

router = APIRouter(prefix="/operator", tags=["operator"])

AUTH = {401: {"description": "no API key"}, 403: {"description": "wrong API key"}}
MAX_INVESTORS = deals.DEFAULT_BATCH  # one registry transaction: a request is all or nothing
MAX_AMOUNT = 2**255
_ZERO = "0x" + "0" * 40


# -- investors -----------------------------------------------------------------------------------

class InvestorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["add", "freeze", "unfreeze"] = Field(description="add (or update) investors, freeze or unfreeze")
    addresses: list[str] = Field(min_length=1, max_length=MAX_INVESTORS)
    pool: str | None = Field(None, description="the deal's pool, by name (slug) or address; default: the only pool")
    eligible_until: date | None = Field(None, description="add only: eligible until this day (default: no end)")
    jurisdiction: int = Field(840, ge=1, le=999, description="add only: ISO 3166-1 numeric country code")


class Tx(BaseModel):
    tx_hash: str
    block_number: int


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


def _deal_of(state: AppState, pool: str | None) -> tuple[deals.DealHandle, str]:
    name = state.pools.entry(pool).files.record.name if pool is not None else None
    handle, files = open_deal(state.ctx, name)
    return handle, files.folder.name


def _txs(sent: list[Any]) -> list[Tx]:
    return [Tx(tx_hash=s.tx_hash, block_number=s.block_number) for s in sent]


@router.post("/investors", response_model=InvestorsOut, responses=AUTH)
def investors(body: InvestorsIn, state: StateDep, _: Operator) -> InvestorsOut:
    """Add investors to a deal's registry (eligible until a day, in a jurisdiction), or freeze or
    unfreeze them. Up to 400 addresses: one transaction."""
    addresses = _addresses(body.addresses)
    until: int | None = None
    if body.action == "add":
        until = FAR_FUTURE if body.eligible_until is None else int(
            datetime.combine(body.eligible_until, datetime.min.time(), timezone.utc).timestamp())
        if not 0 < until < 2**40:
            raise BadInput("eligible_until is out of range")
    elif body.eligible_until is not None or "jurisdiction" in body.model_fields_set:
        raise BadInput(f"eligible_until and jurisdiction go with action 'add', not {body.action!r}")
    with state.chain_lock:
        handle, pool = _deal_of(state, body.pool)
        if until is not None:
            now = int(state.ctx.chain.w3.eth.get_block("latest")["timestamp"])
            if until <= now:
                raise BadInput(f"eligible_until {body.eligible_until} is not after the chain's current time")
            sent = deals.add_investors(handle, investors=addresses, eligible_until=until,
                                       jurisdiction=body.jurisdiction)
        else:
            sent = [deals.freeze(handle, investors=addresses, frozen=body.action == "freeze")]
    return InvestorsOut(pool=pool, action=body.action, addresses=addresses, eligible_until=until,
                        transactions=_txs(sent))


# -- period reports ------------------------------------------------------------------------------

class PeriodIn(BaseModel):
    """A servicer's period report, in base units of the settlement currency."""

    model_config = ConfigDict(extra="forbid")

    interest: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="interest collected")
    principal: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="principal collected")
    recoveries: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="recoveries on defaulted loans")
    defaults: StrictInt = Field(ge=0, lt=MAX_AMOUNT, description="principal of loans newly defaulted")


@router.post("/pools/{pool}/periods", responses={
    **AUTH, 409: {"description": "the offering is not closed, or the servicer lacks the cash"},
    422: {"description": "the report breaks the deal's rules"}})
def post_period(body: PeriodIn, entry: PoolEntryDep, state: StateDep, _: Operator) -> dict[str, Any]:
    """Post the next period's report: the reference model checks it first, the servicer pays the
    collections in and the waterfall runs on chain. Returns the period's figures (the names of
    WATERFALL.md) and whether the chain's equal the model's."""
    report = PeriodReport(body.interest, body.principal, body.recoveries, body.defaults)
    collections = report.interest + report.principal + report.recoveries
    ctx = state.ctx
    with state.chain_lock:
        handle, files = open_deal(ctx, entry.files.record.name)
        if deals.phase(handle) != "closed":
            raise HTTPException(409, "the deal's offering is not closed yet: periods start after closing")
        servicer = handle.roles.servicer
        cash = int(ctx.chain.call(handle.settlement.functions.balanceOf(servicer)))
        if cash < collections:
            raise HTTPException(409, f"the servicer {servicer} holds {cash} settlement units; "
                                     f"the report's collections are {collections}")
        try:
            done = post_period_report(ctx, handle, files, report, loan_root=bytes(32),
                                      loan_count=len(files.rows))
        except WaterfallError as exc:
            raise BadInput(f"report refused by the deal's rules: {exc}") from None
    return {"pool": files.folder.name, **done.result.as_dict(), "matches_model": done.matches_model}


# -- pools ---------------------------------------------------------------------------------------

def _deal_file(raw: bytes, name: str) -> DealFile:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"deal file {name!r} is not UTF-8 text") from None
    return parse_deal_file(text, name=name)


@router.post("/pools", responses={**AUTH, 409: {"description": "a pool of that name already exists"},
                                  422: {"description": "a bad tape (every bad cell listed) or deal file"}})
def create(state: StateDep, _: Operator,
           tape: Annotated[UploadFile, File(description="the loan tape, CSV or JSON Lines (TAPE.md)")],
           deal: Annotated[UploadFile, File(description="the deal file (TOML): the pool's name, currency, "
                                                        "decimals and eligibility")]) -> dict[str, Any]:
    """Tokenise the tape's eligible loans into a new pool named by the deal file, as `chainabs
    pool create` does; a pool whose minting was interrupted is finished when the same tape is
    sent again. The tape is not kept: only its committed rows (no borrower references)."""
    dealfile = _deal_file(deal.file.read(), deal.filename or "deal file")
    name = dealfile.pool.name
    ctx = state.ctx
    pool = DataDir(ctx.data_dir).pool(name)
    folder = pool.folder
    raw = tape.file.read()
    suffix = Path(tape.filename or "").suffix.lower()
    with state.chain_lock:
        existed = folder.exists()
        record = pool.read_record() if existed else None
        if record is not None and record.status == "filled":
            raise HTTPException(409, f"pool {name!r} already exists")
        with tempfile.TemporaryDirectory(prefix="chainabs-upload-") as tmp:
            path = Path(tmp) / f"tape{suffix if suffix in ('.csv', '.jsonl', '.ndjson') else ''}"
            path.write_bytes(raw)
            try:
                report = create_pool(ctx, tape_path=path, name=name, currency=dealfile.pool.currency,
                                     decimals=dealfile.pool.decimals, eligibility=dealfile.eligibility())
            except ChainabsError:
                if not existed and folder.exists() and not any(folder.iterdir()):
                    folder.rmdir()  # refused before anything was written: leave no trace
                raise
    return {"slug": folder.name, **asdict(report), "tape_sha256": hashlib.sha256(raw).hexdigest()}
