"""A pool folder written straight into a data dir (as `pool create` leaves it, without a chain),
the revolving deal file with chosen concentration limits, and purchase tapes: what the tests
of `check_purchase` and of `chainabs purchase check` build alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainabs.datadir import DataDir, PoolDir, PoolRecord
from chainabs.dealfile import DealFile, parse_deal_file
from chainabs.pool import commit, committed_rows
from chainabs.tape import COLUMNS, apply_eligibility, parse_tape
from support import csv_bytes

ROOT = Path(__file__).resolve().parents[1]
REVOLVING = (ROOT / "examples" / "deal-revolving.toml").read_text()
POOL_NAME = "Consumer Loans 2026-R1"
UNITS = 10**6  # base units per EUR (6 decimals)


def deal_text(*, region: str | None = "40%", borrower: str | None = "2000.00", wac: int | None = 1800) -> str:
    """The revolving example deal file with these [concentration] limits (None: left out)."""
    head = REVOLVING[:REVOLVING.index("[concentration]")]
    lines = ["[concentration]"]
    if region is not None:
        lines.append(f'max_region_share = "{region}"')
    if borrower is not None:
        lines.append(f'max_borrower_outstanding = "{borrower}"')
    if wac is not None:
        lines.append(f"min_wac_bps = {wac}")
    return head + "\n".join(lines) + "\n"


def deal(**limits: Any) -> DealFile:
    return parse_deal_file(deal_text(**limits))


def loan(loan_id: str, *, borrower: str | None = None, outstanding: str = "1000.00", rate: str = "0.2000",
         region: str = "DE-BY", status: str = "current", maturity: str = "2028-01-15", **cells: str) -> dict[str, str]:
    """One tape row (TAPE.md), eligible under the revolving deal unless told otherwise."""
    return {"loan_id": loan_id, "borrower_ref": borrower or f"ref-{loan_id}", "product": "cash",
            "currency": "EUR", "principal": "10000.00", "outstanding_principal": outstanding,
            "annual_rate": rate, "origination_date": "2025-01-15", "maturity_date": maturity,
            "term_months": "36", "repayment_type": "amortizing", "status": status, "funded_share": "",
            "credit_score": "700", "region": region, **cells}


def tape_bytes(rows: list[dict[str, str]], columns: list[str] | tuple[str, ...] = COLUMNS) -> bytes:
    return csv_bytes(rows, columns)


def write_tape(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_bytes(tape_bytes(rows))
    return path


def make_pool(data_dir: Path, rows: list[dict[str, str]], dealfile: DealFile | None = None) -> PoolDir:
    """The pool folder `pool create` writes for these rows (its eligible loans committed under a
    new salt), marked filled; no chain involved."""
    dealfile = dealfile or deal()
    folder = DataDir(data_dir).pool(dealfile.pool.name)
    folder.create()
    loans, _ = apply_eligibility(parse_tape(tape_bytes(rows)).loans, dealfile.eligibility())
    salt = folder.salt()
    commitment = commit(loans, salt)
    folder.write_loans(committed_rows(loans, salt))
    folder.write_tree(commitment.tree)
    folder.write_record(PoolRecord(
        name=dealfile.pool.name, currency="EUR", decimals=6, chain_id=1, tape_sha256="0" * 64,
        root=commitment.root, loan_count=len(loans), outstanding_units=sum(x.outstanding_units for x in loans),
        principal_units=sum(x.principal_units for x in loans), address="0x" + "11" * 20, status="filled"))
    return folder


def four_regions() -> list[dict[str, str]]:
    """The usual pool: four loans of 1,000.00 at 20 %, one per region and borrower."""
    return [loan(f"P{i}", region=r, borrower=f"B{i}") for i, r in enumerate(("AT", "BE", "CZ", "DK"), 1)]


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file and folder under `root` with its bytes, mode and modification time."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = (p.read_bytes() if p.is_file() else b"", st.st_mode, st.st_mtime_ns)
    return out
