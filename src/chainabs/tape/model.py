"""The loan tape's vocabulary (TAPE.md): columns, codes, limits, the validated Loan, a Tape,
pool eligibility criteria and the day arithmetic every reader shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

PRODUCTS = ("credit", "cash", "installment")
REPAYMENT_TYPES = ("amortizing", "bullet", "interest_only")
STATUSES = ("current", "dpd_1_30", "dpd_31_60", "dpd_61_90", "dpd_90_plus", "defaulted", "repaid")

COLUMNS = (
    "loan_id", "borrower_ref", "product", "currency", "principal", "outstanding_principal",
    "annual_rate", "origination_date", "maturity_date", "term_months", "repayment_type", "status",
    "funded_share", "credit_score", "region",
)
REQUIRED_COLUMNS = COLUMNS[:12]
OPTIONAL_DEFAULTS = {"funded_share": 10_000, "credit_score": 0, "region": ""}

BPS = 10_000
MAX_PRINCIPAL_CENTS = 1_000_000_000      # 10000000.00
MAX_RATE_BPS = 3600                      # 0.36
MAX_TERM_MONTHS = 120
MAX_CELL_CHARS = 4096
MAX_DECIMALS = 36
MAX_TAPE_BYTES = 1 << 30

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_LOAN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}").fullmatch
_SHOWN_CHARS = 80
_WARN_NAMES = 10


@dataclass(frozen=True, slots=True)
class Loan:
    """One validated loan, amounts in base units with the pool's share applied."""

    line: int                 # line in the file (header = 1); for JSONL the line of the object
    loan_id: str
    borrower_ref: str
    product: int              # index into PRODUCTS
    currency: str
    principal_units: int
    outstanding_units: int
    rate_bps: int
    origination_day: int      # days since 1970-01-01
    maturity_day: int
    term_months: int
    repayment_type: int       # index into REPAYMENT_TYPES
    status: int               # index into STATUSES
    funded_share_bps: int     # 10000 when absent
    credit_score: int         # 0 when absent
    region: str               # "" when absent


_SET = tuple(getattr(Loan, name).__set__ for name in Loan.__slots__)


def _new_loan(line: int, loan_id: str, borrower_ref: str, product: int, currency: str,
              principal_units: int, outstanding_units: int, rate_bps: int, origination_day: int,
              maturity_day: int, term_months: int, repayment_type: int, status: int,
              funded_share_bps: int, credit_score: int, region: str) -> Loan:
    """Loan(...) for the parse loop, about three times faster: a frozen dataclass's __init__
    goes through object.__setattr__ per field, this sets the slots through their descriptors."""
    loan = object.__new__(Loan)
    s = _SET
    s[0](loan, line), s[1](loan, loan_id), s[2](loan, borrower_ref), s[3](loan, product)
    s[4](loan, currency), s[5](loan, principal_units), s[6](loan, outstanding_units)
    s[7](loan, rate_bps), s[8](loan, origination_day), s[9](loan, maturity_day)
    s[10](loan, term_months), s[11](loan, repayment_type), s[12](loan, status)
    s[13](loan, funded_share_bps), s[14](loan, credit_score), s[15](loan, region)
    return loan


@dataclass(frozen=True)
class Tape:
    loans: list[Loan]
    currency: str
    warnings: list[str]
    source: str


@dataclass(frozen=True)
class Eligibility:
    """A pool's eligibility criteria; the defaults are TAPE.md's. None switches a check off."""

    statuses: frozenset[str] = frozenset({"current", "dpd_1_30"})
    min_outstanding_units: int = 1
    cutoff_day: int | None = None          # maturity must be after this day
    max_rate_bps: int = MAX_RATE_BPS
    max_term_months: int | None = None
    min_credit_score: int | None = None    # a loan without a score (0) fails it
    products: frozenset[str] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.statuses) - set(STATUSES)
        if unknown:
            raise ValueError(f"unknown status in eligibility criteria: {sorted(unknown)}")
        if self.products is not None and set(self.products) - set(PRODUCTS):
            raise ValueError(f"unknown product in eligibility criteria: "
                             f"{sorted(set(self.products) - set(PRODUCTS))}")

def parse_date(text: str) -> int:
    """`YYYY-MM-DD` to days since 1970-01-01; ValueError with the reason otherwise."""
    if (len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii()
            or not (text[:4].isdigit() and text[5:7].isdigit() and text[8:].isdigit())):
        raise ValueError("not a date in YYYY-MM-DD form")
    try:
        ordinal = date(int(text[:4]), int(text[5:7]), int(text[8:])).toordinal()
    except ValueError:
        raise ValueError("no such calendar date") from None
    if ordinal < _EPOCH_ORDINAL:
        raise ValueError("before 1970-01-01")
    return ordinal - _EPOCH_ORDINAL


def format_day(day: int) -> str:
    """Days since 1970-01-01 to `YYYY-MM-DD`."""
    return date.fromordinal(day + _EPOCH_ORDINAL).isoformat()


def remaining_months(cutoff_day: int, maturity_day: int) -> int:
    """Calendar months from the cut-off to maturity, a part month counting as a whole one;
    0 when the loan matures on or before the cut-off."""
    if maturity_day <= cutoff_day:
        return 0
    c = date.fromordinal(cutoff_day + _EPOCH_ORDINAL)
    m = date.fromordinal(maturity_day + _EPOCH_ORDINAL)
    months = (m.year - c.year) * 12 + (m.month - c.month)
    return months + 1 if m.day > c.day else months
