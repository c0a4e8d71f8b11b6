"""Bad input, end to end: tapes, deal files and command lines that must be refused with one
clear sentence, never a crash, and with nothing written when the command would write on chain.

Tape error classes already covered one by one in test_tape.py and deal file rules in
test_dealfile.py are not repeated here; this file adds generated garbage and mutations, the
extremes (a million columns, deeply quoted cells, a file over the size limit, lone surrogate
escapes, nesting deep enough to break a recursive parser) and the `chainabs` command line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs import cli, merkle
from chainabs import tape as tape_module
from chainabs.context import open_context
from chainabs.dealfile import DealFile, load_deal_file, parse_deal_file
from chainabs.errors import DealError, TapeError
from chainabs.tape import COLUMNS, MAX_TAPE_BYTES, Tape, parse_tape, read_tape
from chainabs.tapegen import write_tape
from support import GOOD_ROW

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DEAL = (ROOT / "examples" / "deal.toml").read_text()
GENERATED = settings(deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])
GOOD = {**GOOD_ROW, "funded_share": "0.5"}


def good_row(n: int) -> dict[str, str]:
    return {**GOOD, "loan_id": f"L{n}", "borrower_ref": f"B{n}"}


def to_csv(rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8", "surrogatepass")


def rejected(data: bytes, **kwargs: Any) -> TapeError:
    with pytest.raises(TapeError) as info:
        parse_tape(data, **kwargs)
    return info.value


def assert_well_reported(exc: TapeError, lines: int) -> None:
    """What every rejection carries: at least one error, each naming a line of the file, a known
    column or "" (or the header name a duplicate column error is about), and a reason."""
    assert exc.total >= len(exc.errors) >= 1
    for e in exc.errors:
        assert 1 <= e.line <= lines + 1, e
        assert e.column in COLUMNS or e.column == "" or e.reason.startswith("duplicate column name"), e
        assert e.reason and "\n" not in e.reason and "Traceback" not in e.reason, e
        assert len(e.value) <= 200, e
        json.dumps(e.as_dict())  # the API and `--json` serialise it
    assert str(exc).startswith("loan tape rejected: ")


def assert_committable(tape: Tape) -> None:
    """An accepted tape obeys TAPE.md's rules and every loan can be committed on chain."""
    ids = [loan.loan_id for loan in tape.loans]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9._-]{1,64}", i) for i in ids)
    for loan in tape.loans:
        assert loan.principal_units > 0 and 0 <= loan.outstanding_units <= loan.principal_units
        assert 0 <= loan.rate_bps <= 3600 and 1 <= loan.term_months <= 120
        assert loan.maturity_day > loan.origination_day >= 0 and 0 < loan.funded_share_bps <= 10_000
        assert loan.credit_score == 0 or 300 <= loan.credit_score <= 950
        assert 0 < len(loan.borrower_ref) <= 128 and len(loan.region) <= 32 and loan.currency == tape.currency
    merkle.commitments(tape.loans, b"\x01" * 32)  # raises if a value cannot be ABI-encoded


# -- tapes: generated garbage and mutations ---------------------------------------------------------

@settings(GENERATED, max_examples=300)
@given(data=st.one_of(st.binary(max_size=3000), st.text(max_size=1500).map(lambda t: t.encode("utf-8", "surrogatepass"))),
       fmt=st.sampled_from([None, "csv", "jsonl"]))
def test_generated_garbage_is_a_tape_error_never_a_crash(data: bytes, fmt: str | None) -> None:
    try:
        tape = parse_tape(data, fmt=fmt)
    except TapeError as exc:
        assert_well_reported(exc, data.count(b"\n") + 1)
    else:
        assert_committable(tape)


