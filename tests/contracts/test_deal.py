"""The deal on chain: WATERFALL.md's worked example to the unit, every boundary of the waterfall,
refused reports, and holders' exact entitlements through transfers and forced transfers.

One deal is deployed once per session (left in the Open phase with its subscriptions placed);
every test runs from a snapshot of that state and is reverted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert
from chainabs.waterfall import (
    DealParams,
    DealState,
    PeriodReport,
    PeriodResult,
    TrancheSpec,
    check_conservation,
    run_period,
)
from support import DealEnv as Env
from support import Entitlements, open_offering

EXAMPLE = DealParams(
    tranches=(TrancheSpec("Senior A", "A", 800_000, 400), TrancheSpec("Mezzanine B", "B", 120_000, 800),
              TrancheSpec("Equity C", "C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500,
)
EXAMPLE_REPORTS = (PeriodReport(15_000, 80_000, 0, 5_000), PeriodReport(9_000, 60_000, 2_000, 60_000),
                   PeriodReport(500, 0, 0, 0))
ROOT = b"\x01" * 32
M = D.MAGNITUDE


@pytest.fixture(scope="module")
def deal_env(session_chain: EmbeddedChain, core: Manifest) -> Iterator[Env]:
    """The worked example's deal, offering open: alice 500,000 A, bob 300,000 A, carol 120,000 B;
    C is left unsold (the originator receives it at closing). Reverted after the module."""
    base = session_chain.snapshot()
    yield open_offering(session_chain, core, params=EXAMPLE, outstanding=[600_000, 400_000],
                        subscriptions=[("alice", 0, 500_000), ("bob", 0, 300_000), ("carol", 1, 120_000)])
    session_chain.revert(base)


def _cash(env: Env, who: str) -> int:
    return int(env.chain.call(env.h.settlement.functions.balanceOf(who)))


def _post(env: Env, state: DealState, report: PeriodReport) -> tuple[PeriodResult, DealState]:
    """Post on chain and run the model; they must agree to the unit, the stored period too."""
    expected, state = run_period(EXAMPLE, state, report)
    check_conservation(expected)
    onchain = D.post_report(env.h, report=report, loan_root=ROOT, loan_count=2)
    assert onchain == expected
    assert D.read_period(env.h, n=expected.period) == onchain
    assert D.read_state(env.h) == state
    _assert_cash_conserved(env, state)
    return onchain, state


def _assert_cash_conserved(env: Env, state: DealState) -> None:
    ledger = D.cash_ledger(env.h)
    for p, c, o, d in zip(ledger.paid, ledger.claimed, ledger.owed, ledger.dust, strict=True):
        assert p == c + o + d
    assert _cash(env, env.h.deal.address) == state.reserve + sum(ledger.owed) + sum(ledger.dust)


# -- the worked example ------------------------------------------------------------------------

def test_worked_example_matches_model_and_table(closed: Env) -> None:
    env = closed
    fee_before = _cash(env, env.roles.fee_recipient)
    state = DealState.initial(EXAMPLE)
    results = []
    for report in EXAMPLE_REPORTS:
        result, state = _post(env, state, report)
        results.append(result)
    p1, p2, p3 = results
    # period 1
    assert (p1.pool_balance_start, p1.pool_balance_end) == (1_000_000, 915_000)
    assert p1.fee_paid == 833 and p1.reserve_drawn == 0
    assert [t.interest_paid for t in p1.tranches] == [2_666, 800, 0]
    assert (p1.reserve_released, p1.reserve_added, p1.reserve_end) == (850, 0, 9_150)
    assert not p1.trigger_breached
    assert [t.principal_paid for t in p1.tranches] == [85_000, 0, 0]
    assert [t.loss for t in p1.tranches] == [0, 0, 0]
    assert p1.residual_paid == 6_551
    assert [t.balance_end for t in p1.tranches] == [715_000, 120_000, 80_000]
    # period 2
    assert (p2.pool_balance_start, p2.pool_balance_end) == (915_000, 795_000)
    assert p2.fee_paid == 762
    assert [t.interest_paid for t in p2.tranches] == [2_383, 800, 0]
    assert (p2.reserve_released, p2.reserve_end) == (1_200, 7_950)
    assert p2.trigger_breached
    assert [t.principal_paid for t in p2.tranches] == [68_255, 0, 0]
    assert [t.loss for t in p2.tranches] == [0, 0, 51_745]
    assert p2.residual_paid == 0
    assert [t.balance_end for t in p2.tranches] == [646_745, 120_000, 28_255]
    # period 3: 500 of AF to the fee, the rest of the fee and all interest from the reserve
    assert (p3.pool_balance_start, p3.pool_balance_end) == (795_000, 795_000)
    assert p3.fee_due == 662 and p3.fee_paid == 662
    assert p3.reserve_drawn == 162 + 2_155 + 800
    assert [t.interest_paid for t in p3.tranches] == [2_155, 800, 0]
    assert p3.reserve_end == 4_833 and p3.reserve_added == 0 and p3.reserve_released == 0
    assert p3.trigger_breached
    assert [t.principal_paid for t in p3.tranches] == [0, 0, 0] and p3.residual_paid == 0
    assert [t.balance_end for t in p3.tranches] == [646_745, 120_000, 28_255]
    # the fee went to the fee recipient; the tranches' cash was credited to their tokens
    assert _cash(env, env.roles.fee_recipient) - fee_before == 833 + 762 + 662
    ledger = D.cash_ledger(env.h)
    assert list(ledger.paid) == [sum(r.tranches[k].cash_paid for r in results) for k in range(3)]
    assert list(ledger.paid) == [2_666 + 85_000 + 2_383 + 68_255 + 2_155, 2_400, 6_551]
    for n, result in enumerate(results, 1):
        assert D.read_period(env.h, n=n) == result


# -- boundaries ----------------------------------------------------------------------------------

def test_fee_and_interest_shortfall_paid_from_reserve(closed: Env) -> None:
    result, state = _post(closed, DealState.initial(EXAMPLE), PeriodReport(0, 0, 0, 0))
    assert result.fee_paid == result.fee_due == 833
    assert [t.interest_paid for t in result.tranches] == [2_666, 800, 0]
    assert result.reserve_drawn == 833 + 2_666 + 800
    assert result.reserve_end == 10_000 - 4_299 and result.reserve_added == 0
    assert all(t.interest_unpaid == 0 for t in result.tranches)
    assert state.unpaid_fee == 0


def test_reserve_exhausted_then_interest_carried_without_interest_on_interest(closed: Env) -> None:
    env = closed
    state = DealState.initial(EXAMPLE)
    zero = PeriodReport(0, 0, 0, 0)
    _, state = _post(env, state, zero)
    _, state = _post(env, state, zero)
    assert state.reserve == 10_000 - 2 * 4_299
    r3, state = _post(env, state, zero)  # 1,402 left: fee 833, then 569 of A's 2,666
    assert r3.reserve_end == 0 and r3.reserve_drawn == 1_402
    assert r3.fee_paid == 833
    assert [t.interest_paid for t in r3.tranches] == [569, 0, 0]
    assert [t.interest_unpaid for t in r3.tranches] == [2_097, 800, 0]
    r4, state = _post(env, state, zero)  # nothing at all: the fee is carried too
    assert r4.fee_paid == 0 and r4.reserve_drawn == 0 and state.unpaid_fee == 833
    assert [t.interest_due for t in r4.tranches] == [2_666 + 2_097, 800 + 800, 0]
    assert [t.interest_unpaid for t in r4.tranches] == [2_666 + 2_097, 1_600, 0]
    r5, state = _post(env, state, PeriodReport(20_000, 0, 0, 0))  # catches up, refills the reserve
    assert r5.fee_due == 833 + 833 and r5.fee_paid == r5.fee_due
    assert [t.interest_due for t in r5.tranches] == [2_666 * 2 + 2_097, 2_400, 0]
    assert all(t.interest_unpaid == 0 for t in r5.tranches)
    assert r5.reserve_added == 20_000 - 1_666 - 7_429 - 2_400
    assert r5.residual_paid == 0


def test_trigger_breach_turbo_and_for_good(closed: Env) -> None:
    env = closed
    state = DealState.initial(EXAMPLE)
    r1, state = _post(env, state, PeriodReport(10_000, 0, 0, 50_000))  # exactly 500 bps: not breached
    assert not r1.trigger_breached
    r2, state = _post(env, state, PeriodReport(10_000, 0, 0, 1))  # now strictly above
    assert r2.trigger_breached and state.trigger_breached
    assert r2.residual_paid == 0 and r2.tranches[0].principal_paid > 0  # turbo: all cash to A
    r3, state = _post(env, state, PeriodReport(10_000, 0, 0, 0))
    assert r3.trigger_breached and r3.residual_paid == 0
    assert sum(t.balance_end for t in r3.tranches) < r3.pool_balance_end
    assert env.chain.call(env.h.deal.functions.triggerBreached())


def test_total_loss(closed: Env) -> None:
    env = closed
    result, state = _post(env, DealState.initial(EXAMPLE), PeriodReport(0, 0, 0, 1_000_000))
    assert result.pool_balance_end == 0 and result.trigger_breached
    assert [t.balance_end for t in result.tranches] == [0, 0, 0]
    assert result.tranches[2].loss == 80_000 and result.tranches[1].loss == 120_000
    # the reserve paid fee and interest, then its target fell to 0: the rest went to A as principal
    assert result.reserve_end == 0
    assert result.tranches[0].principal_paid == 10_000 - 833 - 2_666 - 800
    assert result.tranches[0].loss == 800_000 - result.tranches[0].principal_paid
    # nothing is left to lose; an empty period afterwards still agrees
    with pytest.raises(ContractRevert) as info:
        D.post_report(env.h, report=PeriodReport(0, 0, 0, 1), loan_root=ROOT, loan_count=0)
    assert info.value.name == "DefaultsExceedPoolBalance"
    _post(env, state, PeriodReport(0, 0, 0, 0))


def test_recoveries_only(closed: Env) -> None:
    result, _ = _post(closed, DealState.initial(EXAMPLE), PeriodReport(0, 0, 50_000, 0))
    assert result.reserve_drawn == 0 and result.fee_paid == 833
    assert [t.principal_paid for t in result.tranches] == [0, 0, 0]
    assert result.residual_paid == 50_000 - 833 - 2_666 - 800
    assert result.tranches[2].cash_paid == result.residual_paid


def test_a_tranche_paid_off(closed: Env) -> None:
    env = closed
    state = DealState.initial(EXAMPLE)
    r1, state = _post(env, state, PeriodReport(10_000, 850_000, 0, 0))
    assert [t.principal_paid for t in r1.tranches] == [800_000, 50_000, 0]
    assert [t.balance_end for t in r1.tranches] == [0, 70_000, 80_000]
    r2, state = _post(env, state, PeriodReport(1_000, 10_000, 0, 0))
    assert r2.tranches[0].interest_due == 0 and r2.tranches[0].cash_paid == 0
    assert r2.tranches[1].principal_paid == 10_000
    assert env.chain.call(env.h.deal.functions.principalOf(0, env.alice)) == 0


def test_bad_reports_are_refused(closed: Env) -> None:
    env = closed
    h = env.h
    f = h.deal.functions
    servicer = env.roles.servicer
    chain = env.chain
    chain.send(h.settlement.functions.approve(h.deal.address, 10**9), sender=servicer)

    def refused(*args: object, sender: str = servicer) -> ContractRevert:
        with pytest.raises(ContractRevert) as info:
            chain.send(f.postReport(*args), sender=sender)
        return info.value

    err = refused(1, 100, 1_000, 0, 0, 999_001, ROOT, 1)
    assert err.name == "PoolBalanceMismatch" and err.args_ == {"expected": 999_000, "reported": 999_001}
    assert refused(1, 0, 0, 0, 1_000_001, 0, ROOT, 1).name == "DefaultsExceedPoolBalance"
    assert refused(1, 0, 600_000, 0, 500_000, 0, ROOT, 1).name == "PrincipalAndDefaultsExceedPoolBalance"
    assert refused(2, 0, 0, 0, 0, 1_000_000, ROOT, 1).name == "ReportOutOfOrder"
    assert refused(1, 0, 0, 0, 0, 1_000_000, ROOT, 1, sender=env.stranger).name == "AccessControlUnauthorizedAccount"
    assert refused(1, 0, 0, 0, 0, 1_000_000, ROOT, 1, sender=env.roles.admin).name == "AccessControlUnauthorizedAccount"
    assert D.read_state(h) == DealState.initial(EXAMPLE)
    chain.send(f.postReport(1, 0, 0, 0, 0, 1_000_000, ROOT, 1), sender=servicer)
    assert refused(1, 0, 0, 0, 0, 1_000_000, ROOT, 1).name == "ReportOutOfOrder"  # twice


def test_report_before_close_refused(env: Env) -> None:
    with pytest.raises(ContractRevert) as info:
        D.post_report(env.h, report=PeriodReport(1, 0, 0, 0), loan_root=ROOT, loan_count=1)
    assert info.value.name == "WrongPhase"
    assert D.phase(env.h) == "open"


# -- holders -------------------------------------------------------------------------------------

def test_holders_claim_exact_entitlements_through_transfers_and_forced_transfers(closed: Env) -> None:
    env = closed
    h, chain = env.h, env.chain
    alice, bob, carol, dave = env.alice, env.bob, env.carol, env.dave
    holders = [alice, bob, carol, dave, env.roles.originator]
    model = Entitlements(3)
    for k, dst, u in ((0, alice, 500_000), (0, bob, 300_000), (1, carol, 120_000), (2, env.roles.originator, 80_000)):
        model.move(k, None, dst, u)
    state = DealState.initial(EXAMPLE)
    claimed_total = [0, 0, 0]

    def period(report: PeriodReport) -> None:
        nonlocal state
        result, state = _post(env, state, report)
        for k, t in enumerate(result.tranches):
            model.credit(k, t.cash_paid)

    def transfer(k: int, src: str, dst: str, units: int, forced: bool = False) -> None:
        if forced:
            D.forced_transfer(h, tranche=k, from_=src, to=dst, units=units)
        else:
            D.transfer(h, tranche=k, sender=src, to=dst, units=units)
        model.move(k, src, dst, units, forced=forced)

    def check() -> None:
        for k, token in enumerate(h.tokens):
            assert chain.call(token.functions.pointsPerUnit()) == model.points[k]
            assert chain.call(token.functions.carry()) == model.carry[k]
            for who in holders:
                assert chain.call(token.functions.balanceOf(who)) == model.units[k].get(who, 0)
                assert chain.call(token.functions.entitlementOf(who)) == model.ent[k].get(who, 0)
                assert chain.call(token.functions.claimableOf(who)) == model.ent[k].get(who, 0) // M

    def claim(who: str) -> None:
        before = _cash(env, who)
        expected = [model.claim(k, who) for k in range(3)]
        got = D.claim(h, holder=who, sender=who)
        assert got == sum(expected) == _cash(env, who) - before
        for k in range(3):
            claimed_total[k] += expected[k]

    period(EXAMPLE_REPORTS[0])
    transfer(0, alice, dave, 123_457)
    transfer(0, bob, alice, 1)
    transfer(1, carol, dave, 40_001)
    transfer(2, env.roles.originator, bob, 33_333)
    check()
    claim(alice)
    period(PeriodReport(7_777, 12_345, 3_333, 0))
    D.freeze(h, investors=[dave])
    transfer(0, dave, bob, 23_456, forced=True)  # the agent recovers units from a frozen wallet
    D.freeze(h, investors=[dave], frozen=False)
    transfer(2, bob, carol, 11_111)
    check()
    claim(bob)
    claim(dave)
    period(EXAMPLE_REPORTS[1])
    transfer(0, alice, bob, 99_999)
    transfer(1, dave, alice, 13)
    period(PeriodReport(4_321, 1_000, 17, 0))
    transfer(0, bob, dave, 7, forced=True)
    period(PeriodReport(0, 0, 0, 0))
    check()
    for who in holders:
        claim(who)
    check()
    ledger = D.cash_ledger(h)
    assert list(ledger.paid) == model.paid
    assert list(ledger.claimed) == claimed_total
    for k in range(3):
        assert claimed_total[k] <= model.paid[k]
        # dust is what no holder can ever claim: paid minus floor(points * supply / M)
        supply = sum(model.units[k].values())
        assert ledger.dust[k] == model.paid[k] - model.points[k] * supply // M
        assert ledger.paid[k] == ledger.claimed[k] + ledger.owed[k] + ledger.dust[k]
        assert ledger.dust[k] <= supply // M + 1
        # what is still claimable by holders is within what is owed
        assert sum(model.ent[k].get(w, 0) // M for w in holders) <= ledger.owed[k]
    _assert_cash_conserved(env, state)


def test_claim_with_nothing_owed_and_claim_for(closed: Env) -> None:
    env = closed
    h = env.h
    D.post_report(h, report=EXAMPLE_REPORTS[0], loan_root=ROOT, loan_count=2)
    with pytest.raises(ContractRevert) as info:
        env.chain.send(h.deal.functions.claim(), sender=env.stranger)
    assert info.value.name == "NothingToClaim"
    owed = sum(D.claimable(h, holder=env.alice))
    assert owed > 0
    with pytest.raises(ContractRevert) as info:  # a stranger may not trigger alice's claim
        env.chain.send(h.deal.functions.claimFor(env.alice), sender=env.stranger)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    before = _cash(env, env.alice)
    env.chain.send(h.deal.functions.claimFor(env.alice), sender=env.roles.operator)  # the paying agent may
    assert _cash(env, env.alice) - before == owed  # and the cash goes to alice
    assert D.claimable(h, holder=env.alice) == [0, 0, 0]


def test_close_moves_unsold_units_and_funds_reserve(env: Env) -> None:
    h = env.h
    before = _cash(env, env.roles.originator)
    D.close(h)
    assert D.phase(h) == "closed"
    assert env.chain.call(h.token(2).functions.balanceOf(env.roles.originator)) == 80_000
    assert _cash(env, env.roles.originator) == before - 10_000
    assert _cash(env, h.deal.address) == 10_000
    assert D.read_state(h) == DealState.initial(EXAMPLE)
    assert [env.chain.call(t.functions.totalSupply()) for t in h.tokens] == [s.face for s in EXAMPLE.tranches]


def test_collections_beyond_the_accounting_capacity_are_refused_by_name(closed: Env) -> None:
    env = closed
    h, chain, servicer = env.h, env.chain, env.roles.servicer
    chain.send(h.settlement.functions.mint(servicer, 2**121), sender=env.core.deployer)
    with pytest.raises(ContractRevert) as info:
        D.post_report(h, report=PeriodReport(2**120, 0, 0, 0), loan_root=ROOT, loan_count=1)
    assert info.value.name == "CollectionTooLarge"
    with pytest.raises(ContractRevert) as info:
        D.post_report(h, report=PeriodReport(0, 0, 2**120, 0), loan_root=ROOT, loan_count=1)
    assert info.value.name == "CollectionTooLarge"
    # the residual tranche's per-unit points would overflow the packed accounting: refused whole
    with pytest.raises(ContractRevert) as info:
        D.post_report(h, report=PeriodReport(2**95, 0, 0, 0), loan_root=ROOT, loan_count=1)
    assert info.value.name == "EntitlementCapacityExceeded"
    assert D.read_state(h) == DealState.initial(EXAMPLE)
    _post(env, DealState.initial(EXAMPLE), PeriodReport(2**80, 0, 0, 0))  # large but within capacity
