"""The synthetic tape generator (chainabs.tapegen, scripts/make_tape.py)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from chainabs.tape import COLUMNS, STATUSES, Eligibility, format_day, parse_date, read_tape, summarize
from chainabs.tapegen import _add_months, generate_loans, write_tape

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_tape.py"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_same_seed_same_bytes(tmp_path, fmt: str) -> None:
    a, b, c = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}", tmp_path / f"c.{fmt}"
    write_tape(a, 2000, 11, fmt)
    write_tape(b, 2000, 11, fmt)
    write_tape(c, 2000, 12, fmt)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_generated_tape_is_well_formed(tmp_path, seed: int, fmt: str) -> None:
    path = tmp_path / f"t.{fmt}"
    write_tape(path, 3000, seed, fmt)
    tape = read_tape(path)
    assert len(tape.loans) == 3000 and tape.warnings == [] and tape.currency == "EUR"


def test_csv_and_jsonl_hold_the_same_loans(tmp_path) -> None:
    write_tape(tmp_path / "t.csv", 1000, 5, "csv")
    write_tape(tmp_path / "t.jsonl", 1000, 5, "jsonl")
    from_csv = [replace(loan, line=0) for loan in read_tape(tmp_path / "t.csv").loans]
    from_jsonl = [replace(loan, line=0) for loan in read_tape(tmp_path / "t.jsonl").loans]
    assert from_csv == from_jsonl


def test_portfolio_shape() -> None:
    rows = list(generate_loans(10_000, seed=9))
    assert [r["loan_id"] for r in rows[:2]] == ["L0000001", "L0000002"]
    assert all(tuple(r) == COLUMNS for r in rows)
    joint = [r for r in rows if r["funded_share"] not in ("", "1")]
    assert 0.27 < len(joint) / len(rows) < 0.33
    shares = [round(float(r["funded_share"]) * 10_000) for r in joint]
    assert min(shares) >= 1000 and max(shares) <= 5000
    products = {r["product"] for r in rows}
    assert products == {"credit", "cash", "installment"}
    principals = [float(r["principal"]) for r in rows]
    assert min(principals) >= 500 and max(principals) <= 50_000
    assert all(len(r["principal"].split(".")[1]) == 2 for r in rows)
    rates = [float(r["annual_rate"]) for r in rows]
    inside = sum(0.15 <= x <= 0.24 for x in rates) / len(rates)
    assert 0.85 < inside < 1 and max(rates) <= 0.36
    statuses = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    assert 0.85 < statuses["current"] / len(rows) < 0.95
    assert all(statuses[s] > 0 for s in STATUSES)
    assert all(r["outstanding_principal"] == "0.00" for r in rows if r["status"] == "repaid")
    scores = [r["credit_score"] for r in rows]
    assert 0 < scores.count("") < len(rows) * 0.1
    assert all(300 <= int(s) <= 950 for s in scores if s)
    assert all(r["borrower_ref"].startswith("B") and int(r["borrower_ref"][1:], 16) >= 0 for r in rows)
    assert len({r["borrower_ref"] for r in rows}) < len(rows)          # some repeat borrowers


def test_dates_and_amortisation() -> None:
    as_of = date(2026, 10, 1)
    for r in generate_loans(3000, seed=4):
        origination = date.fromisoformat(r["origination_date"])
        maturity = date.fromisoformat(r["maturity_date"])
        term = int(r["term_months"])
        assert 3 <= term <= 36
        assert date(2024, 10, 1) <= origination < as_of
        assert maturity == _add_months(origination, term)
        if r["status"] != "repaid":
            assert maturity > as_of                          # the book is live at the cut-off
        assert 0 <= float(r["outstanding_principal"]) <= float(r["principal"])


def test_eligibility_matters(tmp_path) -> None:
    write_tape(tmp_path / "t.csv", 5000, 8, "csv", currency="USD")
    tape = read_tape(tmp_path / "t.csv")
    cutoff = parse_date("2026-10-01")
    summary = summarize(tape, Eligibility(cutoff_day=cutoff))
    assert summary["cutoff"] == format_day(cutoff) == "2026-10-01"
    assert tape.currency == "USD"
    assert 0.85 < summary["eligible"] / summary["loans"] < 0.97
    assert summary["ineligible"].get("status:repaid", 0) > 0
    assert 1500 <= summary["wac_bps"] <= 2400


def test_script(tmp_path) -> None:
    out = tmp_path / "s.jsonl"
    done = subprocess.run([sys.executable, str(SCRIPT), "--loans", "50", "--seed", "3", "--out", str(out)],
                          capture_output=True, text=True, check=True)
    assert "wrote 50 loans" in done.stderr
    write_tape(tmp_path / "w.jsonl", 50, 3, "jsonl")
    assert out.read_bytes() == (tmp_path / "w.jsonl").read_bytes()