_nasty_cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "-1", "-0.01", "0", "1e3", "NaN", "inf", "0x10", "1_000", "１０００", "٢٤", "10,00",
                     "2025-02-29", "2025-1-5", "99999-01-01", "0000-00-00", "1969-12-31", "current ", "CASH", "eur",
                     '"', '""', '"a"b', "a\nb", "a\r\nb", "\x00", "\ufeff", "\u202e", "🙂" * 40, "9" * 5000,
                     "0." + "0" * 300 + "1", "1" * 400 + ".00", "x\ud800", "\udfff"]),
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
)


@settings(GENERATED, max_examples=400)
@given(rows=st.integers(1, 4), changes=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(COLUMNS), _nasty_cell),
                                                  min_size=1, max_size=6),
       drop=st.lists(st.sampled_from(COLUMNS), max_size=2), as_jsonl=st.booleans())
def test_mutated_tapes_are_rejected_cell_by_cell_or_committable(rows: int, changes: list[tuple[int, str, str]],
                                                                  drop: list[str], as_jsonl: bool) -> None:
    """A good tape with some cells replaced by bad values and some columns dropped: either every
    problem is reported against its line and column, or what is accepted can go on chain."""
    table = [good_row(n) for n in range(rows)]
    for i, column, value in changes:
        table[i % rows][column] = value
    columns = [c for c in COLUMNS if c not in drop]
    if as_jsonl:
        data = "".join(json.dumps({c: r[c] for c in columns}) + "\n" for r in table).encode()
    else:
        data = to_csv(table, columns)
    try:
        tape = parse_tape(data)
    except TapeError as exc:
        assert_well_reported(exc, data.count(b"\n") + 1)
        assert exc.total < 10 * (rows + len(COLUMNS))
    else:
        assert_committable(tape)
        assert not set(drop) & set(tape_module.REQUIRED_COLUMNS)


def test_lone_surrogate_escapes_are_errors_not_commitments() -> None:
    """JSON Lines may escape a lone UTF-16 surrogate ("\\ud800"): it decodes to a str that cannot
    be UTF-8 encoded, so it used to pass validation and crash the commitment (ValueError in
    create_pool: a 500 from the API's pool upload, a traceback from the CLI)."""
    lines = [json.dumps({**good_row(1), "region": "x\ud800"}), json.dumps({**good_row(2), "borrower_ref": "\udfff"}),
             json.dumps({**good_row(3), "\ud800": "1"}), json.dumps({**good_row(4), "region": "\ud83d\ude00"})]
    exc = rejected(("\n".join(lines) + "\n").encode())
    assert [(e.line, e.column) for e in exc.errors] == [(1, "region"), (2, "borrower_ref"), (3, "")]
    assert all(e.reason == "not valid text: a lone UTF-16 surrogate escape" for e in exc.errors)
    assert exc.errors[0].value == "x\\ud800"
    assert parse_tape((lines[3] + "\n").encode()).loans[0].region == "\U0001f600"  # a pair is one character


def test_duplicate_loan_ids_in_json_lines_name_the_first_line() -> None:
    data = "".join(json.dumps(good_row(n)) + "\n" for n in (1, 2, 1, 2)).encode()
    exc = rejected(data)
    assert [(e.line, e.column, e.reason) for e in exc.errors] == [
        (3, "loan_id", "duplicate loan id (first on line 1)"), (4, "loan_id", "duplicate loan id (first on line 2)")]


def test_the_first_thousand_bad_cells_are_listed_and_all_counted() -> None:
    rows = [{**good_row(n), "status": "late"} for n in range(2500)]
    exc = rejected(to_csv(rows))
    assert len(exc.errors) == 1000 and exc.total == 2500
    assert [e.line for e in exc.errors] == list(range(2, 1002))
    assert str(exc).endswith("(and 2499 more)")


