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
