"""Breakeven default rates: the lowest CDR, in whole basis points, at which a tranche first
loses one base unit of principal (`what="loss"`) or first misses interest (`what="interest"`:
some period pays less than the interest due), by bisection on integer bps of CDR.

Bisection assumes the event is monotone in CDR (more defaults never help a tranche), which the
sequential and pro-rata waterfalls with the usual triggers satisfy; the result is exact to the
basis point on the model: the tranche has the event at the returned CDR and not 1 bp below.
Each step is one full projection; 0..9999 bps takes at most 14 of them, plus the two ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from chainabs.analytics.inputs import LoanArrays
from chainabs.analytics.pool import BPS, Assumptions
from chainabs.analytics.run import Projection, project_deal
from chainabs.errors import InvalidInput
from chainabs.waterfall import DealParams, DealState

WHATS = ("loss", "interest")


@dataclass(frozen=True)
class Breakeven:
    tranche: str
    what: str
    recovery_bps: int
    cdr_bps: int | None  # None: no CDR below 100 % causes it
    projections: int


def tranche_index(deal: DealParams, name: str) -> int:
    """The tranche named `name` (its name or symbol); InvalidInput naming --tranche otherwise."""
    for k, t in enumerate(deal.tranches):
        if name in (t.name, t.symbol):
            return k
    raise InvalidInput(f"--tranche {name!r} is not a tranche of the deal (it has "
                       f"{', '.join(t.name for t in deal.tranches)})")


def hits(projection: Projection, k: int, what: str) -> bool:
    rows = [r.tranches[k] for r in projection.periods]
    if what == "loss":
        return sum(row.loss for row in rows) > 0
    return any(row.interest_paid < row.interest_due for row in rows)


def breakeven(deal: DealParams, loans: LoanArrays, assumptions: Assumptions, *, tranche: str,
              what: str = "loss", state: DealState | None = None, periods: int = 360,
              call: bool = False) -> Breakeven:
    if what not in WHATS:
        raise InvalidInput(f"--what must be loss or interest, got {what!r}")
    assumptions.validate()
    k = tranche_index(deal, tranche)
    count = 0

    def event(cdr: int) -> bool:
        nonlocal count
        count += 1
        scenario = replace(assumptions, cdr_bps=cdr)
        run = project_deal(deal, loans.projection(scenario), state=state, periods=periods, call=call,
                           average_loan=loans.average)
        return hits(run, k, what)

    cdr = bisect(event, 0, BPS - 1)
    return Breakeven(tranche=deal.tranches[k].name, what=what, recovery_bps=assumptions.recovery_bps,
                     cdr_bps=cdr, projections=count)


def bisect(event: Callable[[int], bool], low: int, high: int) -> int | None:
    """The least x in low..high with event(x), assuming event is monotone; None if none."""
    if event(low):
        return low
    if not event(high):
        return None
    while high - low > 1:  # event(low) is false, event(high) true
        mid = (low + high) // 2
        if event(mid):
            high = mid
        else:
            low = mid
    return high