def test_a_million_columns() -> None:
    n = 1_000_000
    header = ",".join([*COLUMNS, *(f"x{i}" for i in range(n))])
    cells = ",".join([*(GOOD[c] for c in COLUMNS), *("y" for _ in range(n))])
    tape = parse_tape(f"{header}\n{cells}\n".encode())
    assert len(tape.loans) == 1 and tape.warnings[0].startswith(f"{n} unknown columns ignored: 'x0', 'x1'")
    assert tape.warnings[0].endswith(f"and {n - 10} more")
    wide_row = ",".join(GOOD[c] for c in COLUMNS) + "," * n
    exc = rejected(f"{','.join(COLUMNS)}\n{wide_row}\n".encode())
    assert (exc.errors[0].line, exc.errors[0].column) == (2, "")
    assert exc.errors[0].reason == f"row has {n + 15} cells, the header has 15"
    assert len(exc.errors[0].value) <= 200


def test_deeply_quoted_cells() -> None:
    header = ",".join(COLUMNS)
    start = ",".join(GOOD[c] for c in COLUMNS[:-1])
    quotes = '"' + '""' * 50_000 + '"'  # one cell of 50000 literal quote characters
    error = rejected(f"{header}\n{start},{quotes}\n".encode()).errors[0]
    assert (error.line, error.column, error.reason) == (2, "region", "longer than 4096 characters")
    assert error.value.startswith('""""') and len(error.value) < 200
    quoted_twice = ",".join(f'"""{GOOD[c]}"""' for c in COLUMNS)  # every value arrives with quotes
    exc = rejected(f"{header}\n{quoted_twice}\n".encode())
    assert exc.errors[0].column == "loan_id" and exc.errors[0].value == '"L1"'
    assert {e.line for e in exc.errors} == {2}
    for tail, reason in (('"ab"cd', "malformed CSV: ',' expected after '\"'"),
                         ('"never closed', "malformed CSV: unexpected end of data")):
        error = rejected(f"{header}\n{start},DE\n{start.replace('L1', 'L2')},{tail}\n".encode()).errors[0]
        assert (error.line, error.column, error.reason) == (3, "", reason)
    spanning = '"' + "line\n" * 500 + '"'  # a quoted cell over 500 lines: the next row keeps its line number
    data = f"{header}\n{start},{spanning}\n{start.replace('L1', 'L2')},{'R' * 40}\n".encode()
    assert [(e.line, e.column) for e in rejected(data).errors] == [(2, "region"), (503, "region")]


