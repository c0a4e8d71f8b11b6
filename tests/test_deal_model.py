"""The chain and the reference model agree to the unit on random deals and report sequences,
and cash is conserved in the deal contract after every period."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, WaterfallError
from chainabs.waterfall import DealParams, DealState, PeriodReport, TrancheSpec, run_period


@st.composite
def deals_and_reports(draw: st.DrawFn) -> tuple[DealParams, list[tuple[int, int, int, int]]]:
    n = draw(st.integers(2, 5))
    balance = draw(st.integers(10_000, 50_000_000))
    weights = draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))
    faces = [balance * w // sum(weights) for w in weights[:-1]]
    faces.append(balance - sum(faces))
    if min(faces) <= 0:
        faces = [balance // n] * (n - 1) + [balance - (balance // n) * (n - 1)]
    coupons = [draw(st.integers(0, 1_500)) for _ in range(n - 1)] + [0]
    params = DealParams(
        tranches=tuple(TrancheSpec(f"T{k}", f"T{k}", f, c) for k, (f, c) in enumerate(zip(faces, coupons))),
        servicer_fee_bps=draw(st.integers(0, 300)), reserve_target_bps=draw(st.integers(0, 500)),
        initial_reserve=draw(st.integers(0, balance // 20)), default_trigger_bps=draw(st.integers(0, 2_000)))
    kinds = st.sampled_from(["normal", "zero", "total_default", "recoveries", "shortfall"])
    shapes = []
    for kind in draw(st.lists(kinds, min_size=1, max_size=5)):
        shapes.append((kind, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))))
    return params, shapes


def _report(kind: str, a: int, b: int, pool_balance: int) -> PeriodReport:
    if kind == "zero":
        return PeriodReport(0, 0, 0, 0)
    if kind == "total_default":
        return PeriodReport(0, 0, 0, pool_balance)
    if kind == "recoveries":
        return PeriodReport(a % 50, 0, b + 100, 0)
    if kind == "shortfall":
        return PeriodReport(a % 7, 0, 0, min(pool_balance, b % 1_000))
    principal = min(pool_balance, a % (pool_balance // 5 + 1))
    defaults = min(pool_balance - principal, b % (pool_balance // 20 + 1))
    return PeriodReport(pool_balance // 100 + a % 1_000, principal, b % 500, defaults)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=deals_and_reports())
def test_chain_equals_model_and_conserves_cash(session_chain: EmbeddedChain, core: Manifest,
                                               case: tuple[DealParams, list[tuple[str, int, int]]]) -> None:
    params, shapes = case
    chain = session_chain
    snap = chain.snapshot()
    try:
        admin = chain.accounts[0]
        pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[params.initial_balance])
        handle = D.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=D.DealRoles.single(admin))
        chain.send(handle.settlement.functions.mint(admin, 10**15))
        D.add_investors(handle, investors=[admin, chain.accounts[1]], eligible_until=2**39)
        D.open_offering(handle)
        D.subscribe(handle, investor=admin, tranche=0, units=params.tranches[0].face)
        D.close(handle)
        D.transfer(handle, tranche=0, sender=admin, to=chain.accounts[1], units=params.tranches[0].face // 3)
        state = DealState.initial(params)
        for kind, a, b in shapes:
            report = _report(kind, a, b, state.pool_balance)
            try:
                expected, state = run_period(params, state, report)
            except WaterfallError:
                with pytest.raises(ContractRevert):
                    D.post_report(handle, report=report, loan_root=b"\x01" * 32, loan_count=1)
                continue
            onchain = D.post_report(handle, report=report, loan_root=b"\x01" * 32, loan_count=1)
            assert onchain == expected
            ledger = D.cash_ledger(handle)
            held = chain.call(handle.settlement.functions.balanceOf(handle.deal.address))
            assert held == state.reserve + sum(p - c for p, c in zip(ledger.paid, ledger.claimed))
            assert all(o + d <= p - c for p, c, o, d in zip(ledger.paid, ledger.claimed, ledger.owed, ledger.dust))
        assert D.read_state(handle) == state
        for holder in (admin, chain.accounts[1]):
            D.claim(handle, holder=holder)
        ledger = D.cash_ledger(handle)
        assert all(c <= p for p, c in zip(ledger.paid, ledger.claimed))
    finally:
        chain.revert(snap)
