"""Loan tape parsing, validation, eligibility and `chainabs tape check` (shared/TAPE.md)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainabs import cli
from chainabs import tape as tape_module
from chainabs.errors import CellError, TapeError
from chainabs.tape import (
    COLUMNS,
    PRODUCTS,
    REPAYMENT_TYPES,
    STATUSES,
    Eligibility,
    Loan,
    apply_eligibility,
    parse_date,
    parse_tape,
    read_tape,
    remaining_months,
    summarize,
)
from chainabs.tape import cells as tape_cells
from support import GOOD_ROW
from support import csv_bytes as support_csv_bytes

GOOD = GOOD_ROW


def row(n: int, **cells: str) -> dict[str, str]:
    return {**GOOD, "loan_id": f"L{n}", **cells}


def csv_bytes(rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = COLUMNS) -> bytes:
    return support_csv_bytes(rows, columns)


def jsonl_bytes(rows: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps({k: v for k, v in r.items() if v != ""}) + "\n" for r in rows).encode()


def rejected(data: bytes, **kwargs: object) -> TapeError:
    with pytest.raises(TapeError) as info:
        parse_tape(data, **kwargs)  # type: ignore[arg-type]
    return info.value


def only_error(data: bytes, **kwargs: object) -> CellError:
    exc = rejected(data, **kwargs)
    assert exc.total == len(exc.errors) == 1, exc.errors
    return exc.errors[0]


# --- one test per error class ----------------------------------------------------------------

CELL_ERRORS = [
    # (cells of the third loan, column, reason substring)
    ({"loan_id": "L 3"}, "loan_id", "may only contain"),
    ({"loan_id": "L" * 65}, "loan_id", "longer than 64"),
    ({"loan_id": ""}, "loan_id", "required value is empty"),
    ({"borrower_ref": "   "}, "borrower_ref", "required value is empty"),
    ({"borrower_ref": "B" * 129}, "borrower_ref", "longer than 128"),
    ({"product": "mortgage"}, "product", "not one of credit, cash, installment"),
    ({"currency": "eur"}, "currency", "three upper-case letters"),
    ({"currency": "USD"}, "currency", "mixed currencies: the tape is in EUR (line 2)"),
    ({"principal": "0"}, "principal", "greater than 0"),
    ({"principal": "10000000.01"}, "principal", "greater than 10000000.00"),
    ({"principal": "100.001"}, "principal", "more than 2 decimal places"),
    ({"principal": "1,000.00"}, "principal", "thousands separators"),
    ({"principal": "1e3"}, "principal", "no exponent"),
    ({"principal": "abc"}, "principal", "not a decimal number"),
    ({"principal": "1" * 5000}, "principal", "longer than 4096"),
    ({"outstanding_principal": "-1.00"}, "outstanding_principal", "must not be negative"),
    ({"outstanding_principal": "1000.01"}, "outstanding_principal", "greater than principal 1000.00"),
    ({"annual_rate": "0.18255"}, "annual_rate", "not a whole number of basis points"),
    ({"annual_rate": "0.3601"}, "annual_rate", "greater than 0.36"),
    ({"annual_rate": "18.25"}, "annual_rate", "greater than 0.36"),
    ({"annual_rate": "-0.01"}, "annual_rate", "must not be negative"),
    ({"origination_date": "15/01/2025"}, "origination_date", "YYYY-MM-DD"),
    ({"origination_date": "2025-02-29"}, "origination_date", "no such calendar date"),
    ({"origination_date": "1969-12-31"}, "origination_date", "before 1970-01-01"),
    ({"maturity_date": "2025-01-15"}, "maturity_date", "not after origination_date 2025-01-15"),
    ({"term_months": "0"}, "term_months", "between 1 and 120"),
    ({"term_months": "121"}, "term_months", "between 1 and 120"),
    ({"term_months": "12.5"}, "term_months", "not a whole number"),
    ({"term_months": "twelve"}, "term_months", "not an integer"),
    ({"repayment_type": "balloon"}, "repayment_type", "not one of amortizing, bullet, interest_only"),
    ({"status": "late"}, "status", "not one of current, dpd_1_30"),
    ({"funded_share": "0"}, "funded_share", "greater than 0"),
    ({"funded_share": "1.0001"}, "funded_share", "greater than 1"),
    ({"funded_share": "0.33333"}, "funded_share", "not a whole number of basis points"),
    ({"credit_score": "299"}, "credit_score", "between 300 and 950"),
    ({"credit_score": "951"}, "credit_score", "between 300 and 950"),
    ({"credit_score": "700.5"}, "credit_score", "not a whole number"),
    ({"region": "R" * 33}, "region", "longer than 32"),
]


@pytest.mark.parametrize(("cells", "column", "reason"), CELL_ERRORS,
                         ids=[f"{c}:{r[:24]}" for _, c, r in CELL_ERRORS])
def test_cell_error(cells: dict[str, str], column: str, reason: str) -> None:
    data = csv_bytes([row(1), row(2), row(3, **cells)])
    error = only_error(data)
    assert (error.line, error.column) == (4, column)
    assert reason in error.reason
    assert error.value == tape_cells._show(cells[column].strip())


def test_same_errors_from_jsonl() -> None:
    for cells, column, reason in CELL_ERRORS:
        error = only_error(jsonl_bytes([row(1), row(2), row(3, **cells)]))
        assert (error.line, error.column) == (3, column), (cells, error)
        assert (reason.replace("(line 2)", "(line 1)") in error.reason
                or error.reason == "required value missing")


def test_duplicate_loan_id_names_first_line() -> None:
    error = only_error(csv_bytes([row(1), row(2), row(1)]))
    assert (error.line, error.column, error.value) == (4, "loan_id", "L1")
    assert "duplicate loan id (first on line 2)" in error.reason


def test_missing_required_column() -> None:
    columns = [c for c in COLUMNS if c != "status"]
    error = only_error(csv_bytes([row(1)], columns))
    assert (error.line, error.column, error.reason) == (1, "status", "required column missing")


def test_missing_column_hint_for_wrong_case() -> None:
    columns = ["Loan_ID" if c == "loan_id" else c for c in COLUMNS]
    data = csv_bytes([{**row(1), "Loan_ID": "L1"}], columns)
    error = rejected(data).errors[0]
    assert (error.line, error.column) == (1, "loan_id")
    assert "found 'Loan_ID'" in error.reason


def test_duplicate_column_name() -> None:
    columns = [*COLUMNS, "region"]
    error = only_error(csv_bytes([row(1)], columns))
    assert (error.line, error.column) == (1, "region")
    assert "duplicate column name (also column 15)" in error.reason


def test_row_with_wrong_number_of_cells() -> None:
    data = csv_bytes([row(1)]) + b"L2,B2,cash\n"
    error = only_error(data)
    assert (error.line, error.column) == (3, "")
    assert "row has 3 cells, the header has 15" in error.reason


def test_every_bad_cell_is_reported() -> None:
    data = csv_bytes([row(1, principal="x", status="?"), row(2), row(3, currency="usd")])
    exc = rejected(data)
    assert [(e.line, e.column) for e in exc.errors] == [(2, "principal"), (2, "status"),
                                                        (4, "currency")]
    assert "line 2, column 'principal'" in str(exc)


def test_max_errors_keeps_counting() -> None:
    data = csv_bytes([row(i, product="bad") for i in range(50)])
    exc = rejected(data, max_errors=10)
    assert len(exc.errors) == 10 and exc.total == 50
    assert exc.errors[-1].line == 11


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"   \n\n", csv_bytes([]), b"\n" + csv_bytes([])])
def test_empty_tape(data: bytes) -> None:
    error = only_error(data)
    assert (error.line, error.column, error.reason) == (1, "", "the tape has no loans")


def test_empty_jsonl_tape() -> None:
    assert only_error(b"\n\n", fmt="jsonl").reason == "the tape has no loans"


def test_undecodable_bytes_report_their_lines() -> None:
    data = csv_bytes([row(1), row(2), row(3)])
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b"L2", b"L\xff2")
    lines[3] = lines[3].replace(b"DE-BY", b"DE-\xc3")
    exc = rejected(b"\n".join(lines))
    assert [(e.line, e.column) for e in exc.errors] == [(3, ""), (4, "")]
    assert "not valid UTF-8 (byte 0xff" in exc.errors[0].reason


def test_utf16_file() -> None:
    data = "\ufeff".encode("utf-16-le") + csv_bytes([row(1)]).decode().encode("utf-16-le")
    assert "UTF-16" in only_error(data).reason


@pytest.mark.parametrize("seed", range(5))
def test_binary_garbage_is_an_error_not_a_crash(seed: int) -> None:
    data = random.Random(seed).randbytes(20_000)
    for fmt in ("csv", "jsonl", None):
        exc = rejected(data, fmt=fmt)
        assert exc.total >= 1 and all(isinstance(e.line, int) for e in exc.errors)


def test_valid_utf8_garbage() -> None:
    rng = random.Random(1)
    data = "".join(chr(rng.randrange(0, 0x3000)) for _ in range(20_000)).encode()
    for fmt in ("csv", "jsonl"):
        assert rejected(data, fmt=fmt).total >= 1


def test_row_of_100000_columns() -> None:
    header = ",".join([*COLUMNS, *(f"x{i}" for i in range(100_000))])
    cells = ",".join([*(GOOD[c] for c in COLUMNS), *("y" for _ in range(100_000))])
    tape = parse_tape(f"{header}\n{cells}\n".encode())
    assert len(tape.loans) == 1
    assert tape.warnings == ["100000 unknown columns ignored: 'x0', 'x1', 'x2', 'x3', 'x4', "
                             "'x5', 'x6', 'x7', 'x8', 'x9' and 99990 more"]
    short = f"{header}\n" + ",".join(["1"] * 100_000) + "\n"
    error = only_error(short.encode())
    assert "row has 100000 cells, the header has 100015" in error.reason


def test_one_enormous_cell() -> None:
    data = csv_bytes([row(1)]) + b'"' + b"x" * 300_000 + b'"\n'
    exc = rejected(data)
    assert exc.errors[0].line == 3
    assert "malformed CSV" in exc.errors[0].reason
    assert len(exc.errors[0].value) < 200


def test_unterminated_quote() -> None:
    data = csv_bytes([row(1)]) + b'L2,"B2\n'
    error = rejected(data).errors[0]
    assert (error.line, error.column) == (3, "")
    assert "malformed CSV" in error.reason


def test_deeply_nested_json_and_huge_numbers(monkeypatch) -> None:
    # py_ecc (imported with web3) raises the recursion limit to 100000, where the C JSON
    # decoder would overflow the C stack on deep nesting: the parser must not get there.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        for nested in (b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000):
            assert only_error(nested + b"\n", fmt="jsonl").reason == "not valid JSON: nested too deeply"
    finally:
        sys.setrecursionlimit(limit)
    huge = json.dumps(row(1)).replace('"1000.00"', "1" * 100_000).encode()
    error = only_error(huge, fmt="jsonl")
    assert (error.column, error.reason) == ("principal", f"longer than {tape_module.MAX_CELL_CHARS} characters")


def test_jsonl_line_errors() -> None:
    lines = [json.dumps(row(1)), "[1, 2]", "{not json", json.dumps(row(4, term_months=True)),
             '{"loan_id": "L5", "loan_id": "L5"}', json.dumps({"principal": "NaN"}).replace('"NaN"', "NaN")]
    exc = rejected(("\n".join(lines) + "\n").encode())
    by_line = {}
    for e in exc.errors:
        by_line.setdefault(e.line, []).append(e)
    assert by_line[2][0].reason == "not a JSON object"
    assert by_line[3][0].reason.startswith("not valid JSON")
    assert (by_line[4][0].column, by_line[4][0].reason) == ("term_months", "must be a string or a number")
    assert (by_line[5][0].column, by_line[5][0].reason) == ("loan_id", "duplicate key")
    assert ("borrower_ref", "required value missing") in [(e.column, e.reason) for e in by_line[5]]
    assert "NaN is not a number" in by_line[6][0].reason


# --- what a good tape gives ------------------------------------------------------------------


def test_amounts_are_exact() -> None:
    rows = [row(1, principal="0.01", outstanding_principal="0.01"),
            row(2, principal="10000000.00", outstanding_principal="10000000"),
            row(3, principal="1234.56", outstanding_principal="1234.5", funded_share="0.3333"),
            row(4, principal="0.03", outstanding_principal="0.03", funded_share="0.3333"),
            row(5, principal="1234.560", annual_rate="0.18250", funded_share="1")]
    loans = parse_tape(csv_bytes(rows)).loans
    assert (loans[0].principal_units, loans[0].outstanding_units) == (10_000, 10_000)
    assert loans[1].principal_units == loans[1].outstanding_units == 10_000_000_000_000
    assert loans[2].principal_units == 1_234_560_000 * 3333 // 10_000 == 411_478_848
    assert loans[2].outstanding_units == 1_234_500_000 * 3333 // 10_000
    assert loans[3].principal_units == 9_999          # floor(30000 * 0.3333)
    assert (loans[4].principal_units, loans[4].rate_bps, loans[4].funded_share_bps) == (
        1_234_560_000, 1825, 10_000)
    assert parse_tape(csv_bytes([rows[3]]), decimals=2).loans[0].principal_units == 0
    assert parse_tape(csv_bytes([rows[2]]), decimals=18).loans[0].principal_units == (
        1_234_560_000_000_000_000_000 * 3333 // 10_000)


def test_amount_not_representable_with_few_decimals() -> None:
    error = only_error(csv_bytes([row(1, principal="10.05", outstanding_principal="1")]), decimals=1)
    assert (error.line, error.column) == (2, "principal")
    assert "1-decimal token" in error.reason
    assert parse_tape(csv_bytes([row(1, principal="10.10", outstanding_principal="3")]),
                      decimals=1).loans[0].principal_units == 101


def test_loan_fields() -> None:
    loan = parse_tape(csv_bytes([row(7, product=" installment ", status="dpd_1_30",
                                     repayment_type="interest_only")])).loans[0]
    assert loan == Loan(line=2, loan_id="L7", borrower_ref="B1", product=2, currency="EUR",
                        principal_units=1_000_000_000, outstanding_units=800_000_000, rate_bps=1825,
                        origination_day=parse_date("2025-01-15"), maturity_day=parse_date("2027-01-15"),
                        term_months=24, repayment_type=2, status=1, funded_share_bps=10_000,
                        credit_score=700, region="DE-BY")
    assert PRODUCTS[loan.product] == "installment" and STATUSES[loan.status] == "dpd_1_30"
    assert REPAYMENT_TYPES[loan.repayment_type] == "interest_only"


def test_optional_columns_default() -> None:
    columns = COLUMNS[:12]
    loan = parse_tape(csv_bytes([row(1)], columns)).loans[0]
    assert (loan.funded_share_bps, loan.credit_score, loan.region) == (10_000, 0, "")
    loan = parse_tape(csv_bytes([row(1, credit_score="0", region="  ")])).loans[0]
    assert (loan.credit_score, loan.region) == (0, "")


def test_whitespace_is_stripped_and_columns_in_any_order() -> None:
    columns = list(reversed(COLUMNS))
    padded = {k: f"  {v}\t" for k, v in row(1).items()}
    loan = parse_tape(csv_bytes([padded], columns)).loans[0]
    assert loan == parse_tape(csv_bytes([row(1)])).loans[0]


def test_byte_order_mark() -> None:
    data = csv_bytes([row(1)])
    assert parse_tape(b"\xef\xbb\xbf" + data).loans == parse_tape(data).loans
    jl = jsonl_bytes([row(1)])
    assert parse_tape(b"\xef\xbb\xbf" + jl).loans == parse_tape(jl).loans


def test_quoting_and_multiline_cells() -> None:
    rows = [row(1, borrower_ref='ref, with "comma"'), row(2, borrower_ref="two\nlines"), row(3)]
    tape = parse_tape(csv_bytes(rows))
    assert [loan.borrower_ref for loan in tape.loans] == ['ref, with "comma"', "two\nlines", "B1"]
    assert [loan.line for loan in tape.loans] == [2, 3, 5]
    error = only_error(csv_bytes([*rows, row(4, status="x")]))
    assert error.line == 6


def test_crlf_and_blank_lines() -> None:
    data = csv_bytes([row(1), row(2)]).replace(b"\n", b"\r\n") + b"\r\n\r\n"
    assert [loan.line for loan in parse_tape(data).loans] == [2, 3]


def test_unknown_column_warning() -> None:
    columns = [*COLUMNS, "branch"]
    tape = parse_tape(csv_bytes([{**row(1), "branch": "north"}], columns), name="t.csv")
    assert tape.warnings == ["unknown column 'branch' ignored"]
    assert (tape.source, tape.currency) == ("t.csv", "EUR")
    jl = parse_tape(b'{"extra": 1, ' + jsonl_bytes([row(1)])[1:])
    assert jl.warnings == ["unknown column 'extra' ignored"]


def test_jsonl_and_csv_give_identical_loans() -> None:
    rows = [row(i, funded_share="0.25" if i % 3 else "", credit_score="" if i % 4 else "800")
            for i in range(1, 40)]
    from_csv = parse_tape(csv_bytes(rows)).loans
    from_jsonl = parse_tape(jsonl_bytes(rows)).loans
    assert [replace(loan, line=0) for loan in from_csv] == [replace(loan, line=0) for loan in from_jsonl]
    assert [loan.line for loan in from_jsonl] == list(range(1, 40))


def test_jsonl_numbers_keep_their_literal_text() -> None:
    line = json.dumps(row(1)).replace('"1000.00"', "9007199254740993.01").replace(
        '"800.00"', "0.07").replace('"0.1825"', "0.1825")
    error = only_error(line.encode())
    assert error.column == "principal" and error.value == "9007199254740993.01"
    loan = parse_tape(line.replace("9007199254740993.01", "0.07").encode()).loans[0]
    assert (loan.principal_units, loan.rate_bps) == (70_000, 1825)


def test_format_sniffing_and_read_tape(tmp_path) -> None:
    (tmp_path / "t.csv").write_bytes(csv_bytes([row(1)]))
    (tmp_path / "t.jsonl").write_bytes(jsonl_bytes([row(1)]))
    (tmp_path / "t.txt").write_bytes(b"  " + jsonl_bytes([row(1)]))
    a, b, c = (read_tape(tmp_path / n) for n in ("t.csv", "t.jsonl", "t.txt"))
    assert a.loans[0].line == 2 and b.loans[0].line == 1 and c.loans[0].line == 1
    assert (a.source, b.source) == ("t.csv", "t.jsonl")
    with pytest.raises(ValueError):
        parse_tape(b"", fmt="xml")


def test_parse_date() -> None:
    assert parse_date("1970-01-01") == 0
    assert parse_date("2026-10-01") == 20727
    for bad, reason in [("2026-1-01", "YYYY-MM-DD"), ("2026-02-30", "no such"),
                        ("２０２６-10-01", "YYYY-MM-DD"), ("1960-01-01", "before 1970")]:
        with pytest.raises(ValueError, match=reason):
            parse_date(bad)


CELL_VALUES = {
    "loan_id": ["L9", "", "a b", "x" * 64, "x" * 65, "é"],
    "principal": ["1000.00", "0", "0.00", "5", "5.", ".5", "10000000.00", "10000000.01",
                  "1.005", "1.000", "-1", "0x10", "1_000", "١٢", "1e2"],
    "outstanding_principal": ["0", "0.00", "800", "1000.00", "1000.001", "-0", "999.999"],
    "annual_rate": ["0", "0.36", "0.3600", "0.36001", "0.1825", "0.18255", "1", ".1"],
    "origination_date": ["2025-01-15", "2027-01-15", "2028-02-29", "2027-02-29", " 2025-01-15"],
    "maturity_date": ["2027-01-15", "2025-01-15", "2025-01-16"],
    "term_months": ["1", "120", "0", "121", "012", "1.0", "", "+5", "٣"],
    "funded_share": ["", "1", "1.0", "1.0001", "0", "0.0001", "0.00001", "0.5", "-0.5"],
    "credit_score": ["", "0", "00", "300", "950", "299", "951", "0300", "3e2"],
    "region": ["", "x" * 32, "x" * 33],
    "currency": ["EUR", "USD", "eur", "EU"],
    "status": ["current", "repaid", "Current"],
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in CELL_VALUES.items()}))
def test_fast_path_agrees_with_cell_by_cell_checks(cells: dict[str, str]) -> None:
    """The parser's straight-line fast path must never accept what the detailed checks reject."""
    data = csv_bytes([row(1), row(2, **cells)])

    def outcome(slow_only: bool) -> object:
        original = tape_cells._Checker._fast
        if slow_only:
            tape_cells._Checker._fast = lambda self, line, raw: None  # type: ignore[method-assign]
        try:
            return parse_tape(data).loans
        except TapeError as exc:
            return exc.errors
        finally:
            tape_cells._Checker._fast = original  # type: ignore[method-assign]

    assert outcome(slow_only=False) == outcome(slow_only=True)


