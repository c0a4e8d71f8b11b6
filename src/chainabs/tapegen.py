"""Deterministic synthetic loan tapes (TAPE.md) for demos, tests and benchmarks.

Everything random comes from one `random.Random(seed)`, so the same arguments give
byte-identical files. The book is a consumer-loan portfolio as of `as_of` (default 2026-10-01):
credit lines, cash loans and shopping instalments; loans still running at `as_of` carry an
amortised balance, a few percent are delinquent, defaulted or repaid, about 30 % are jointly
funded. No generated tape breaks a TAPE.md rule, so `read_tape` accepts every one.
"""

from __future__ import annotations

import calendar
import csv
import functools
import json
import math
import os
import random
from collections.abc import Iterator
from datetime import date, timedelta

from chainabs.tape import COLUMNS

AS_OF = date(2026, 10, 1)
HISTORY_DAYS = 730
JOINT_FRACTION = 0.30

# (product, weight, median principal, terms in months, repayment types with weights)
_PRODUCTS = (
    ("credit", 0.30, 4_000.0, (12, 24, 36), (("interest_only", 0.7), ("amortizing", 0.3))),
    ("cash", 0.45, 8_000.0, (6, 12, 18, 24, 30, 36), (("amortizing", 0.9), ("bullet", 0.1))),
    ("installment", 0.25, 1_500.0, (3, 6, 9, 12, 18, 24), (("amortizing", 1.0),)),
)
_STATUSES = (("current", 0.900), ("dpd_1_30", 0.035), ("dpd_31_60", 0.015), ("dpd_61_90", 0.010),
             ("dpd_90_plus", 0.010), ("defaulted", 0.012), ("repaid", 0.018))
_MONTHS_BEHIND = {"current": 0, "dpd_1_30": 1, "dpd_31_60": 2, "dpd_61_90": 3}
_REGIONS = ("DE-BY", "DE-NW", "DE-BE", "FR-IDF", "FR-ARA", "ES-MD", "ES-CT", "IT-LOM", "IT-LAZ",
            "NL-NH", "PL-MZ", "PT-11", "AT-9", "BE-BRU", "IE-D")


def _pick(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for name, weight in choices:
        x -= weight
        if x < 0:
            return name
    return choices[-1][0]


@functools.cache
def _add_months(d: date, months: int) -> date:
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _months_elapsed(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if end.day < start.day else months


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _fraction(bps: int) -> str:
    """Whole bps as the shortest decimal fraction: 1825 -> 0.1825, 2500 -> 0.25, 10000 -> 1."""
    if bps == 10_000:
        return "1"
    return ("0." + f"{bps:04d}".rstrip("0")) if bps else "0"


def _balance_cents(principal: int, rate_bps: int, term: int, paid: int) -> int:
    """Annuity balance after `paid` monthly instalments."""
    r = rate_bps / 120_000
    if r == 0:
        return principal * (term - paid) // term
    growth = (1 + r) ** term
    return round(principal * (growth - (1 + r) ** paid) / (growth - 1))


def generate_loans(n: int, seed: int, *, currency: str = "EUR", as_of: date = AS_OF
                   ) -> Iterator[dict[str, str]]:
    """Yield `n` loan rows (column -> text, "" for an empty optional cell) in COLUMNS order."""
    rng = random.Random(seed)
    product_weights = tuple((p[0], p[1]) for p in _PRODUCTS)
    by_name = {p[0]: p for p in _PRODUCTS}
    borrowers: list[str] = []
    for i in range(n):
        name, _, median, terms, repayments = by_name[_pick(rng, product_weights)]
        status = _pick(rng, _STATUSES)
        term = rng.choice(terms)
        repayment = _pick(rng, repayments)
        if status == "repaid":     # anywhere in the history, finished
            origination = as_of - timedelta(days=rng.randrange(1, HISTORY_DAYS + 1))
        else:                      # still running at as_of
            span = min(HISTORY_DAYS, (as_of - _add_months(as_of, -term)).days - 1)
            origination = as_of - timedelta(days=rng.randrange(1, span + 1))
        maturity = _add_months(origination, term)

        principal = int(rng.lognormvariate(math.log(median), 0.8) * 100)
        principal = min(max(principal, 50_000), 5_000_000)
        bps = rng.randrange(1500, 2401) if rng.random() < 0.92 else rng.randrange(500, 3601)

        paid = min(max(_months_elapsed(origination, as_of), 0), term)
        if status == "repaid":
            outstanding = 0
        elif repayment == "amortizing":
            behind = _MONTHS_BEHIND.get(status, 4)
            outstanding = _balance_cents(principal, bps, term, max(0, paid - behind))
        elif name == "credit":     # drawn part of a credit line
            outstanding = principal * rng.randrange(20, 101) // 100
        else:
            outstanding = principal
        if status == "defaulted":
            outstanding = outstanding * rng.randrange(60, 101) // 100
        outstanding = min(max(outstanding, 0), principal)

        if borrowers and rng.random() < 0.08:
            borrower = rng.choice(borrowers)
        else:
            borrower = f"B{rng.getrandbits(64):016x}"
            borrowers.append(borrower)
        joint = rng.random() < JOINT_FRACTION
        share = _fraction(rng.randrange(1000, 5001)) if joint else ("1" if rng.random() < 0.1 else "")
        score = "" if rng.random() < 0.05 else str(min(950, max(300, int(rng.gauss(690, 90)))))
        region = "" if rng.random() < 0.03 else rng.choice(_REGIONS)
        yield {
            "loan_id": f"L{i + 1:07d}",
            "borrower_ref": borrower,
            "product": name,
            "currency": currency,
            "principal": _money(principal),
            "outstanding_principal": _money(outstanding),
            "annual_rate": _fraction(bps),
            "origination_date": origination.isoformat(),
            "maturity_date": maturity.isoformat(),
            "term_months": str(term),
            "repayment_type": repayment,
            "status": status,
            "funded_share": share,
            "credit_score": score,
            "region": region,
        }


_NUMERIC = frozenset({"principal", "outstanding_principal", "annual_rate", "term_months",
                      "funded_share", "credit_score"})


def _jsonl_line(row: dict[str, str]) -> str:
    """One JSON object; numbers as JSON number literals (exact text), empty optionals left out."""
    parts = []
    for key, value in row.items():
        if value == "":
            continue
        parts.append(f'"{key}": {value if key in _NUMERIC else json.dumps(value)}')
    return "{" + ", ".join(parts) + "}\n"


def write_tape(path: str | os.PathLike[str], n: int, seed: int, fmt: str = "csv", *,
               currency: str = "EUR", as_of: date = AS_OF) -> None:
    """Write an `n`-loan tape as CSV or JSON Lines."""
    rows = generate_loans(n, seed, currency=currency, as_of=as_of)
    with open(path, "w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(row.values() for row in rows)
        elif fmt == "jsonl":
            out.writelines(_jsonl_line(row) for row in rows)
        else:
            raise ValueError(f"unknown tape format {fmt!r} (csv or jsonl)")
