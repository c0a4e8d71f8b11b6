"""`chainabs project` on a deal that exists: from its on-chain state after the periods run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chainabs import deal as D
from chainabs.analytics.inputs import from_data_dir
from chainabs.analytics.pool import Assumptions
from chainabs.analytics.run import project_deal
from chainabs.waterfall import check_conservation
from support import DemoDeal, demo_deal


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDeal]:
    deal = demo_deal(tmp_path_factory, "analytics", loans=30, periods=2)
    yield deal
    deal.store.close()


def test_projects_from_the_current_state(demo: DemoDeal) -> None:
    state = D.read_state(demo.handle)
    src = from_data_dir(demo.ctx)
    assert src.state == state and src.loans.balance == state.pool_balance == src.state.pool_balance
    run = project_deal(src.deal, src.loans.projection(Assumptions(cdr_bps=500, cpr_bps=1000, recovery_bps=4000,
                                                                  lag=2)),
                       state=src.state, prices={"Class A": 99.0}, average_loan=src.loans.average)
    assert run.periods[0].period == state.period + 1
    assert [t.balance_start for t in run.periods[0].tranches] == state.tranche_balances
    for r in run.periods:
        check_conservation(r)
    for k, s in enumerate(run.tranches):
        assert s.balance_start == state.tranche_balances[k] == s.principal + s.loss
        assert s.first_principal_period is None or s.first_principal_period > state.period
    assert run.tranches[0].irr is not None


def test_projection_equals_the_chain_on_its_path(demo: DemoDeal) -> None:
    """Item 4 in part: the projected periods, posted as real reports on chain, give the chain's
    figures exactly, for every tranche and period (this runs last: it advances the chain)."""
    from chainabs.service.periods import post_period
    from chainabs.waterfall import PeriodReport

    src = from_data_dir(demo.ctx)
    a = Assumptions(cdr_bps=2500, cpr_bps=1500, recovery_bps=3000, lag=1)
    run = project_deal(src.deal, src.loans.projection(a), state=src.state, periods=3,
                       average_loan=src.loans.average)
    assert len(run.periods) == 3
    for projected in run.periods:
        report = PeriodReport(interest=projected.interest_collected, principal=projected.principal_collected,
                              recoveries=projected.recoveries, defaults=projected.defaulted_principal)
        posted = post_period(demo.ctx, demo.handle, demo.files, report, fund_servicer=True)
        assert posted.matches_model
        assert posted.result == projected.v1()