# --- eligibility and summary -----------------------------------------------------------------


def eligibility_tape_bytes() -> bytes:
    rows = [row(1), row(2, status="dpd_1_30", annual_rate="0.20", outstanding_principal="200.00",
                        maturity_date="2026-11-20"),
            row(3, status="defaulted"), row(4, status="repaid", outstanding_principal="0"),
            row(5, outstanding_principal="0"), row(6, maturity_date="2026-10-01"),
            row(7, annual_rate="0.36", funded_share="0.5"),
            row(8, product="credit", credit_score="", term_months="36")]
    return csv_bytes(rows)  # L1, L2 eligible; L3-L5 not; L6 matures on 2026-10-01


def eligibility_tape() -> tape_module.Tape:
    return parse_tape(eligibility_tape_bytes(), name="pool.csv")


def test_default_eligibility() -> None:
    tape = eligibility_tape()
    eligible, rejected_ = apply_eligibility(tape.loans, Eligibility())
    assert [loan.loan_id for loan in eligible] == ["L1", "L2", "L6", "L7", "L8"]
    assert [(loan.loan_id, reason) for loan, reason in rejected_] == [
        ("L3", "status:defaulted"), ("L4", "status:repaid"), ("L5", "outstanding_zero")]


def test_eligibility_reasons_with_criteria() -> None:
    tape = eligibility_tape()
    criteria = Eligibility(cutoff_day=parse_date("2026-10-01"), max_rate_bps=3000,
                           max_term_months=30, min_credit_score=600, products=frozenset({"cash"}))
    _, rejected_ = apply_eligibility(tape.loans, criteria)
    assert {loan.loan_id: reason for loan, reason in rejected_} == {
        "L3": "status:defaulted", "L4": "status:repaid", "L5": "outstanding_zero",
        "L6": "matures_before_cutoff", "L7": "rate_above_max", "L8": "term_above_max"}
    _, rejected_ = apply_eligibility(tape.loans, Eligibility(min_credit_score=600))
    assert ("L8", "credit_score_below_min") in [(loan.loan_id, r) for loan, r in rejected_]
    _, rejected_ = apply_eligibility(tape.loans, Eligibility(products=frozenset({"cash"})))
    assert ("L8", "product:credit") in [(loan.loan_id, r) for loan, r in rejected_]
    _, rejected_ = apply_eligibility(tape.loans, Eligibility(min_outstanding_units=500_000_000))
    assert ("L2", "outstanding_below_min") in [(loan.loan_id, r) for loan, r in rejected_]
    with pytest.raises(ValueError, match="unknown status"):
        Eligibility(statuses=frozenset({"late"}))