def test_a_tape_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    small = to_csv([good_row(1), good_row(2)])
    assert len(parse_tape(small, max_bytes=len(small)).loans) == 2
    error = rejected(small, max_bytes=len(small) - 1).errors[0]
    assert (error.line, error.column) == (1, "")
    assert error.reason == f"the tape is larger than the limit of {len(small) - 1} bytes; split it into several tapes"
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as fh:  # sparse: the limit is checked on the file's size, nothing is read
        fh.write(small)
        fh.truncate(MAX_TAPE_BYTES + 1)
    with pytest.raises(TapeError) as info:
        read_tape(huge)
    assert info.value.errors[0].reason == (f"the tape is larger than the limit of {MAX_TAPE_BYTES} bytes "
                                           f"({MAX_TAPE_BYTES + 1} bytes); split it into several tapes")
    with pytest.raises(TapeError):
        read_tape(tmp_path / "huge.csv", max_bytes=len(small) - 1)
    assert len(read_tape(_write(tmp_path / "ok.csv", small), max_bytes=len(small)).loans) == 2


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- deal files -------------------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    """Inline TOML for a generated value (strings as basic strings, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "nan" if isinstance(value, float) and math.isnan(value) else \
            ("inf" if value == math.inf else "-inf" if value == -math.inf else repr(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}"
                           for k, v in value.items()) + "}"


_scalar = st.one_of(st.integers(-(2**70), 2**70), st.integers(-3, 10_001), st.floats(), st.booleans(),
                    st.text(max_size=12), st.dates(), st.sampled_from(["80%", "12.5%", "-5%", "rest", "0", "-1",
                                                                      "100.00", "1e3", "120%", "0x" + "ab" * 20]))
_any = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=6)


def _maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, good, _any)


_tranche = st.fixed_dictionaries(
    {"name": _maybe(st.sampled_from(["A", "B", "C", "D"])), "symbol": _maybe(st.sampled_from(["S-A", "S-B", "S-C"])),
     "coupon_bps": _maybe(st.integers(0, 1200))},
    optional={"face": _maybe(st.sampled_from(["80%", "10%", "rest", "1000.00", "5%", 3, "0.000001"])),
              "extra": _any})
_deal_document = st.fixed_dictionaries(
    {"pool": _maybe(st.fixed_dictionaries(
        {"name": _maybe(st.just("P")), "currency": _maybe(st.just("EUR")),
         "cutoff_date": _maybe(st.just(date(2026, 10, 1))), "decimals": _maybe(st.integers(0, 18))},
        optional={"settlement_token": _any}))},
    optional={"eligibility": _maybe(st.fixed_dictionaries({}, optional={
                  "statuses": _maybe(st.just(["current"])), "max_rate_bps": _any, "min_outstanding": _any,
                  "max_term_months": _any, "min_credit_score": _any, "products": _any})),
              "deal": _maybe(st.fixed_dictionaries(
                  {"servicer_fee_bps": _maybe(st.integers(0, 200)), "reserve_target_bps": _maybe(st.integers(0, 200)),
                   "default_trigger_bps": _maybe(st.integers(0, 1000))},
                  optional={"initial_reserve": _maybe(st.sampled_from(["1%", "0", "500.00"]))})),
              "tranches": st.one_of(st.lists(_tranche, max_size=7), _any)})


@settings(GENERATED, max_examples=400)
@given(document=_deal_document, pool=st.one_of(st.integers(1, 10**20), st.sampled_from([1, 2, 3, 10**6])))
def test_generated_deal_files_are_one_deal_error_or_a_deal_whose_faces_sum_to_the_pool(document: dict[str, Any],
                                                                                       pool: int) -> None:
    text = "\n".join(f"{key} = {toml_value(value)}" for key, value in document.items())
    try:
        deal = parse_deal_file(text, "generated.toml")
    except DealError as exc:
        assert_one_sentence(str(exc), exc.field)
        return
    assert isinstance(deal, DealFile)
    deal.eligibility()
    if not deal.has_tranches:
        return
    try:
        params = deal.deal_params(pool)
    except DealError as exc:
        assert_one_sentence(str(exc), exc.field)
        return
    faces = [t.face for t in params.tranches]
    assert sum(faces) == pool and all(f > 0 for f in faces) and 2 <= len(faces) <= 5
    assert params.tranches[-1].coupon_bps == 0


def assert_one_sentence(message: str, field: str) -> None:
    assert message.startswith("deal file: ") and field and "\n" not in message, message
    assert "pydantic" not in message and "Traceback" not in message and "ValidationError" not in message, message


@pytest.mark.parametrize("text, field, words", [
    ("pool = " + "[" * 60_000 + "]" * 60_000, "d.toml", "nested too deeply"),
    ("[pool]\nname = " + "{a = " * 60_000 + "1" + "}" * 60_000, "d.toml", "nested too deeply"),
    (EXAMPLE_DEAL + '[[tranches]]\nname = "X"\nsymbol = "X"\ncoupon_bps = 0\n' * 1000, "tranches", "the file has 1003"),
    (EXAMPLE_DEAL.replace("decimals = 6", "decimals = 6.0"), "pool.decimals", "must be an integer, got 6.0"),
    (EXAMPLE_DEAL.replace("decimals = 6", "decimals = 99999999999999999999"), "pool.decimals", "0..36"),
    (EXAMPLE_DEAL.replace("decimals = 6", "decimals = 9223372036854775807"), "pool.decimals", "0..36"),
    (EXAMPLE_DEAL.replace("[pool]", "[[pool]]"), "pool", "must be a table, got a list"),
    (EXAMPLE_DEAL.replace('name = "Consumer Loans 2026-1"', "name = 2026-01-01"), "pool.name", "must be a string"),
    (EXAMPLE_DEAL.replace('face = "80%"', 'face = "80%%"'), "tranches[0].face", "percentage"),
    (EXAMPLE_DEAL.replace('face = "80%"', 'face = "99999999999999999999999999999999999999999"'),
     "tranches[0].face", "plain decimal"),
    (EXAMPLE_DEAL.replace('face = "80%"', 'face = "-80%"'), "tranches[0].face", "negative"),
    (EXAMPLE_DEAL.replace('face = "80%"', "face = -1"), "tranches[0].face", "negative"),
    (EXAMPLE_DEAL.replace("coupon_bps = 800", "coupon_bps = -800"), "tranches[1].coupon_bps", "basis points"),
    ('[pool]\nname = "P\u0000"\n', "d.toml", "not valid TOML"),
])
def test_bad_deal_files_name_their_field(text: str, field: str, words: str) -> None:
    with pytest.raises(DealError) as info:
        parse_deal_file(text, "d.toml")
    assert info.value.field == field and words in info.value.reason, str(info.value)
    assert_one_sentence(str(info.value), info.value.field)


@pytest.mark.parametrize("content", [b"\x00\xff" * 100, b"\xef\xbb\xbf\xef\xbb\xbf[pool]\n",
                                     b"\xff\xfe[\x00p\x00o\x00o\x00l\x00]\x00", b"PK\x03\x04" + bytes(range(256)) * 4])
def test_binary_deal_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "deal.toml"
    path.write_bytes(content)
    with pytest.raises(DealError) as info:
        load_deal_file(path)
    assert info.value.field == "deal.toml"
    assert_one_sentence(str(info.value), info.value.field)


# -- the command line -------------------------------------------------------------------------------

A1 = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
A2 = "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"


@dataclass
class Cli:
    root: Path
    data: Path
    tape: Path
    capsys: Any = None

    def run(self, *args: str) -> tuple[int, str, str]:
        try:
            status = cli.main(["--data-dir", str(self.data), *args])
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 1
        out = self.capsys.readouterr()
        return status, out.out, out.err

    def files(self) -> dict[str, str]:
        """Every file of the data dir and its digest: the journal (every block), pool and deal records."""
        return {str(p.relative_to(self.data)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.data.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A data dir with a 30-loan pool and an open deal, A1 eligible and funded: made through the CLI."""
    root = tmp_path_factory.mktemp("cli-bad")
    tape = root / "tape.csv"
    write_tape(tape, 30, 5, "csv")
    world = Cli(root, root / "data", tape)
    assert cli.main(["--data-dir", str(world.data), "pool", "create", "--tape", str(tape),
                     "--deal", str(ROOT / "examples" / "deal.toml")]) == 0
    assert cli.main(["--data-dir", str(world.data), "deal", "create", "--deal", str(ROOT / "examples" / "deal.toml")]) == 0
    assert cli.main(["--data-dir", str(world.data), "investors", "add", A1]) == 0
    assert cli.main(["--data-dir", str(world.data), "fund", A1, "1000"]) == 0
    yield world


