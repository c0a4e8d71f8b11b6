"""A pool's eligibility criteria applied to a tape's loans, and the summary `chainabs tape check`
prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainabs.tape.model import (
    PRODUCTS,
    STATUSES,
    Eligibility,
    Loan,
    Tape,
    format_day,
    remaining_months,
)

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
            cached = months_cache.get(loan.maturity_day)
            if cached is None:
                cached = months_cache[loan.maturity_day] = remaining_months(cutoff, loan.maturity_day)
            months = cached
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