def test_summary_numbers() -> None:
    tape = eligibility_tape()
    s = summarize(tape, Eligibility(cutoff_day=parse_date("2026-10-01")))
    # eligible: L1 800 @1825 to 2027-01-15, L2 200 @2000 to 2026-11-20, L7 400 (half) @3600,
    # L8 800 @1825 (credit); L6 matures on the cut-off.
    out = [800_000_000, 200_000_000, 400_000_000, 800_000_000]
    rates = [1825, 2000, 3600, 1825]
    months = [4, 2, 4, 4]          # 2026-10-01 -> 2027-01-15 is 3.5 months, counted as 4
    assert (s["loans"], s["eligible"]) == (8, 4)
    assert s["ineligible"] == {"matures_before_cutoff": 1, "outstanding_zero": 1,
                               "status:defaulted": 1, "status:repaid": 1}
    assert s["outstanding_units"] == sum(out)
    assert s["principal_units"] == 3_500_000_000
    assert s["wac_bps"] == sum(o * r for o, r in zip(out, rates, strict=True)) // sum(out) == 2163
    assert s["wam_months"] == round(sum(o * m for o, m in zip(out, months, strict=True)) / sum(out), 2) == 3.82
    assert s["by_product"]["credit"] == {"loans": 1, "eligible": 1, "outstanding_units": 800_000_000}
    assert s["by_status"]["defaulted"] == {"loans": 1, "eligible": 0, "outstanding_units": 0}
    assert (s["currency"], s["cutoff"], s["source"], s["warnings"]) == ("EUR", "2026-10-01", "pool.csv", [])
    no_cutoff = summarize(tape, Eligibility())
    assert no_cutoff["wam_months"] == 27.2 and no_cutoff["cutoff"] is None   # (2200*24 + 800*36) / 3000


