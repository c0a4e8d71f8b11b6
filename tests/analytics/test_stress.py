"""The stress grid: every cell is the projection at that CDR and CPR, the same with two worker
processes as in one; ranges refused with a sentence naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainabs.analytics.inputs import from_files
from chainabs.analytics.pool import Assumptions
from chainabs.analytics.run import project_deal
from chainabs.analytics.stress import bps_range, stress_grid
from chainabs.errors import InvalidInput
from chainabs.tapegen import write_tape

ROOT = Path(__file__).resolve().parents[2]


def test_grid_cells_are_projections(tmp_path: Path) -> None:
    write_tape(tmp_path / "t.csv", 80, 2, "csv")
    src = from_files(ROOT / "examples" / "deal.toml", tmp_path / "t.csv")
    base = Assumptions(recovery_bps=4000, lag=3)
    cdrs, cprs = bps_range("--cdr", "0:30:15"), bps_range("--cpr", "0:20:10")
    assert (cdrs, cprs) == ([0, 1500, 3000], [0, 1000, 2000])
    two = stress_grid(src.deal, src.loans, base, cdrs=cdrs, cprs=cprs, prices={"Class A": 99.0}, workers=2)
    one = stress_grid(src.deal, src.loans, base, cdrs=cdrs, cprs=cprs, prices={"Class A": 99.0}, workers=1)
    assert two == one and [(c.cdr_bps, c.cpr_bps) for c in one] == [(c, p) for c in cdrs for p in cprs]
    cell = one[5]
    run = project_deal(src.deal, src.loans.projection(Assumptions(cdr_bps=1500, cpr_bps=2000, recovery_bps=4000,
                                                                  lag=3)),
                       prices={"Class A": 99.0}, average_loan=src.loans.average)
    assert cell.tranches == tuple(run.tranches)
    losses = [c.tranches[2].loss for c in one if c.cpr_bps == 0]
    assert losses == sorted(losses) and losses[-1] > 0


@pytest.mark.parametrize("text", ["5:1:1", "0:10:0", "a:b:c", "0:101:1", "-1:5:1", "1:2"])
def test_bad_range_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInput, match="^--cpr "):
        bps_range("--cpr", text)
