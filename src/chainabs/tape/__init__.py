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

from chainabs.tape.eligibility import apply_eligibility, summarize
from chainabs.tape.model import (
    BPS,
    COLUMNS,
    MAX_CELL_CHARS,
    MAX_DECIMALS,
    MAX_PRINCIPAL_CENTS,
    MAX_RATE_BPS,
    MAX_TAPE_BYTES,
    MAX_TERM_MONTHS,
    OPTIONAL_DEFAULTS,
    PRODUCTS,
    REPAYMENT_TYPES,
    REQUIRED_COLUMNS,
    STATUSES,
    Eligibility,
    Loan,
    Tape,
    format_day,
    parse_date,
    remaining_months,
)
from chainabs.tape.read import parse_tape, read_tape

__all__ = [
    "BPS", "COLUMNS", "MAX_CELL_CHARS", "MAX_DECIMALS", "MAX_PRINCIPAL_CENTS", "MAX_RATE_BPS", "MAX_TAPE_BYTES",
    "MAX_TERM_MONTHS", "OPTIONAL_DEFAULTS", "PRODUCTS", "REPAYMENT_TYPES", "REQUIRED_COLUMNS", "STATUSES",
    "Eligibility", "Loan", "Tape", "apply_eligibility", "format_day", "parse_date", "parse_tape", "read_tape",
    "remaining_months", "summarize",
]
