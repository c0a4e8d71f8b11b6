"""A projection run through run_period_v2: a hand-checked two-tranche deal (WAL, window, IRR),
and the example deals (revolving purchases, the call, conservation every period)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chainabs.analytics.inputs import from_files
from chainabs.analytics.pool import Assumptions, PoolProjection
from chainabs.analytics.run import irr_annual, project_deal
from chainabs.errors import InvalidInput
from chainabs.tapegen import write_tape
from chainabs.waterfall import DealParams, TrancheSpec, check_conservation

ROOT = Path(__file__).resolve().parents[2]


def _small_deal() -> DealParams:
    return DealParams(tranches=(TrancheSpec("A", "A", 1000, 1200), TrancheSpec("B", "B", 200, 0)),
                      servicer_fee_bps=0, reserve_target_bps=0, initial_reserve=0, default_trigger_bps=10_000)


def test_wal_window_and_irr_by_hand() -> None:
    # The pool of test_one_loan_by_hand: (I, P) = (12, 597) then (6, 603). A's coupon is 1 % a
    # month: period 1 interest 10, principal owed 1200 - 603 = 597, residual 2 to B; period 2
    # interest floor(403 x 1 %) = 4, principal 403 to A and 200 to B, residual 2 to B.
    pool = PoolProjection(outstanding=[1200], rate_bps=[1200], remaining=[2], assumptions=Assumptions())
    run = project_deal(_small_deal(), pool, prices={"A": 100})
    a, b = run.tranches
    assert [r.tranches[0].cash_paid for r in run.periods] == [607, 407]
    assert [r.tranches[1].cash_paid for r in run.periods] == [2, 202]
    assert (a.principal, a.interest, a.loss, a.balance_end) == (1000, 14, 0, 0)
    assert (a.first_principal_period, a.last_principal_period) == (1, 2)
    assert (b.first_principal_period, b.last_principal_period) == (2, 2)
    assert a.wal_years == pytest.approx((1 * 597 + 2 * 403) / 1000 / 12, abs=1e-15)
    assert b.wal_years == pytest.approx(2 / 12, abs=1e-15)
    # IRR: -1000 + 607 x + 407 x^2 = 0 with x = 1 / (1 + r); annualised (1 + r)^12 - 1
    x = (-607 + math.sqrt(607**2 + 4 * 407 * 1000)) / (2 * 407)
    assert a.irr == pytest.approx((1 / x) ** 12 - 1, abs=1e-9)
    assert b.irr is None  # no price given


def test_irr_of_a_level_bond() -> None:
    # 1 % a month for 12 months on par, then par back: the monthly yield is exactly 1 %
    assert irr_annual(1000, [10] * 11 + [1010]) == pytest.approx(1.01**12 - 1, abs=1e-10)
    assert irr_annual(1000, [0, 0]) is None


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tape") / "tape.csv"
    write_tape(path, 300, 11, "csv")
    return path


@pytest.mark.parametrize("deal", ["deal.toml", "deal-revolving.toml"])
def test_examples_conserve_and_run_out(deal: str, tape: Path) -> None:
    src = from_files(ROOT / "examples" / deal, tape)
    a = Assumptions(cdr_bps=800, cpr_bps=1000, recovery_bps=4000, lag=3, dq60_bps=300)
    run = project_deal(src.deal, src.loans.projection(a), call=True, average_loan=src.loans.average)
    for r in run.periods:
        check_conservation(r)
    last = run.periods[-1]
    assert last.pool_balance_end == 0 and sum(t.balance_end for t in last.tranches) == 0
    for k, s in enumerate(run.tranches):
        assert s.principal + s.loss == src.deal.tranches[k].face
    if not run.called_period:  # every assumed recovery reaches the waterfall, after the pool ran out too
        defaults = sum(r.defaulted_principal for r in run.periods)
        assert sum(r.recoveries for r in run.periods) == defaults * 4000 // 10_000
    if src.deal.revolving_periods:
        revolving = [r for r in run.periods if r.status == "revolving"]
        assert revolving and all(r.purchased_units > 0 for r in revolving)
        assert run.called_period == last.period and last.status == "called"
        assert all(r.tranches[0].principal_paid == 0 for r in revolving)


def test_unknown_priced_tranche_refused(tape: Path) -> None:
    src = from_files(ROOT / "examples" / "deal.toml", tape)
    with pytest.raises(InvalidInput, match="--price names tranche 'Z'"):
        project_deal(src.deal, src.loans.projection(Assumptions()), prices={"Z": 99.0})
    with pytest.raises(InvalidInput, match="--periods"):
        project_deal(src.deal, src.loans.projection(Assumptions()), periods=0)
