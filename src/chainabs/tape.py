"""Loan tapes (shared/TAPE.md): read CSV or JSON Lines, validate every cell, apply a pool's
eligibility criteria and summarise the result.

A malformed tape is rejected whole: `read_tape` and `parse_tape` raise `TapeError` carrying every
bad cell found (the first `max_errors` kept, all of them counted). A cell error names the line in
the file (CSV header = line 1; a CSV record spanning several lines is reported at its first line;
JSON Lines objects at their own line), the column, the stripped value (shortened when long) and a
reason. Errors about a whole line or the whole file (undecodable bytes, a row with the wrong number
of cells, a line that is not a JSON object, an empty tape) have column "".

Amounts are parsed from their text, never through float: "1234.56" with a 6-decimal token is
1234560000 base units, and a jointly funded loan keeps floor(units * funded_share_bps / 10000).

Choices where TAPE.md is silent:
- trailing zeros do not count as decimal places: "10.500" is a valid principal, "0.18250" is
  1825 bps; numbers are plain decimals (no sign, exponent, thousands separator or bare ".5");
- dates must be real calendar dates on or after 1970-01-01 (days are unsigned on chain);
- credit_score "0" means none, like an empty cell;
- blank lines are skipped; CSV header names are stripped and matched case-sensitively;
- amounts must be representable in the token: with fewer than 2 decimals, cents that do not
  fit are an error;
- a tape is at most `max_bytes` long (default MAX_TAPE_BYTES, 1 GiB: some six million loans);
  a longer file is refused before it is read;
- a JSON Lines string with a lone surrogate escape ("\ud800") is not text and is an error.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any

from chainabs.errors import CellError, TapeError

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


# --- reading -------------------------------------------------------------------------------


def read_tape(path: str | os.PathLike[str], *, decimals: int = 6, max_errors: int = 1000,
              max_bytes: int = MAX_TAPE_BYTES) -> Tape:
    """Read and validate a tape file; the format comes from the suffix (.csv, .jsonl, .ndjson)
    or, failing that, from the content. OSError propagates; a bad tape raises TapeError, a file
    over `max_bytes` too, before it is read."""
    p = Path(path)
    suffix = p.suffix.lower()
    fmt = "csv" if suffix == ".csv" else "jsonl" if suffix in (".jsonl", ".ndjson") else None
    with p.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise _too_large(max_bytes, size)
        data = fh.read(max_bytes + 1)  # a file still growing stops just past the limit
    return parse_tape(data, name=p.name, fmt=fmt, decimals=decimals, max_errors=max_errors,
                      max_bytes=max_bytes)


def parse_tape(data: bytes, *, name: str = "<tape>", fmt: str | None = None, decimals: int = 6,
               max_errors: int = 1000, max_bytes: int = MAX_TAPE_BYTES) -> Tape:
    """Validate a tape held in memory. `fmt` is "csv", "jsonl" or None to sniff (JSON Lines when
    the first byte after a BOM and white space is '{')."""
    if fmt not in (None, "csv", "jsonl"):
        raise ValueError(f"unknown tape format {fmt!r} (csv or jsonl)")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be between 0 and {MAX_DECIMALS}")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if fmt is None:
        fmt = "jsonl" if data.lstrip()[:1] == b"{" else "csv"
    check = _Checker(decimals, max(1, max_errors), missing_is_error=fmt == "jsonl")
    text = _decode(data, check)
    if text is not None:
        (_read_jsonl if fmt == "jsonl" else _read_csv)(text, check)
        if not check.loans and not check.total:
            check.error(1, "", "", "the tape has no loans")
    if check.total:
        raise TapeError(check.errors, check.total)
    return Tape(loans=check.loans, currency=check.currency or "", warnings=check.warnings(),
                source=name)


def _too_large(max_bytes: int, size: int | None = None) -> TapeError:
    size_shown = f" ({size} bytes)" if size is not None else ""
    return TapeError([CellError(1, "", "", f"the tape is larger than the limit of {max_bytes} bytes"
                                           f"{size_shown}; split it into several tapes")])


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


def _decode(data: bytes, check: _Checker) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        check.error(1, "", "", "the file is UTF-16; save it as UTF-8")
        return None
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            snippet = raw[max(0, exc.start - 20):exc.start + 10].decode("utf-8", "backslashreplace")
            check.error(number, "", snippet,
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start + 1})")
    return None


def _read_csv(text: str, check: _Checker) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    header: list[str] | None = None
    header_line = 1
    prev = 0
    while header is None:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            check.error(prev + 1, "", "", f"malformed CSV: {exc}")
            return
        header_line, prev = prev + 1, reader.line_num
        if row and (len(row) > 1 or row[0].strip()):
            header = [cell.strip() for cell in row]
    width = len(header)
    getter = _header_getter(header, header_line, check)
    stalled = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            check.error(prev + 1, "", "", f"malformed CSV: {exc}")
            stalled = stalled + 1 if reader.line_num == prev else 0
            if stalled > 1:
                break
            prev = reader.line_num
            continue
        line, prev = prev + 1, reader.line_num
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            check.error(line, "", ",".join(row[:5]),
                        f"row has {len(row)} cells, the header has {width}")
            continue
        row.append(None)       # stands for an absent optional column
        row.append(_SKIP)      # stands for an absent required column (reported on the header)
        check.row(line, getter(row))


def _header_getter(header: list[str], line: int, check: _Checker) -> Any:
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            check.warn(f"column {i + 1} has no name; ignored")
            continue
        if name in positions:
            check.error(line, name, name, f"duplicate column name (also column {positions[name] + 1})")
            continue
        positions[name] = i
        if name not in _COLUMN_SET:
            check.unknown(name)
    lowered = {name.lower(): name for name in positions}
    width = len(header)
    indices = []
    for column in COLUMNS:
        if column in positions:
            indices.append(positions[column])
        elif column in OPTIONAL_DEFAULTS:
            indices.append(width)
        else:
            hint = lowered.get(column)
            reason = "required column missing" + (f" (found {hint!r}; names are case-sensitive)"
                                                  if hint else "")
            check.error(line, column, "", reason)
            indices.append(width + 1)
    return itemgetter(*indices)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Numbers stay as their literal text (no float rounding); `_JSON_PAIRS` keeps duplicate keys.
_JSON = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant)
_JSON_PAIRS = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant,
                               object_pairs_hook=list)


_MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]").search
_LONE_SURROGATE = re.compile("[\ud800-\udfff]").search


def _json_depth(s: str) -> int:
    """Deepest bracket nesting outside strings. The C decoder recurses on the C stack, and with
    the recursion limit some libraries set (py_ecc: 100000) deep nesting would crash it."""
    depth = deepest = 0
    in_string = escaped = False
    for c in s:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "[" or c == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif c == "]" or c == "}":
            depth -= 1
    return deepest


def _json_reason(s: str) -> str:
    try:
        _JSON.decode(s)
    except RecursionError:
        return "nested too deeply"
    except ValueError as exc:
        return str(exc)
    return "not a single JSON value"


def _read_jsonl(text: str, check: _Checker) -> None:
    scan = _JSON.scan_once     # the C scanner behind decode(), without its per-call overhead
    error = check.error
    known = _COLUMN_SET
    for number, raw in enumerate(text.split("\n"), 1):
        s = raw.strip()
        if not s:
            continue
        if s.count("[") + s.count("{") > _MAX_JSON_DEPTH and _json_depth(s) > _MAX_JSON_DEPTH:
            error(number, "", s, "not valid JSON: nested too deeply")
            continue
        try:
            obj, end = scan(s, 0)
            if end != len(s):
                raise ValueError
        except (ValueError, StopIteration, RecursionError):
            error(number, "", s, f"not valid JSON: {_json_reason(s)}")
            continue
        if type(obj) is not dict:
            error(number, "", s, "not a JSON object")
            continue
        if "\\u" in s and _SURROGATE_ESCAPE(s):  # UTF-8 text has none: only an escape can make one
            bad = [(key, text) for key, value in obj.items() for text in (key, value)
                   if type(text) is str and _LONE_SURROGATE(text)]
            for key, text in bad:
                error(number, key if key in known else "", text.encode("utf-8", "backslashreplace").decode(),
                      "not valid text: a lone UTF-16 surrogate escape")
            if bad:
                continue
        if s.count(":") > len(obj):   # every key has a colon: maybe a key appears twice
            seen: set[str] = set()
            for key, _ in _JSON_PAIRS.decode(s):
                if key in seen:
                    error(number, key, "", "duplicate key")
                seen.add(key)
        if not known.issuperset(obj):
            for key in obj:
                if key not in known:
                    check.unknown(key)
        check.row(number, tuple(map(obj.get, COLUMNS)))


# --- cell rules ----------------------------------------------------------------------------

_SKIP = object()                  # a value whose error is already reported
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
            cell = raw[i]
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


# --- eligibility and summary ---------------------------------------------------------------


def apply_eligibility(loans: Sequence[Loan], criteria: Eligibility
                      ) -> tuple[list[Loan], list[tuple[Loan, str]]]:
    """Split loans into (eligible, [(loan, reason)]); each ineligible loan gets its first failing
    reason: "status:<name>", "outstanding_zero" / "outstanding_below_min",
    "matures_before_cutoff" (maturity on or before the cut-off), "rate_above_max",
    "term_above_max", "credit_score_below_min" (no score counts as below), "product:<name>"."""
    statuses = frozenset(STATUSES.index(s) for s in criteria.statuses)
    products = (None if criteria.products is None
                else frozenset(PRODUCTS.index(p) for p in criteria.products))
    min_out = criteria.min_outstanding_units
    cutoff = criteria.cutoff_day
    max_rate = criteria.max_rate_bps
    max_term = criteria.max_term_months
    min_score = criteria.min_credit_score
    eligible: list[Loan] = []
    rejected: list[tuple[Loan, str]] = []
    for loan in loans:
        if loan.status not in statuses:
            reason = "status:" + STATUSES[loan.status]
        elif loan.outstanding_units < min_out:
            reason = "outstanding_zero" if loan.outstanding_units == 0 else "outstanding_below_min"
        elif cutoff is not None and loan.maturity_day <= cutoff:
            reason = "matures_before_cutoff"
        elif loan.rate_bps > max_rate:
            reason = "rate_above_max"
        elif max_term is not None and loan.term_months > max_term:
            reason = "term_above_max"
        elif min_score is not None and loan.credit_score < min_score:
            reason = "credit_score_below_min"
        elif products is not None and loan.product not in products:
            reason = "product:" + PRODUCTS[loan.product]
        else:
            eligible.append(loan)
            continue
        rejected.append((loan, reason))
    return eligible, rejected


def remaining_months(cutoff_day: int, maturity_day: int) -> int:
    """Calendar months from the cut-off to maturity, a part month counting as a whole one;
    0 when the loan matures on or before the cut-off."""
    if maturity_day <= cutoff_day:
        return 0
    c = date.fromordinal(cutoff_day + _EPOCH_ORDINAL)
    m = date.fromordinal(maturity_day + _EPOCH_ORDINAL)
    months = (m.year - c.year) * 12 + (m.month - c.month)
    return months + 1 if m.day > c.day else months


def summarize(tape: Tape, criteria: Eligibility) -> dict[str, Any]:
    """The tape's summary after eligibility (what `chainabs tape check --json` prints).

    `principal_units`, `outstanding_units`, `wac_bps` and `wam_months` are over the eligible
    loans (pool share applied). `wac_bps` is the outstanding-weighted mean rate, floored to a
    whole bps (0 when nothing is outstanding). `wam_months` is the outstanding-weighted mean
    remaining term, rounded to 2 decimals: remaining term is `remaining_months(cutoff, maturity)`
    when the criteria have a cut-off, else `term_months`. In `by_product` and `by_status`,
    `loans` counts every loan of the tape, `eligible` and `outstanding_units` the eligible ones.
    """
    eligible, rejected = apply_eligibility(tape.loans, criteria)
    ineligible: dict[str, int] = {}
    for _, reason in rejected:
        ineligible[reason] = ineligible.get(reason, 0) + 1
    by_product = {name: {"loans": 0, "eligible": 0, "outstanding_units": 0} for name in PRODUCTS}
    by_status = {name: {"loans": 0, "eligible": 0, "outstanding_units": 0} for name in STATUSES}
    for loan in tape.loans:
        by_product[PRODUCTS[loan.product]]["loans"] += 1
        by_status[STATUSES[loan.status]]["loans"] += 1
    cutoff = criteria.cutoff_day
    months_cache: dict[int, int] = {}
    principal = outstanding = rate_weight = term_weight = 0
    for loan in eligible:
        out = loan.outstanding_units
        principal += loan.principal_units
        outstanding += out
        rate_weight += out * loan.rate_bps
        if cutoff is None:
            months = loan.term_months
        else:
            months = months_cache.get(loan.maturity_day)
            if months is None:
                months = months_cache[loan.maturity_day] = remaining_months(cutoff, loan.maturity_day)
        term_weight += out * months
        for bucket in (by_product[PRODUCTS[loan.product]], by_status[STATUSES[loan.status]]):
            bucket["eligible"] += 1
            bucket["outstanding_units"] += out
    return {
        "source": tape.source,
        "currency": tape.currency,
        "cutoff": None if cutoff is None else format_day(cutoff),
        "loans": len(tape.loans),
        "eligible": len(eligible),
        "ineligible": dict(sorted(ineligible.items())),
        "principal_units": principal,
        "outstanding_units": outstanding,
        "wac_bps": rate_weight // outstanding if outstanding else 0,
        "wam_months": round(term_weight / outstanding, 2) if outstanding else 0.0,
        "by_product": by_product,
        "by_status": by_status,
        "warnings": list(tape.warnings),
    }
