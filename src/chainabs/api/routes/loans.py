"""GET /pools/{pool}/loans[/{loan_id}[/proof]]: loan-level data and inclusion proofs.

Loans are served as committed: the borrower appears only as its salted hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from chainabs import merkle
from chainabs.api.deps import NotFound, PageDep, PoolEntryDep, StateDep, shown
from chainabs.errors import ChainabsError
from chainabs.pool import PoolFiles, verify_proof_on_chain
from chainabs.tape import PRODUCTS, REPAYMENT_TYPES, STATUSES, format_day

router = APIRouter(tags=["loans"])

LoanId = Annotated[str, Path(description="the loan id of the tape")]


class Loan(BaseModel):
    index: int = Field(description="position in the pool's committed rows")
    token_id: str = Field(description="the loan token's id (hex): keccak256(loan_id)")
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
    verified_on_chain: bool = Field(description="the pool contract's verifyLoan(leaf, proof)")


def loan_view(row: list[Any], index: int) -> Loan:
    (loan_id, borrower_hash, product, currency, principal, outstanding, rate, orig, mat,
     term, repayment, status, share, score, region) = row  # fmt: skip
    return Loan(index=index, token_id=hex(merkle.token_id(loan_id)), loan_id=loan_id, borrower_hash=borrower_hash,
                product=product, product_name=PRODUCTS[product], currency=currency, principal_units=principal,
                outstanding_units=outstanding, rate_bps=rate, origination_day=orig, origination_date=format_day(orig),
                maturity_day=mat, maturity_date=format_day(mat), term_months=term, repayment_type=repayment,
                repayment_type_name=REPAYMENT_TYPES[repayment], status=status, status_name=STATUSES[status],
                funded_share_bps=share, credit_score=score, region=region)


def _index(files: PoolFiles, loan_id: str) -> int:
    try:
        return files.index_of(loan_id)
    except ChainabsError:
        raise NotFound(f"loan {shown(loan_id)} is not in pool {files.record.name!r}") from None


@router.get("/pools/{pool}/loans", response_model=LoanPage)
def list_loans(entry: PoolEntryDep, page: PageDep) -> LoanPage:
    """The pool's loans in committed order."""
    rows = entry.files.rows
    chosen = rows[page.offset:page.offset + page.limit]
    return LoanPage(pool=entry.files.record.name, total=len(rows), limit=page.limit, offset=page.offset,
                    items=[loan_view(r, page.offset + i) for i, r in enumerate(chosen)])


@router.get("/pools/{pool}/loans/{loan_id}", response_model=Loan, responses={404: {"description": "no such loan"}})
def get_loan(entry: PoolEntryDep, loan_id: LoanId) -> Loan:
    index = _index(entry.files, loan_id)
    return loan_view(entry.files.rows[index], index)


@router.get("/pools/{pool}/loans/{loan_id}/proof", response_model=Proof,
            responses={404: {"description": "no such loan"}})
def get_proof(state: StateDep, entry: PoolEntryDep, loan_id: LoanId) -> Proof:
    """The loan's commitment and Merkle proof, and whether the pool contract accepts it."""
    files = entry.files
    _index(files, loan_id)
    proof = files.proof(loan_id)
    with state.chain_lock:
        proof.verified_on_chain = verify_proof_on_chain(state.ctx, files, proof)
    return Proof(**proof.as_dict())
