"""A stress grid: the projection over every (CDR, CPR) pair of two ranges, each cell's loss,
WAL and IRR per tranche, the cells spread over worker processes (`workers`, default 2: the
machine's cores are shared)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from chainabs.analytics.inputs import LoanArrays
from chainabs.analytics.pool import Assumptions
from chainabs.analytics.run import TrancheSummary, project_deal
from chainabs.errors import InvalidInput
from chainabs.waterfall import BPS, DealParams, DealState

MAX_CELLS = 10_000


@dataclass(frozen=True)
class Cell:
    cdr_bps: int
    cpr_bps: int
    tranches: tuple[TrancheSummary, ...]


def bps_range(option: str, text: str) -> list[int]:
    """`START:STOP:STEP` in percent, inclusive of STOP, as whole bps; one value without colons."""
    parts = text.split(":")
    try:
        values = [round(float(p) * 100) for p in parts]
    except ValueError:
        raise InvalidInput(f"{option} takes START:STOP:STEP in percent (or one value), got {text[:80]!r}") from None
    if len(values) == 1:
        values = [values[0], values[0], 1]
    if len(values) != 3 or values[2] <= 0 or values[0] > values[1]:
        raise InvalidInput(f"{option} takes START:STOP:STEP in percent with START <= STOP and STEP > 0, "
                           f"got {text[:80]!r}")
    if values[0] < 0 or values[1] > BPS:
        raise InvalidInput(f"{option} must stay from 0 to 100 %, got {text[:80]!r}")
    return list(range(values[0], values[1] + 1, values[2]))


def _cell(args: tuple[DealParams, LoanArrays, Assumptions, DealState | None, int, bool,
                      Mapping[str, float]]) -> Cell:
    deal, loans, a, state, periods, call, prices = args
    run = project_deal(deal, loans.projection(a), state=state, periods=periods, call=call, prices=prices,
                       average_loan=loans.average)
    return Cell(cdr_bps=a.cdr_bps, cpr_bps=a.cpr_bps, tranches=tuple(run.tranches))


def stress_grid(deal: DealParams, loans: LoanArrays, base: Assumptions, *, cdrs: list[int], cprs: list[int],
                state: DealState | None = None, periods: int = 360, call: bool = False,
                prices: Mapping[str, float] | None = None, workers: int = 2) -> list[Cell]:
    """Every (CDR, CPR) cell, CDR major; `workers` 1 runs in this process."""
    if len(cdrs) * len(cprs) > MAX_CELLS:
        raise InvalidInput(f"--cdr and --cpr make {len(cdrs) * len(cprs)} cells, at most {MAX_CELLS} are run")
    if cdrs and max(cdrs) >= BPS:
        raise InvalidInput("--cdr must stay below 100 %")
    jobs = [(deal, loans, replace(base, cdr_bps=c, cpr_bps=p), state, periods, call, dict(prices or {}))
            for c in cdrs for p in cprs]
    for job in jobs[:1]:
        job[2].validate()
    if workers <= 1:
        return [_cell(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_cell, jobs, chunksize=max(1, len(jobs) // (workers * 4))))