@pytest.fixture
def world(cli_world: Cli, capsys: pytest.CaptureFixture[str]) -> Cli:
    capsys.readouterr()
    cli_world.capsys = capsys
    return cli_world


def _bad_tape(root: Path) -> str:
    path = root / "bad.csv"
    path.write_bytes(to_csv([good_row(1), {**good_row(2), "principal": "-5"}]))
    return str(path)


def _garbage(root: Path, name: str, data: bytes) -> str:
    return str(_write(root / name, data))


REFUSED = [
    # (arguments, words in the sentence); {root}, {tape}, {deal} are filled in
    (["investors", "add", A1, "0x12"], "'0x12' is not an address"),
    (["investors", "add", A1, A1.lower()[:-1] + "Z"], "is not an address"),
    (["investors", "add", A1[:-1] + ("f" if A1[-1] == "F" else "F")], "fails its EIP-55 checksum"),
    (["investors", "add", A2, "--until", "2026-02-30"], "no such calendar date"),
    (["investors", "add", A2, "--until", "2001-01-01"], "--until 2001-01-01 is not after the chain's current time"),
    (["investors", "add", A2, "--jurisdiction", "-1"], "ISO 3166-1"),
    (["investors", "add", "0x" + "0" * 40], "reverted: ZeroInvestor"),
    (["investors", "freeze", "🙂"], "is not an address"),
    (["fund", A1, "-5"], "from 0 to 2**256 - 1, got -5"),
    (["fund", A1, str(2**256)], "from 0 to 2**256 - 1"),
    (["fund", "0x" + "1" * 41, "5"], "is not an address"),
    (["subscribe", "--investor", A1, "--tranche", "Z-9", "--units", "5"], "no tranche 'Z-9'; tranches are CABS-A"),
    (["subscribe", "--investor", A1, "--tranche", "7", "--units", "5"], "no tranche 7: the deal's tranches are 0 to 2"),
    (["subscribe", "--investor", A1, "--tranche", "0", "--units", "-5"], "from 1 to 2**256 - 1, got -5"),
    (["subscribe", "--investor", A1, "--tranche", "0", "--units", "0"], "from 1 to 2**256 - 1, got 0"),
    (["subscribe", "--investor", A1, "--tranche", "0", "--units", "1e3"], "'1e3' is not a whole number"),
    (["subscribe", "--investor", A1, "--tranche", "0", "--units", "1001"],
     f"cannot subscribe: {A1} holds 1000 settlement units, 1001 are needed"),
    (["subscribe", "--investor", A2, "--tranche", "0", "--units", "1"], f"cannot subscribe: {A2} is not an eligible"),
    (["subscribe", "--investor", A1, "--tranche", "1", "--units", str(10**30)], "reverted: ExceedsFace(tranche=1"),
    (["transfer", "--from", A1, "--to", "nobody", "--tranche", "0", "--units", "1"], "'nobody' is not an address"),
    (["trade", "--seller", A1, "--buyer", A2, "--tranche", "0", "--units", "1", "--price", "-1"], "got -1"),
    (["report", "--interest", "-1", "--principal", "0", "--recoveries", "0", "--defaults", "0"], "got -1"),
    (["report", "--interest", "1", "--principal", "0", "--recoveries", "0", "--defaults", "0"],
     "cannot post a period report: the deal's offering is open, it must be closed"),
    (["report", "--interest", "1", "--principal", "0", "--recoveries", "0", "--defaults", "0",
      "--loan-tape", "{root}/missing.csv"], "missing.csv: No such file or directory"),
    (["simulate", "--periods", "0"], "from 1 to 100000, got 0"),
    (["simulate", "--cutoff", "yesterday"], "not a date in YYYY-MM-DD form"),
    (["simulate", "--cdr", "nan"], "argument --cdr: must be a fraction from 0 to 1, got nan"),
    (["simulate", "--recovery", "1.5"], "argument --recovery: must be a fraction from 0 to 1, got 1.5"),
    (["simulate", "--periods", "1"], "cannot simulate periods: the deal's offering is open"),
    (["trade", "--seller", A1, "--buyer", A2, "--tranche", "0", "--units", "1", "--price", "1"],
     "cannot trade: the transfer is restricted (code"),
    (["claim", "--holder", "0x"], "is not an address"),
    (["period", "show", "-1"], "no period -1"),
    (["close"], "cannot close the offering (the initial reserve): 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf holds 0"),
    (["deal", "create", "--deal", "{deal}"], "already has a deal"),
    (["deal", "create", "--deal", "{root}/missing.toml"], "cannot read the file"),
    (["pool", "create", "--tape", "{root}/missing.csv", "--deal", "{deal}"], "missing.csv: No such file or directory"),
    (["pool", "create", "--tape", "{root}", "--deal", "{deal}"], "Is a directory"),
    (["pool", "create", "--tape", "{tape}", "--deal", "{deal}", "--batch-size", "-3"], "must be 1 or more loans, got -3"),
    (["pool", "create", "--tape", "{bad_tape}", "--deal", "{deal}"], "line 3, column 'principal'"),
    (["pool", "create", "--tape", "{garbage_tape}", "--deal", "{deal}"], "loan tape rejected"),
    (["pool", "create", "--tape", "{huge_tape}", "--deal", "{deal}"], "larger than the limit"),
    (["pool", "create", "--tape", "{tape}", "--deal", "{garbage_deal}"], "deal file: garbage.toml"),
    (["pool", "create", "--tape", "{tape}", "--deal", "{late_deal}"], "no loan of the tape is eligible"),
    (["pool", "create", "--tape", "{other_tape}", "--deal", "{deal}"], "already exists"),
    (["proof", "NOT-A-LOAN"], "loan 'NOT-A-LOAN' is not in pool"),
    (["proof", "L1", "--pool", "🙂" * 500], "pool name '" + "🙂" * 60 + "…' is 500 characters long, more than 128"),
    (["proof", "L1", "--pool", "a" * 5000], "pool name '" + "a" * 60 + "…' is 5000 characters long, more than 128"),
    (["proof", "L1", "--pool", "🙂" * 50], "pool name '" + "🙂" * 50 + "' has no usable characters"),
    (["audit", "verify", "--pool", "n" * 100], "no pool named '" + "n" * 60 + "…' in"),
    (["tape", "check", "{huge_tape}"], ""),  # the report on stdout names the limit
    (["serve", "--port", "70000"], "bad service settings: port: Input should be less than or equal to 65535"),
    (["index", "--once", "--interval", "-1"], "argument --interval: must be a number above 0, got -1"),
    (["index", "--once", "--interval", "inf"], "argument --interval: must be a number above 0, got inf"),
    (["index", "--once", "--max-range", "many"], "argument --max-range: 'many' is not a whole number"),
    (["tape", "check", "{tape}", "--max-errors", "-1"], "argument --max-errors: must be 1 or more, got -1"),
    (["tape", "check", "{tape}", "--decimals", "40"], "argument --decimals: must be from 0 to 36, got 40"),
    (["audit", "verify", "--pool", "nope"], "no pool named 'nope'"),
    (["nonsense-command"], "invalid choice: 'nonsense-command'"),
    (["demo", "--loans", "-5", "--no-serve"], "argument --loans: must be from 1 to 1000000, got -5"),
    (["demo", "--periods", "0", "--no-serve"], "argument --periods: must be from 1 to 600, got 0"),
    (["--rpc", "http://127.0.0.1:1", "investors", "add", A2], "unreachable"),
]


