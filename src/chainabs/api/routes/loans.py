"""GET /pools/{pool}/loans[/{loan_id}[/proof]]: loan-level data and inclusion proofs.

Loans are served as committed: the borrower appears only as its salted hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from chainabs import figures, merkle
from chainabs.api.deps import AppState, PageDep, PoolEntry, PoolEntryDep, StateDep, shown
from chainabs.datadir import CommittedLoan
from chainabs.errors import ChainabsError, Conflict, NotFound
from chainabs.pool import LoanProof, PoolFiles
from chainabs.tape import PRODUCTS, REPAYMENT_TYPES, STATUSES, format_day

router = APIRouter(tags=["loans"])

LoanId = Annotated[str, Path(description="the loan id of the tape")]
AtPeriod = Annotated[int | None, Query(ge=1, le=100_000, description="show status and outstanding balance as of "
                                       "this period's loan-level tape (default: as committed at issuance)")]


class Loan(BaseModel):
    index: int = Field(description="position in the pool's committed rows")
    token_id: str | None = Field(description="the loan token's id (hex): keccak256(abi.encodePacked(pool address, "
                                 "loan_id)); null while the pool is not deployed")
    loan_id: str
    borrower_hash: str
    product: int
    product_name: str
    currency: str
    principal_units: int
    outstanding_units: int
    rate_bps: int
    origination_day: int
    origination_date: str
    maturity_day: int
    maturity_date: str
    term_months: int
    repayment_type: int
    repayment_type_name: str
    status: int
    status_name: str
    funded_share_bps: int
    credit_score: int
    region: str


class LoanPage(BaseModel):
    pool: str
    total: int
    limit: int
    offset: int
    items: list[Loan]


class Proof(BaseModel):
    loan_id: str
    index: int
    values: list[Any] = Field(description="the 15 committed values in TAPE.md order")
    loan_hash: str
    leaf: str
    proof: list[str]
    root: str
    token_id: str
    verified_on_chain: bool = Field(description="what the pool contract's verifyLoan(loan_hash, proof) answers "
                                    "(it hashes the leaf itself): computed against the root the pool committed "
                                    "on chain (its TapeCommitted event, indexed)")


def loan_view(row: CommittedLoan, index: int, pool: str | None) -> Loan:
    token_id = hex(merkle.token_id(pool, row.loan_id)) if pool else None
    return Loan(index=index, token_id=token_id, **row._asdict(),
                product_name=PRODUCTS[row.product], origination_date=format_day(row.origination_day),
                maturity_date=format_day(row.maturity_day), repayment_type_name=REPAYMENT_TYPES[row.repayment_type],
                status_name=STATUSES[row.status])


def _as_of(entry: PoolEntry, period: int | None) -> tuple[list[int], list[int]] | None:
    """(statuses, outstanding) of a period's loan-level tape, or None for the committed rows."""
    if period is None:
        return None
    key = ("period-tape", period)
    if key not in entry.memo:
        tape = entry.files.dir.read_period(period)
        if tape is None:
            raise NotFound(f"pool {entry.files.record.name!r} has no loan-level tape for period {period}")
        if len(entry.memo) > 64:
            entry.memo.clear()
        entry.memo[key] = ([int(x) for x in tape.statuses], [int(x) for x in tape.outstanding])
    return entry.memo[key]


def _view(entry: PoolEntry, index: int, tape: tuple[list[int], list[int]] | None) -> Loan:
    row = entry.files.rows[index]
    if tape is not None:
        row = row.in_period(status=tape[0][index], outstanding_units=tape[1][index])
    return loan_view(row, index, entry.files.record.address)


def _index(files: PoolFiles, loan_id: str) -> int:
    try:
        return files.index_of(loan_id)
    except ChainabsError:
        raise NotFound(f"loan {shown(loan_id)} is not in pool {files.record.name!r}") from None


@router.get("/pools/{pool}/loans", response_model=LoanPage)
async def list_loans(state: StateDep, entry: PoolEntryDep, page: PageDep, period: AtPeriod = None) -> Response:
    """The pool's loans in committed order (as of a period's tape with `?period=n`)."""
    tape = _as_of(entry, period)
    total = len(entry.files.rows)
    indices = range(page.offset, min(total, page.offset + page.limit))
    return state.responses.answer(state.store, ("loans", *_key(entry), page, period), lambda: LoanPage(
        pool=entry.files.record.name, total=total, limit=page.limit, offset=page.offset,
        items=[_view(entry, i, tape) for i in indices]))


def _key(entry: PoolEntry) -> tuple[Any, ...]:
    return entry.files.folder.name, entry.stamp


@router.get("/pools/{pool}/loans/{loan_id}", response_model=Loan, responses={404: {"description": "no such loan"}})
async def get_loan(state: StateDep, entry: PoolEntryDep, loan_id: LoanId, period: AtPeriod = None) -> Response:
    """One loan's committed terms (status and balance as of `?period=n` if given)."""
    index = _index(entry.files, loan_id)
    tape = _as_of(entry, period)
    return state.responses.answer(state.store, ("loan", *_key(entry), index, period),
                                  lambda: _view(entry, index, tape))


@router.get("/pools/{pool}/loans/{loan_id}/proof", response_model=Proof,
            responses={404: {"description": "no such loan"}})
async def get_proof(state: StateDep, entry: PoolEntryDep, loan_id: LoanId) -> Response:
    """The loan's commitment and Merkle proof, and whether the pool contract accepts it."""
    index = _index(entry.files, loan_id)
    return state.responses.answer(state.store, ("proof", *_key(entry), index), lambda: _proof(state, entry, loan_id))


def _proof(state: AppState, entry: PoolEntry, loan_id: str) -> Proof:
    proof = entry.files.proof(loan_id)
    proof.verified_on_chain = verifies_on_chain(state, entry, proof)
    return Proof(**proof.as_dict())


def verifies_on_chain(state: AppState, entry: PoolEntry, proof: LoanProof) -> bool:
    """What the pool contract's verifyLoan(loan hash, proof) answers: OpenZeppelin's
    MerkleProof over keccak256(loan hash) against the root the pool committed to. verifyLoan is
    a pure function of that root, which is set once (TapeCommitted, indexed), so it is computed
    here rather than asked of the chain on every request."""
    address = entry.files.record.address
    if not address:
        raise Conflict(f"pool {entry.files.record.name!r} is not deployed yet")
    root = figures.pool_chain_state(state.store, address, entry.memo).root
    if root is None:
        return False  # loanRoot() is zero: no proof verifies
    leaf = merkle.leaf_from_loan_hash(bytes.fromhex(proof.loan_hash[2:]))
    return merkle.verify(leaf, [bytes.fromhex(p[2:]) for p in proof.proof], bytes.fromhex(root[2:]))
