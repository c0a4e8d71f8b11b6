"""The cell rules of TAPE.md and the checker that applies them row by row, collecting every
bad cell (the first `max_errors` kept, all counted) and building the loans."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chainabs.errors import CellError
from chainabs.tape.model import (
    _LOAN_ID,
    _SHOWN_CHARS,
    _WARN_NAMES,
    BPS,
    COLUMNS,
    MAX_CELL_CHARS,
    MAX_PRINCIPAL_CENTS,
    MAX_RATE_BPS,
    MAX_TERM_MONTHS,
    OPTIONAL_DEFAULTS,
    PRODUCTS,
    REPAYMENT_TYPES,
    STATUSES,
    Loan,
    _new_loan,
    parse_date,
)

# --- cell rules ----------------------------------------------------------------------------

_SKIP: Any = object()                  # a value whose error is already reported
_COLUMN_SET = frozenset(COLUMNS)


def _number_reason(text: str) -> str:
    if text[:1] == "-":
        return "must not be negative"
    if "," in text:
        return "not a decimal number (use '.' as the decimal point, no thousands separators)"
    if "e" in text or "E" in text:
        return "not a plain decimal number (no exponent)"
    return "not a decimal number"


def _fixed(text: str, places: int, too_precise: str) -> int:
    """A plain decimal as an integer count of 10**-places, exactly; ValueError otherwise."""
    whole, dot, frac = text.partition(".")
    if whole.isdigit() and text.isascii() and len(text) <= 40:
        if not dot:
            return int(whole) * 10 ** places
        if frac.isdigit():
            n = len(frac)
            if n == places:
                return int(whole + frac)
            if n < places:
                return int(whole + frac) * 10 ** (places - n)
            if not frac[places:].strip("0"):
                return int(whole + frac[:places])
            raise ValueError(too_precise)
    raise ValueError(_number_reason(text) if len(text) <= 40 else "number too long")


def _cents(text: str) -> int:
    """`_fixed(text, 2)` with a shortcut for the usual "1234.56"."""
    whole, dot, frac = text.partition(".")
    if len(frac) == 2 and whole.isdigit() and frac.isdigit() and len(whole) <= 12 and text.isascii():
        return int(whole + frac)
    return _fixed(text, 2, "more than 2 decimal places")


def _integer(text: str, low: int, high: int) -> int:
    if text.isdigit() and text.isascii():
        if len(text) <= 9 and low <= int(text) <= high:
            return int(text)
        raise ValueError(f"must be between {low} and {high}")
    if "." in text and text.replace(".", "", 1).isdigit():
        raise ValueError("not a whole number")
    if text[:1] == "-" and text[1:].isdigit():
        raise ValueError(f"must be between {low} and {high}")
    raise ValueError("not an integer")


def _loan_id(text: str) -> str:
    if _LOAN_ID(text):
        return text
    if len(text) > 64:
        raise ValueError("longer than 64 characters")
    raise ValueError("may only contain A-Z a-z 0-9 . _ -")


def _borrower_ref(text: str) -> str:
    if len(text) > 128:
        raise ValueError("longer than 128 characters")
    return text


def _currency(text: str) -> str:
    if len(text) == 3 and text.isascii() and text.isalpha() and text.isupper():
        return text
    raise ValueError("not three upper-case letters (ISO 4217)")


def _principal(text: str) -> int:
    cents = _cents(text)
    if cents <= 0:
        raise ValueError("must be greater than 0")
    if cents > MAX_PRINCIPAL_CENTS:
        raise ValueError("greater than 10000000.00")
    return cents


def _outstanding(text: str) -> int:
    return _cents(text)


def _rate(text: str) -> int:
    bps = _fixed(text, 4, "not a whole number of basis points")
    if bps > MAX_RATE_BPS:
        raise ValueError("greater than 0.36 (give the rate as a fraction: 18.25 % is 0.1825)")
    return bps


def _term(text: str) -> int:
    return _integer(text, 1, MAX_TERM_MONTHS)


def _funded_share(text: str) -> int:
    bps = _fixed(text, 4, "not a whole number of basis points")
    if bps == 0:
        raise ValueError("must be greater than 0")
    if bps > BPS:
        raise ValueError("greater than 1")
    return bps


def _credit_score(text: str) -> int:
    if text == "0":
        return 0
    return _integer(text, 300, 950)


def _region(text: str) -> str:
    if len(text) > 32:
        raise ValueError("longer than 32 characters")
    return text


_PRODUCT_INDEX = {name: i for i, name in enumerate(PRODUCTS)}
_REPAYMENT_INDEX = {name: i for i, name in enumerate(REPAYMENT_TYPES)}
_STATUS_INDEX = {name: i for i, name in enumerate(STATUSES)}


def _enum(names: tuple[str, ...]) -> Any:
    index = {name: i for i, name in enumerate(names)}
    reason = "not one of " + ", ".join(names)

    def parse(text: str) -> int:
        i = index.get(text)
        if i is None:
            raise ValueError(reason)
        return i
    return parse


def _show(value: str) -> str:
    if len(value) <= _SHOWN_CHARS:
        return value
    return f"{value[:_SHOWN_CHARS]}… ({len(value)} characters)"


class _Checker:
    """Validates rows (15 raw values in COLUMNS order), collects errors and builds Loans."""

    def __init__(self, decimals: int, max_errors: int, *, missing_is_error: bool) -> None:
        self.max_errors = max_errors
        self.missing_is_error = missing_is_error
        self.errors: list[CellError] = []
        self.total = 0
        self.loans: list[Loan] = []
        self.currency: str | None = None
        self.currency_line = 0
        self.first_line: dict[str, int] = {}
        self.unknown_columns: dict[str, None] = {}    # insertion-ordered set
        self.other_warnings: list[str] = []
        # cents -> base units: cents * mul // div, exact when cents % div == 0
        self.mul = 10 ** max(0, decimals - 2)
        self.div = 10 ** max(0, 2 - decimals)
        self.decimals = decimals
        self.days: dict[str, int] = {}
        self.parsers = (_loan_id, _borrower_ref, _enum(PRODUCTS), _currency, _principal,
                        _outstanding, _rate, self.day, self.day, _term, _enum(REPAYMENT_TYPES),
                        _enum(STATUSES), _funded_share, _credit_score, _region)
        self.defaults = (None,) * 12 + (OPTIONAL_DEFAULTS["funded_share"],
                                        OPTIONAL_DEFAULTS["credit_score"], OPTIONAL_DEFAULTS["region"])

    def error(self, line: int, column: str, value: str, reason: str) -> None:
        self.total += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(CellError(line, column, _show(value), reason))

    def unknown(self, name: str) -> None:
        self.unknown_columns[name] = None

    def warn(self, message: str) -> None:
        if len(self.other_warnings) < _WARN_NAMES:
            self.other_warnings.append(message)

    def warnings(self) -> list[str]:
        names = list(self.unknown_columns)
        out: list[str] = []
        if len(names) == 1:
            out.append(f"unknown column {_show(names[0])!r} ignored")
        elif names:
            shown = ", ".join(repr(_show(n)) for n in names[:_WARN_NAMES])
            more = f" and {len(names) - _WARN_NAMES} more" if len(names) > _WARN_NAMES else ""
            out.append(f"{len(names)} unknown columns ignored: {shown}{more}")
        return out + self.other_warnings

    def row(self, line: int, raw: Sequence[Any]) -> None:
        try:
            loan = self._fast(line, raw)
        except (AttributeError, KeyError, ValueError):
            loan = None
        if loan is None:
            self._slow(line, raw)
        elif not self.total:
            self.loans.append(loan)

    def day(self, text: str) -> int:
        d = self.days.get(text)
        if d is None:
            d = self.days[text] = parse_date(text)
        return d

    def _fast(self, line: int, raw: Sequence[Any]) -> Loan | None:
        """The common case in straight-line code: the Loan when every rule holds, else None or an
        exception, and `_slow` works out what is wrong. Never more permissive than `_slow`."""
        (loan_id, borrower, product, currency, principal, outstanding, rate, orig, mat, term,
         repayment, status, share, score, region) = raw
        loan_id = loan_id.strip()
        borrower = borrower.strip()
        currency = currency.strip()
        if not (_LOAN_ID(loan_id) and borrower and len(borrower) <= 128
                and currency == self.currency):
            return None
        principal = _cents(principal.strip())
        outstanding = _cents(outstanding.strip())
        rate = _fixed(rate.strip(), 4, "")
        orig = orig.strip()
        mat = mat.strip()
        days = self.days
        orig_day = days.get(orig)
        if orig_day is None:
            orig_day = self.day(orig)
        mat_day = days.get(mat)
        if mat_day is None:
            mat_day = self.day(mat)
        term = term.strip()
        term = int(term) if term.isdigit() and term.isascii() and len(term) <= 3 else 0
        product = _PRODUCT_INDEX[product.strip()]
        repayment = _REPAYMENT_INDEX[repayment.strip()]
        status = _STATUS_INDEX[status.strip()]
        share = share.strip() if share is not None else ""
        share_bps = _fixed(share, 4, "") if share else BPS
        score = score.strip() if score is not None else ""
        credit_score = _credit_score(score) if score else 0
        region = region.strip() if region is not None else ""
        if not (0 < principal <= MAX_PRINCIPAL_CENTS and outstanding <= principal
                and rate <= MAX_RATE_BPS and mat_day > orig_day and 0 < share_bps <= BPS
                and 0 < term <= MAX_TERM_MONTHS
                and len(region) <= 32 and self.first_line.setdefault(loan_id, line) == line):
            return None
        return self._loan(line, loan_id, borrower, product, currency, principal, outstanding,
                          rate, orig_day, mat_day, term, repayment, status, share_bps,
                          credit_score, region)

    def _loan(self, line: int, loan_id: str, borrower: str, product: int, currency: str,
              principal: int, outstanding: int, rate: int, orig: int, mat: int, term: int,
              repayment: int, status: int, share: int, score: int, region: str) -> Loan | None:
        """Amounts arrive in cents; None when they do not fit the token's decimals."""
        div = self.div
        if div != 1 and (principal % div or outstanding % div):
            return None
        principal_units = principal * self.mul // div
        outstanding_units = outstanding * self.mul // div
        if share != BPS:
            principal_units = principal_units * share // BPS
            outstanding_units = outstanding_units * share // BPS
        return _new_loan(line, loan_id, borrower, product, currency, principal_units,
                         outstanding_units, rate, orig, mat, term, repayment, status, share, score,
                         region)

    def _slow(self, line: int, raw: Sequence[Any]) -> None:
        """Check every cell on its own and report each failure; keep the loan if none."""
        values: list[Any] = [None] * 15
        ok = True
        parsers = self.parsers
        for i in range(15):
            cell: Any = raw[i]
            if type(cell) is not str and cell is not None and cell is not _SKIP:
                ok = False
                self.error(line, COLUMNS[i], json.dumps(cell)[:_SHOWN_CHARS],
                           "must be a string or a number")
                continue
            if cell is None or cell is _SKIP:
                if i >= 12:
                    values[i] = self.defaults[i]
                    continue
                ok = False
                if cell is None and self.missing_is_error:
                    self.error(line, COLUMNS[i], "", "required value missing")
                continue
            text = cell.strip()
            if not text:
                if i >= 12:
                    values[i] = self.defaults[i]
                    continue
                ok = False
                self.error(line, COLUMNS[i], "", "required value is empty")
                continue
            try:
                values[i] = parsers[i](text)
            except ValueError as exc:
                ok = False
                reason = str(exc) if len(text) <= MAX_CELL_CHARS else f"longer than {MAX_CELL_CHARS} characters"
                self.error(line, COLUMNS[i], text, reason)
        (loan_id, borrower, product, currency, principal, outstanding, rate, orig, mat, term,
         repayment, status, share, score, region) = values
        if loan_id is not None:
            first = self.first_line.setdefault(loan_id, line)
            if first != line:
                ok = False
                self.error(line, "loan_id", loan_id, f"duplicate loan id (first on line {first})")
        if currency is not None:
            if self.currency is None:
                self.currency, self.currency_line = currency, line
            elif currency != self.currency:
                ok = False
                self.error(line, "currency", currency,
                           f"mixed currencies: the tape is in {self.currency} (line {self.currency_line})")
        if principal is not None and outstanding is not None and outstanding > principal:
            ok = False
            self.error(line, "outstanding_principal", raw[5].strip(),
                       f"greater than principal {raw[4].strip()}")
        if orig is not None and mat is not None and mat <= orig:
            ok = False
            self.error(line, "maturity_date", raw[8].strip(),
                       f"not after origination_date {raw[7].strip()}")
        if not ok:
            return
        loan = self._loan(line, *values)
        if loan is None:
            column = "principal" if principal % self.div else "outstanding_principal"
            self.error(line, column, raw[COLUMNS.index(column)].strip(),
                       f"not representable with a {self.decimals}-decimal token")
        elif not self.total:
            self.loans.append(loan)