@pytest.fixture(scope="module")
def paths(cli_world: Cli) -> dict[str, str]:
    root = cli_world.root
    huge = root / "huge.csv"
    with huge.open("wb") as fh:
        fh.write(cli_world.tape.read_bytes())
        fh.truncate(MAX_TAPE_BYTES + 1)
    late = EXAMPLE_DEAL.replace("cutoff_date = 2026-10-01", "cutoff_date = 2099-01-01")
    other = root / "other.csv"
    write_tape(other, 12, 99, "csv")
    return {"root": str(root), "tape": str(cli_world.tape), "deal": str(ROOT / "examples" / "deal.toml"),
            "bad_tape": _bad_tape(root), "garbage_tape": _garbage(root, "garbage.csv", os.urandom(5000)),
            "garbage_deal": _garbage(root, "garbage.toml", b"\x00\xff\xfe" * 50), "huge_tape": str(huge),
            "late_deal": _garbage(root, "late.toml", late.replace('name = "Consumer Loans 2026-1"',
                                                                  'name = "Late Loans"').encode()),
            "other_tape": str(other)}


@pytest.mark.parametrize("args, words", REFUSED, ids=[" ".join(a)[:60] for a, _ in REFUSED])
def test_refused_commands_say_one_sentence_and_write_nothing(world: Cli, paths: dict[str, str], args: list[str],
                                                             words: str) -> None:
    argv = [a.format(**paths) for a in args]
    before = world.files()
    status, out, err = world.run(*argv)
    assert status != 0, (argv, out, err)
    if args == ["tape", "check", "{huge_tape}"]:  # the checker's report: every bad cell, on stdout
        assert "rejected, 1 bad cell" in out and "larger than the limit" in out and err == "", (out, err)
    else:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert words in lines[0], (argv, err)
        assert "Traceback" not in err and "unexpected" not in err and out == "", (argv, out, err)
    assert world.files() == before, argv  # no block (the journal), no pool or deal record, no folder


