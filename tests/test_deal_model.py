"""The chain and the reference model agree to the unit on random deals and report sequences;
cash is conserved in the deal contract after every period; holders, whatever transfers happen
between periods, claim exactly the entitlement TrancheToken's accounting rule gives them.

Each Hypothesis example deploys its own deal (its parameters are drawn) on the session chain
and reverts to the snapshot taken before it, so examples never see each other's state.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, WaterfallError
from chainabs.waterfall import DealParams, DealState, PeriodReport, TrancheSpec, check_conservation, run_period
from support import Entitlements

M = D.MAGNITUDE
ROOT = b"\x03" * 32
KINDS = ["normal", "zero", "total_default", "recoveries", "shortfall", "exhaust", "prepay", "bad_b1",
         "too_many_defaults", "transfer", "claim"]

Op = tuple[str, int, int]


@st.composite
def deals_and_ops(draw: st.DrawFn) -> tuple[DealParams, list[Op]]:
    n = draw(st.integers(2, 5))
    balance = draw(st.integers(10_000, 50_000_000))
    weights = draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))
    faces = [max(1, balance * w // sum(weights)) for w in weights[:-1]]
    faces.append(balance - sum(faces))
    if min(faces) <= 0:
        faces = [balance // n] * (n - 1) + [balance - (balance // n) * (n - 1)]
    coupons = [draw(st.integers(0, 1_500)) for _ in range(n - 1)] + [0]
    params = DealParams(
        tranches=tuple(TrancheSpec(f"T{k}", f"T{k}", f, c) for k, (f, c) in enumerate(zip(faces, coupons, strict=True))),
        servicer_fee_bps=draw(st.integers(0, 300)), reserve_target_bps=draw(st.integers(0, 500)),
        initial_reserve=draw(st.integers(0, balance // 20)), default_trigger_bps=draw(st.integers(0, 2_000)))
    ops: list[Op] = []
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=2, max_size=8)):
        a, b = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
        repeat = draw(st.integers(2, 4)) if kind in ("shortfall", "exhaust") else 1  # long shortfalls
        ops.extend([(kind, a, b)] * repeat)
    return params, ops


def _report(kind: str, a: int, b: int, pool_balance: int) -> PeriodReport:
    if kind in ("zero", "exhaust"):
        return PeriodReport(0, 0, 0, 0)
    if kind == "total_default":
        return PeriodReport(a % 100, 0, 0, pool_balance)
    if kind == "recoveries":  # recoveries larger than interest
        return PeriodReport(a % 50, 0, b + 100, 0)
    if kind == "shortfall":
        return PeriodReport(a % 7, 0, 0, min(pool_balance, b % 1_000))
    if kind == "prepay":  # enough principal to pay the senior tranches off
        return PeriodReport(a % 1_000, pool_balance * (50 + a % 51) // 100, 0, 0)
    if kind == "too_many_defaults":
        return PeriodReport(0, b % 3, 0, pool_balance + 1)
    principal = min(pool_balance, a % (pool_balance // 5 + 1))
    defaults = min(pool_balance - principal, b % (pool_balance // 20 + 1))
    return PeriodReport(pool_balance // 100 + a % 1_000, principal, b % 500, defaults)


def _assert_conserved(chain: EmbeddedChain, handle: D.DealHandle, state: DealState) -> None:
    ledger = D.cash_ledger(handle)
    for p, c, o, d in zip(ledger.paid, ledger.claimed, ledger.owed, ledger.dust, strict=True):
        assert p == c + o + d and c <= p
    held = chain.call(handle.settlement.functions.balanceOf(handle.deal.address))
    assert held == state.reserve + sum(ledger.owed) + sum(ledger.dust)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=deals_and_ops())
def test_chain_equals_model_conserves_cash_and_pays_exact_entitlements(
        session_chain: EmbeddedChain, core: Manifest, case: tuple[DealParams, list[Op]]) -> None:
    params, ops = case
    chain = session_chain
    snap = chain.snapshot()
    try:
        _run_case(chain, core, params, ops)
    finally:
        chain.revert(snap)


def _run_case(chain: EmbeddedChain, core: Manifest, params: DealParams, ops: list[Op]) -> None:
    a = chain.accounts
    admin, fee_to = a[0], a[4]
    holders = [admin, a[1], a[2]]
    roles = D.DealRoles(admin=admin, operator=admin, servicer=admin, originator=admin, fee_recipient=fee_to,
                        compliance=admin, agent=admin)
    n = len(params.tranches)
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[params.initial_balance])
    handle = D.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=roles)
    for who in holders:
        chain.send(handle.settlement.functions.mint(who, 10**15), sender=core.deployer)
    D.add_investors(handle, investors=holders, eligible_until=2**39)
    D.open_offering(handle)
    model = Entitlements(n)
    bought = {(0, a[1]): max(1, params.tranches[0].face // 2), (n - 1, a[2]): max(1, params.tranches[-1].face // 3)}
    for (k, who), units in bought.items():
        D.subscribe(handle, investor=who, tranche=k, units=units)
    D.close(handle)
    for k, spec in enumerate(params.tranches):
        for who in holders:
            model.units[k][who] = bought.get((k, who), 0)
        model.units[k][admin] = spec.face - sum(bought.get((k, w), 0) for w in holders[1:])
    for k, token in enumerate(handle.tokens):
        assert chain.call(token.functions.totalSupply()) == params.tranches[k].face

    state = DealState.initial(params)
    fees = 0
    fee_start = chain.call(handle.settlement.functions.balanceOf(fee_to))
    for kind, x, y in ops:
        if kind == "transfer":
            k, src, dst = x % n, holders[x % 3], holders[(x + 1 + y % 2) % 3]
            units = model.units[k][src] * (y % 101) // 100
            if units:
                D.transfer(handle, tranche=k, sender=src, to=dst, units=units)
                model.units[k][src] -= units
                model.units[k][dst] += units
            continue
        if kind == "claim":
            who = holders[x % 3]
            expected = sum(model.claim(k, who) for k in range(n))
            assert D.claim(handle, holder=who) == expected
            _assert_conserved(chain, handle, state)
            continue
        report = _report(kind, x, y, state.pool_balance)
        if kind == "bad_b1":
            b1 = state.pool_balance - report.principal - report.defaults
            with pytest.raises(ContractRevert) as info:
                D.post_report(handle, report=report, loan_root=ROOT, loan_count=1, pool_balance_end=b1 + 1)
            assert info.value.name == "PoolBalanceMismatch"
            assert D.read_state(handle) == state
            continue
        try:
            expected, new_state = run_period(params, state, report)
        except WaterfallError:
            with pytest.raises(ContractRevert) as info:
                D.post_report(handle, report=report, loan_root=ROOT, loan_count=1)
            assert "Exceed" in info.value.name
            assert D.read_state(handle) == state
            continue
        check_conservation(expected)
        onchain = D.post_report(handle, report=report, loan_root=ROOT, loan_count=1)
        assert onchain == expected
        assert D.read_period(handle, n=expected.period) == onchain
        state = new_state
        assert D.read_state(handle) == state
        fees += expected.fee_paid
        for k, t in enumerate(expected.tranches):
            model.credit(k, t.cash_paid)
        _assert_conserved(chain, handle, state)
        assert chain.call(handle.settlement.functions.balanceOf(fee_to)) - fee_start == fees

    for k, token in enumerate(handle.tokens):
        assert chain.call(token.functions.carry()) == model.carry[k]
        for who in holders:
            assert chain.call(token.functions.balanceOf(who)) == model.units[k][who]
            assert chain.call(token.functions.entitlementOf(who)) == model.ent[k].get(who, 0)
    for who in holders:
        expected = sum(model.claim(k, who) for k in range(n))
        assert D.claim(handle, holder=who) == expected
    _assert_conserved(chain, handle, state)
    ledger = D.cash_ledger(handle)
    assert all(chain.call(t.functions.claimableOf(w)) == 0 for t in handle.tokens for w in holders)
    for k in range(n):
        assert ledger.dust[k] <= params.tranches[k].face // M + 1


def test_strategy_draws_every_kind() -> None:
    """The strategy can draw every kind, including the long runs (a guard on the generator)."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None)
    @given(case=deals_and_ops())
    def collect(case: tuple[DealParams, list[Op]]) -> None:
        seen.update(kind for kind, _, _ in case[1])

    collect()
    assert seen == set(KINDS)
