"""A deal on chain: WATERFALL.md's worked example to the unit, restrictions, DvP, claims."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import pytest

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert
from chainabs.waterfall import DealParams, DealState, PeriodReport, TrancheSpec, run_period

PARAMS = DealParams(
    tranches=(TrancheSpec("Class A", "A", 800_000, 400), TrancheSpec("Class B", "B", 120_000, 800),
              TrancheSpec("Class C", "C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500)
REPORTS = [PeriodReport(15_000, 80_000, 0, 5_000), PeriodReport(9_000, 60_000, 2_000, 60_000), PeriodReport(500, 0, 0, 0)]
FAR = 2**39


@pytest.fixture(scope="module")
def issued(session_chain: EmbeddedChain, core: Manifest) -> Iterator[tuple[EmbeddedChain, D.DealHandle]]:
    """One deal, issued and closed, shared by the module; each test reverts to it."""
    chain = session_chain
    base = chain.snapshot()
    a = chain.accounts
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[600_000, 400_000])
    handle = D.deploy_deal(chain, manifest=core, pool=pool.address, params=PARAMS, roles=D.DealRoles.single(a[0]))
    chain.send(handle.settlement.functions.mint(a[0], 10**12))
    for i in (1, 2, 3):
        chain.send(handle.settlement.functions.mint(a[i], 10**9))
    D.add_investors(handle, investors=a[0:4], eligible_until=FAR)
    D.open_offering(handle)
    D.subscribe(handle, investor=a[1], tranche=0, units=500_000)
    D.subscribe(handle, investor=a[2], tranche=0, units=300_000)
    D.subscribe(handle, investor=a[3], tranche=1, units=120_000)
    D.close(handle)
    yield chain, handle
    chain.revert(base)


@pytest.fixture
def deal(issued: tuple[EmbeddedChain, D.DealHandle]) -> Iterator[tuple[EmbeddedChain, D.DealHandle]]:
    chain, handle = issued
    snap = chain.snapshot()
    yield chain, handle
    chain.revert(snap)


def test_worked_example_on_chain_to_the_unit(deal: tuple[EmbeddedChain, D.DealHandle]) -> None:
    chain, handle = deal
    state = DealState.initial(PARAMS)
    results = []
    for report in REPORTS:
        expected, state = run_period(PARAMS, state, report)
        onchain = D.post_report(handle, report=report, loan_root=b"\x01" * 32, loan_count=2)
        assert onchain == expected
        assert D.read_period(handle, n=onchain.period) == expected
        results.append(onchain)
    assert [r.fee_paid for r in results] == [833, 762, 662]
    assert [r.tranches[0].interest_paid for r in results] == [2_666, 2_383, 2_155]
    assert [r.reserve_end for r in results] == [9_150, 7_950, 4_833]
    assert [r.reserve_released for r in results] == [850, 1_200, 0]
    assert [r.trigger_breached for r in results] == [False, True, True]
    assert [r.tranches[0].principal_paid for r in results] == [85_000, 68_255, 0]
    assert results[1].tranches[2].loss == 51_745 and results[0].residual_paid == 6_551
    assert [t.balance_end for t in results[2].tranches] == [646_745, 120_000, 28_255]
    assert D.read_state(handle) == state


def test_holders_claim_their_exact_share_after_transfers(deal: tuple[EmbeddedChain, D.DealHandle]) -> None:
    chain, handle = deal
    a = chain.accounts
    first = D.post_report(handle, report=REPORTS[0], loan_root=b"\x01" * 32, loan_count=2)
    cash_a = first.tranches[0].cash_paid
    D.transfer(handle, tranche=0, sender=a[1], to=a[2], units=60_000)    # after the period: no effect on it
    # a forced one (wallet recovery) moves the sender's accrued cash with the units, pro rata:
    # 40,000 of its 440,000 units take 1/11 of what a[1] accrued in period 1
    D.forced_transfer(handle, tranche=0, from_=a[1], to=a[2], units=40_000)
    second = D.post_report(handle, report=REPORTS[1], loan_root=b"\x01" * 32, loan_count=2)
    cash_a2 = second.tranches[0].cash_paid
    accrued1 = Fraction(cash_a * 500_000, 800_000)
    expect1 = accrued1 * 10 / 11 + Fraction(cash_a2 * 400_000, 800_000)
    expect2 = Fraction(cash_a * 300_000, 800_000) + accrued1 / 11 + Fraction(cash_a2 * 400_000, 800_000)
    got1, got2 = D.claimable(handle, holder=a[1])[0], D.claimable(handle, holder=a[2])[0]
    assert expect1 - 2 <= got1 <= expect1 and expect2 - 2 <= got2 <= expect2
    before = chain.call(handle.settlement.functions.balanceOf(a[1]))
    assert D.claim(handle, holder=a[1]) == got1
    assert chain.call(handle.settlement.functions.balanceOf(a[1])) == before + got1
    assert D.claimable(handle, holder=a[1]) == [0, 0, 0]
    ledger = D.cash_ledger(handle)
    assert all(c + o <= p for p, c, o in zip(ledger.paid, ledger.claimed, ledger.owed, strict=True))


def test_restrictions_hold(deal: tuple[EmbeddedChain, D.DealHandle]) -> None:
    chain, handle = deal
    a = chain.accounts
    stranger = a[7]
    assert D.restriction(handle, tranche=0, sender=a[1], to=a[2], units=1) == 0
    assert D.restriction(handle, tranche=0, sender=a[1], to=stranger, units=1) == 3
    assert D.restriction(handle, tranche=0, sender=stranger, to=a[1], units=1) == 2
    assert chain.call(handle.token(0).functions.messageForTransferRestriction(3))
    with pytest.raises(ContractRevert) as info:
        D.transfer(handle, tranche=0, sender=a[1], to=stranger, units=1)
    assert info.value.name == "TransferRestricted" and info.value.args_ == {"code": 3}
    D.freeze(handle, investors=[a[2]])
    assert D.restriction(handle, tranche=0, sender=a[1], to=a[2], units=1) == 5
    assert D.restriction(handle, tranche=0, sender=a[2], to=a[1], units=1) == 4
    D.freeze(handle, investors=[a[2]], frozen=False)
    D.set_paused(handle, tranche=0, paused=True)
    assert D.restriction(handle, tranche=0, sender=a[1], to=a[2], units=1) == 1
    D.set_paused(handle, tranche=0, paused=False)
    D.forced_transfer(handle, tranche=0, from_=a[1], to=a[2], units=10)
    assert chain.call(handle.token(0).functions.balanceOf(a[2])) == 300_010
    now = chain.w3.eth.get_block("latest")["timestamp"]
    D.add_investors(handle, investors=[a[3]], eligible_until=now + 100)
    chain.time_travel(now + 1_000)
    assert D.restriction(handle, tranche=1, sender=a[3], to=a[1], units=1) == 2


def test_dvp_trade_is_atomic(deal: tuple[EmbeddedChain, D.DealHandle]) -> None:
    chain, handle = deal
    a = chain.accounts
    units0 = [chain.call(handle.token(0).functions.balanceOf(x)) for x in (a[1], a[2])]
    cash0 = [chain.call(handle.settlement.functions.balanceOf(x)) for x in (a[1], a[2])]
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 3_600
    too_dear = D.sign_order(handle, seller=a[1], tranche=0, units=1_000, price=10**15, deadline=deadline, buyer=a[2])
    with pytest.raises(ContractRevert):
        D.fill_order(handle, order=too_dear, buyer=a[2])   # the buyer cannot pay: neither leg happens
    assert [chain.call(handle.token(0).functions.balanceOf(x)) for x in (a[1], a[2])] == units0
    assert [chain.call(handle.settlement.functions.balanceOf(x)) for x in (a[1], a[2])] == cash0
    order = D.sign_order(handle, seller=a[1], tranche=0, units=1_000, price=990, deadline=deadline, buyer=a[2])
    D.fill_order(handle, order=order, buyer=a[2])
    assert chain.call(handle.token(0).functions.balanceOf(a[2])) == units0[1] + 1_000
    assert chain.call(handle.settlement.functions.balanceOf(a[1])) == cash0[0] + 990
    with pytest.raises(ContractRevert):
        D.fill_order(handle, order=order, buyer=a[2])       # replay refused


def test_reports_are_guarded(deal: tuple[EmbeddedChain, D.DealHandle]) -> None:
    chain, handle = deal
    stranger = chain.accounts[7]
    with pytest.raises(ContractRevert) as info:
        chain.send(handle.deal.functions.postReport(1, 1, 1, 0, 0, 999_999, b"\x01" * 32, 2), sender=stranger)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    with pytest.raises(ContractRevert) as info:
        D.post_report(handle, report=PeriodReport(0, 900_000, 0, 200_000), loan_root=b"\x01" * 32, loan_count=2)
    assert "Exceed" in info.value.name
    assert D.read_state(handle).period == 0


def test_reports_out_of_order_or_twice_are_refused(deal: tuple[EmbeddedChain, D.DealHandle]) -> None:
    chain, handle = deal
    with pytest.raises(ContractRevert) as info:
        D.post_report(handle, report=REPORTS[0], loan_root=b"\x01" * 32, loan_count=2, period=2)
    assert info.value.name == "ReportOutOfOrder"
    D.post_report(handle, report=REPORTS[0], loan_root=b"\x01" * 32, loan_count=2, period=1)
    with pytest.raises(ContractRevert) as info:
        D.post_report(handle, report=REPORTS[1], loan_root=b"\x01" * 32, loan_count=2, period=1)
    assert info.value.name == "ReportOutOfOrder"
    assert D.read_state(handle).period == 1