def test_remaining_months() -> None:
    cutoff = parse_date("2026-10-01")
    assert remaining_months(cutoff, parse_date("2027-01-01")) == 3
    assert remaining_months(cutoff, parse_date("2027-01-02")) == 4
    assert remaining_months(cutoff, cutoff) == 0
    assert remaining_months(parse_date("2026-10-31"), parse_date("2026-11-30")) == 1


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def run_cli(monkeypatch):
    """`chainabs` with only the tape command, so other commands' state cannot break these tests."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("tape",))
    return cli.main


def test_cli_good_tape_json(tmp_path, capsys, run_cli) -> None:
    path = tmp_path / "pool.csv"
    path.write_bytes(eligibility_tape_bytes())
    assert run_cli(["tape", "check", str(path), "--json", "--cutoff", "2026-10-01"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == []
    assert (report["loans"], report["eligible"], report["wac_bps"]) == (8, 4, 2163)
    assert report["outstanding_units"] == 2_200_000_000
    for key in ("ineligible", "principal_units", "wam_months", "by_product", "by_status",
                "currency", "warnings"):
        assert key in report
    assert run_cli(["--json", "tape", "check", str(path), "--decimals", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["outstanding_units"] == 300_000


def test_cli_good_tape_text(tmp_path, capsys, run_cli) -> None:
    path = tmp_path / "pool.csv"
    path.write_bytes(eligibility_tape_bytes())
    assert run_cli(["tape", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pool.csv: 8 loans in EUR, well formed" in out
    assert "eligible: 5 loans, outstanding 3,000.000000 EUR" in out
    assert "status:defaulted" in out


def test_cli_bad_tape(tmp_path, capsys, run_cli) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes([row(1), row(2, principal="-5", currency="USD"), row(1)]))
    assert run_cli(["tape", "check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == [
        {"line": 3, "column": "principal", "value": "-5", "reason": "must not be negative"},
        {"line": 3, "column": "currency", "value": "USD",
         "reason": "mixed currencies: the tape is in EUR (line 2)"},
        {"line": 4, "column": "loan_id", "value": "L1", "reason": "duplicate loan id (first on line 2)"},
    ]
    assert report["error_count"] == 3 and report["loans"] is None
    assert run_cli(["tape", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "rejected, 3 bad cells" in out
    assert "line 4, column 'loan_id', value 'L1': duplicate loan id (first on line 2)" in out


def test_cli_missing_file_and_bad_cutoff(tmp_path, capsys, run_cli) -> None:
    assert run_cli(["tape", "check", str(tmp_path / "none.csv")]) == 1
    assert "cannot read the file" in capsys.readouterr().err
    assert run_cli(["--json", "tape", "check", str(tmp_path / "none.csv")]) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0]["line"] == 0
    with pytest.raises(SystemExit):
        run_cli(["tape", "check", "x.csv", "--cutoff", "2026-02-30"])
    assert "no such calendar date" in capsys.readouterr().err


def test_cli_stops_quietly_when_its_reader_leaves(tmp_path) -> None:
    """`chainabs tape check bad.csv | head -1`: no 'Broken pipe' error, the status a pipe expects."""
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes([row(n, principal="-5") for n in range(1, 3001)]))  # ~200 kB of report
    proc = subprocess.Popen([sys.executable, "-m", "chainabs.cli", "tape", "check", str(path), "--max-errors", "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert b"rejected, 3000 bad cells" in proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err