def test_refused_commands_leave_the_chain_and_pool_as_they_were(world: Cli, paths: dict[str, str]) -> None:
    """The same refusals, judged by the chain itself: its head and the pool's on-chain record."""
    ctx = open_context(data_dir=world.data, create=False)
    head = ctx.chain.block_number()
    record = json.loads((world.data / "pools" / "consumer-loans-2026-1" / "pool.json").read_text())
    pool = ctx.chain.contract("LoanPool", record["address"])
    onchain = (ctx.chain.call(pool.functions.loanRoot()), ctx.chain.call(pool.functions.mintedCount()))
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    for args, _ in REFUSED[::3]:
        world.run(*[a.format(**paths) for a in args])
    ctx = open_context(data_dir=world.data, create=False)
    assert ctx.chain.block_number() == head
    assert (ctx.chain.call(pool.functions.loanRoot()), ctx.chain.call(pool.functions.mintedCount())) == onchain
    assert json.loads((world.data / "pools" / "consumer-loans-2026-1" / "pool.json").read_text()) == record
    ctx.chain.journal.close()  # type: ignore[attr-defined]


def test_json_mode_prints_the_error_as_json(world: Cli) -> None:
    status, out, err = world.run("--json", "subscribe", "--investor", A1, "--tranche", "9", "--units", "1")
    body = json.loads(out)
    assert status == 1 and body["kind"] == "not_found" and set(body) == {"error", "kind"}
    assert body["error"] == "no tranche 9: the deal's tranches are 0 to 2 (CABS-A, CABS-B, CABS-C)"
    assert err.startswith("error: no tranche 9")


def test_a_refused_pool_create_on_a_new_data_dir_deploys_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 paths: dict[str, str]) -> None:
    """Opening a new data dir deploys the core contracts: a tape that would be refused is
    refused before that, so the data dir gets no chain and no deployment."""
    data = tmp_path / "fresh"
    for tape in (paths["bad_tape"], paths["huge_tape"], paths["garbage_tape"], str(tmp_path / "missing.csv")):
        assert cli.main(["--data-dir", str(data), "pool", "create", "--tape", tape, "--deal", paths["deal"]]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert not list(data.glob("deployment-*.json")) and not (data / "chain" / "journal.bin").exists()
    assert not (data / "pools").exists() or not any((data / "pools").iterdir())


def test_with_debug_the_traceback_is_shown(world: Cli) -> None:
    with pytest.raises(FileNotFoundError):
        cli.main(["--data-dir", str(world.data), "--debug", "report", "--interest", "1", "--principal", "0",
                  "--recoveries", "0", "--defaults", "0", "--loan-tape", str(world.root / "missing.csv")])
