"""The reference waterfall under WATERFALL.md version 2: both worked examples to the unit,
every refusal of the page (a refused report changes nothing), the trigger rules at their
boundaries, and properties over random revolving deals (conservation, the page's invariants
and a second reading of the trigger tests).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chainabs.errors import DealError, WaterfallError
from chainabs.waterfall import (
    EFFECTS,
    METRICS,
    MONTHLY_BPS,
    ZERO_ROOT,
    DealParams,
    DealState,
    PeriodReport,
    PeriodResult,
    PeriodResultV2,
    TrancheSpec,
    Trigger,
    TriggerResult,
    check_conservation,
    pro_rata,
    run_period,
    run_period_v2,
    run_periods,
    run_periods_v2,
)

ROOT = bytes.fromhex("ab" * 32)


def rep(i: int = 0, p: int = 0, r: int = 0, d: int = 0, dq: int = 0, u: int = 0, *, count: int | None = None,
        call: bool = False) -> PeriodReport:
    """A report; a purchase of u > 0 units names one loan per 10,000 units (at least one) and ROOT."""
    if count is None:
        count = max(1, u // 10_000) if u else 0
    return PeriodReport(i, p, r, d, delinquent_60=dq, purchased_units=u, purchased_count=count,
                        purchase_root=ROOT if u else ZERO_ROOT, call=call)


def run(deal: DealParams, reports: list[PeriodReport]) -> tuple[list[PeriodResultV2], DealState]:
    state = DealState.initial(deal)
    results = []
    for report in reports:
        result, state = run_period_v2(deal, state, report)
        check_conservation(result)
        results.append(result)
    return results, state


def col(result: PeriodResult, name: str) -> list[int]:
    return [getattr(t, name) for t in result.tranches]


def refused(deal: DealParams, state: DealState, report: PeriodReport, match: str | None) -> None:
    """The report is refused with a message matching `match`, and nothing changes."""
    before = copy.deepcopy(state)
    with pytest.raises(WaterfallError, match=match) as info:
        run_period_v2(deal, state, report)
    assert str(info.value).startswith("report refused: ")
    assert state == before and state.history == before.history


# --- example 2 of WATERFALL.md (revolving, triggers, pro rata, call) -----------------------

EXAMPLE_2 = DealParams(
    tranches=(TrancheSpec("Class A", "A", 750_000, 400), TrancheSpec("Class B", "B", 150_000, 700),
              TrancheSpec("Class C", "C", 100_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=0,
    revolving_periods=6, principal_mode="pro_rata", cleanup_call_bps=1_000,
    triggers=(Trigger("principal_account", 1_000, "amortise"), Trigger("delinquency_60", 400, "sequential", True),
              Trigger("cumulative_default", 440, "turbo"), Trigger("excess_spread", 200, "amortise")),
)
EXAMPLE_2_REPORTS = [
    rep(20_000, 150_000, 0, 5_000, 10_000, 150_000),
    rep(19_000, 160_000, 1_000, 8_000, 12_000, 100_000),
    rep(17_000, 140_000, 0, 10_000, 40_000, 0),
    rep(15_000, 200_000, 2_000, 6_000, 5_000, 0),
    rep(12_000, 180_000, 1_000, 9_000, 30_000, 0),
    rep(7_000, 150_000, 3_000, 5_000, 2_000, 0),
    rep(4_000, 125_000, 0, 2_000, 0, 0),
    rep(1_500, 20_000, 0, 1_000, 0, 0, call=True),
]
# Per period, as the page's table: B0, B1, triggers breached (1-based), fee, A and B interest,
# reserve end, released, C start, C end, principal per tranche, residual, balances at end.
EXAMPLE_2_TABLE = [
    (1_000_000, 995_000, [], 833, [2_500, 875], 9_950, 50, 0, 5_000, [0, 0, 0], 10_842,
     [750_000, 150_000, 100_000]),
    (995_000, 927_000, [], 829, [2_500, 875], 9_270, 680, 5_000, 73_000, [0, 0, 0], 8_476,
     [750_000, 150_000, 100_000]),
    (927_000, 777_000, [], 772, [2_500, 875], 7_770, 1_500, 73_000, 223_000, [0, 0, 0], 4_353,
     [750_000, 150_000, 100_000]),
    (777_000, 571_000, [1], 647, [2_500, 875], 5_710, 2_060, 223_000, 0, [321_750, 64_350, 42_900], 9_038,
     [428_250, 85_650, 57_100]),
    (571_000, 382_000, [1, 2], 475, [1_427, 499], 3_820, 1_890, 0, 0, [189_000, 0, 0], 3_489,
     [239_250, 85_650, 57_100]),
    (382_000, 227_000, [1], 318, [797, 499], 2_270, 1_550, 0, 0, [97_079, 34_753, 23_168], 4_936,
     [142_171, 50_897, 33_932]),
    (227_000, 100_000, [1, 2, 3], 189, [473, 296], 1_000, 1_270, 0, 0, [129_312, 0, 0], 0,
     [12_859, 50_897, 33_932]),
    (100_000, 0, [1, 3], 83, [42, 296], 0, 1_000, 0, 0, [12_859, 50_897, 33_932], 3_391, [0, 0, 0]),
]


def test_example_2_every_number_of_the_table() -> None:
    results, state = run(EXAMPLE_2, EXAMPLE_2_REPORTS)
    for result, row in zip(results, EXAMPLE_2_TABLE, strict=True):
        b0, b1, hit, fee, interest, reserve_end, released, c0, c1, principal, residual, ends = row
        t = result.period
        assert (result.pool_balance_start, result.pool_balance_end) == (b0, b1), t
        assert [k for k, x in enumerate(result.triggers, start=1) if x.breached] == hit, t
        assert (result.fee_due, result.fee_paid) == (fee, fee), t
        assert col(result, "interest_paid")[:2] == interest and col(result, "interest_unpaid") == [0, 0, 0], t
        assert (result.reserve_end, result.reserve_released, result.reserve_added, result.reserve_drawn) == (
            reserve_end, released, 0, 0), t
        assert (result.principal_account_start, result.principal_account_end) == (c0, c1), t
        assert col(result, "principal_paid") == principal, t
        assert col(result, "loss") == [0, 0, 0], t
        assert result.residual_paid == residual, t
        assert col(result, "balance_end") == ends, t
        assert result.trigger_breached == bool(hit), t
    assert [r.status for r in results] == ["revolving"] * 3 + ["amortising"] * 4 + ["called"]
    assert [r.principal_mode_applied for r in results] == [None] * 3 + ["pro_rata", "sequential", "pro_rata",
                                                                       "turbo", "turbo"]
    assert [r.purchased_units for r in results] == [150_000, 100_000] + [0] * 6
    assert [r.purchase_root for r in results] == [ROOT, ROOT] + [ZERO_ROOT] * 6
    assert [r.call_price for r in results] == [0] * 7 + [79_000]
    assert [r.delinquent_60 for r in results] == [10_000, 12_000, 40_000, 5_000, 30_000, 2_000, 0, 0]
    # ES = I - fee - coupons without arrears (period 1: 20,000 - 833 - 2,500 - 875)
    assert [r.excess_spread for r in results] == [15_792, 14_796, 12_853, 10_978, 9_599, 5_386, 3_042, 1_079]
    assert results[0].triggers[1] == TriggerResult("delinquency_60", 400, "sequential", True, False)
    assert state.called and state.pool_balance == 0 and state.tranche_balances == [0, 0, 0]
    assert state.cumulative_defaults == 46_000 and state.early_amortisation and state.principal_account == 0
    assert state.latched == 0b101  # triggers 1 and 3 (non-curable) stay breached


def test_example_2_narrative() -> None:
    """The page's words under the table: why 4 amortises, 6 cures and 7 turbos."""
    results, _ = run(EXAMPLE_2, EXAMPLE_2_REPORTS[:7])
    p4, p6, p7 = results[3], results[5], results[6]
    assert 223_000 * 10_000 > 1_000 * 1_000_000 and p4.triggers[0].breached and p4.status == "amortising"
    # period 6: (30,000 + 2,000 + 5,000) / (571,000 + 382,000 + 227,000) = 3.14 % <= 4 %: cured
    assert not p6.triggers[1].breached and p6.principal_mode_applied == "pro_rata"
    # period 7: 32,000 / 709,000 = 4.51 % > 4 %; cumulative defaults 45,000 > 4.4 % of 1,000,000
    assert p7.triggers[1].breached and p7.triggers[2].breached and p7.principal_mode_applied == "turbo"


def test_example_2_refused_reports() -> None:
    states = [DealState.initial(EXAMPLE_2)]
    for report in EXAMPLE_2_REPORTS[:7]:
        states.append(run_period_v2(EXAMPLE_2, states[-1], report)[1])
    # a purchase in period 4 (amortising: trigger 1)
    refused(EXAMPLE_2, states[3], replace(EXAMPLE_2_REPORTS[3], purchased_units=1, purchased_count=1,
                                          purchase_root=ROOT),
            "^report refused: a purchase of 1 units in period 4, which amortises \\(an amortise trigger")
    # in period 1 a purchase of 155,001 (C after step 5 is 155,000); 155,000 itself is fine
    refused(EXAMPLE_2, states[0], rep(20_000, 150_000, 0, 5_000, 10_000, 155_001),
            "a purchase of 155001 units exceeds the principal account, 155000 after step 5")
    result, _ = run_period_v2(EXAMPLE_2, states[0], rep(20_000, 150_000, 0, 5_000, 10_000, 155_000))
    assert result.principal_account_end == 0
    # a call in period 8 had B0 been 100,001
    richer = replace(states[7], pool_balance=100_001)
    refused(EXAMPLE_2, richer, replace(EXAMPLE_2_REPORTS[7], principal=20_001),
            "the clean-up call is not allowed: the pool balance 100001 x 10000 exceeds cleanup_call_bps 1000")
    # and the deal takes no report after the call
    called = run_period_v2(EXAMPLE_2, states[7], EXAMPLE_2_REPORTS[7])[1]
    refused(EXAMPLE_2, called, rep(), "the deal was called \\(clean-up call\\) by period 8; it takes no further")


# --- example 1 (version 1 rules) under the version 2 engine --------------------------------

EXAMPLE_1 = DealParams(
    tranches=(TrancheSpec("Class A", "A", 800_000, 400), TrancheSpec("Class B", "B", 120_000, 800),
              TrancheSpec("Class C", "C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500,
)
EXAMPLE_1_REPORTS = [rep(15_000, 80_000, 0, 5_000), rep(9_000, 60_000, 2_000, 60_000), rep(500, 0, 0, 0)]
EXAMPLE_1_LISTED = replace(EXAMPLE_1, default_trigger_bps=0,
                           triggers=(Trigger("cumulative_default", 500, "turbo", curable=False),))


@pytest.mark.parametrize("deal", [EXAMPLE_1, EXAMPLE_1_LISTED], ids=["v1 trigger", "listed trigger"])
def test_example_1_every_number(deal: DealParams) -> None:
    (p1, p2, p3), state = run(deal, EXAMPLE_1_REPORTS)
    assert [(r.fee_paid, col(r, "interest_paid")) for r in (p1, p2, p3)] == [
        (833, [2_666, 800, 0]), (762, [2_383, 800, 0]), (662, [2_155, 800, 0])]
    assert p3.reserve_drawn == 162 + 2_155 + 800 and p3.reserve_end == 4_833
    assert [(r.reserve_end, r.reserve_released) for r in (p1, p2)] == [(9_150, 850), (7_950, 1_200)]
    assert [r.trigger_breached for r in (p1, p2, p3)] == [False, True, True]
    assert [col(r, "principal_paid") for r in (p1, p2, p3)] == [[85_000, 0, 0], [68_255, 0, 0], [0, 0, 0]]
    assert col(p2, "loss") == [0, 0, 51_745] and p1.residual_paid == 6_551
    assert [col(r, "balance_end") for r in (p1, p2, p3)] == [
        [715_000, 120_000, 80_000], [646_745, 120_000, 28_255], [646_745, 120_000, 28_255]]
    assert [r.status for r in (p1, p2, p3)] == ["amortising"] * 3
    assert [r.principal_mode_applied for r in (p1, p2, p3)] == ["sequential", "turbo", "turbo"]
    assert [r.excess_spread for r in (p1, p2, p3)] == [15_000 - 833 - 2_666 - 800, 9_000 - 762 - 2_383 - 800,
                                                       500 - 662 - 2_155 - 800]
    assert [r.triggers for r in (p1, p2)] == [(TriggerResult("cumulative_default", 500, "turbo", False, False),),
                                              (TriggerResult("cumulative_default", 500, "turbo", False, True),)]
    assert state.trigger_breached and state.cumulative_defaults == 65_000
    if deal.triggers is None:  # v1's latch is trigger_breached, as the v1 contract keeps it
        assert (state.latched, state.history) == (0, ())
    else:
        assert state.latched == 1 and len(state.history) == 2


def test_version_1_deal_results_and_state_are_version_1s() -> None:
    """run_period returns the v1 PeriodResult, equal to the v2 result's v1 part, and a v1 deal's
    state keeps every version 2 field at its default (what a v1 contract reads back)."""
    assert EXAMPLE_1.is_v1 and not EXAMPLE_1_LISTED.is_v1 and not EXAMPLE_2.is_v1
    v1_results = run_periods(EXAMPLE_1, EXAMPLE_1_REPORTS)
    assert all(type(r) is PeriodResult for r in v1_results)
    assert v1_results == [r.v1() for r in run_periods_v2(EXAMPLE_1, EXAMPLE_1_REPORTS)]
    assert v1_results == [r.v1() for r in run_periods_v2(EXAMPLE_1_LISTED, EXAMPLE_1_REPORTS)]
    state = DealState.initial(EXAMPLE_1)
    for report in EXAMPLE_1_REPORTS:
        _, state = run_period(EXAMPLE_1, state, report)
    assert state == DealState(period=3, pool_balance=795_000, tranche_balances=[646_745, 120_000, 28_255],
                              unpaid_interest=[0, 0, 0], unpaid_fee=0, reserve=4_833,
                              cumulative_defaults=65_000, trigger_breached=True)


def test_as_dict_carries_the_v2_names() -> None:
    d = run_periods_v2(EXAMPLE_2, EXAMPLE_2_REPORTS[:1])[0].as_dict()
    for name in ("status", "principal_account_start", "principal_account_end", "purchased_units",
                 "purchased_count", "delinquent_60", "excess_spread", "principal_mode_applied", "call_price",
                 "triggers", "trigger_breached"):
        assert name in d, name
    assert d["status"] == "revolving" and d["principal_mode_applied"] is None and d["call_price"] == 0
    assert d["purchase_root"] == "0x" + "ab" * 32 and d["purchased_count"] == 15
    assert d["triggers"][1] == {"metric": "delinquency_60", "threshold_bps": 400, "effect": "sequential",
                                "curable": True, "breached": False}


# --- refusals ------------------------------------------------------------------------------

def small(**kw: Any) -> DealParams:
    """A 2-tranche deal of 1,000 (A 800 at 12 %, E 200), no fee, no reserve."""
    base = DealParams((TrancheSpec("A", "A", 800, 1_200), TrancheSpec("E", "E", 200, 0)), servicer_fee_bps=0,
                      reserve_target_bps=0, initial_reserve=0, default_trigger_bps=0, triggers=())
    return replace(base, **kw)


@pytest.mark.parametrize("report, match", [
    (rep(d=1_001), "^report refused: defaults 1001 exceed the pool balance 1000$"),
    (rep(p=600, d=401), "^report refused: principal 600 \\+ defaults 401 exceed the pool balance 1000$"),
    (rep(p=600, d=300, dq=101), "delinquent_60 101 exceeds the pool balance at the end of the period, "
                                "100 \\(B0 1000 - P 600 - D 300 \\+ U 0\\)"),
    (rep(p=600, d=300, dq=101, call=True), "delinquent_60 101 exceeds .* 0 \\(the call\\)"),
    (rep(u=5), "a purchase of 5 units in period 1, which amortises \\(the revolving period ended with period 0"),
    (rep(call=True), "the clean-up call is not allowed: the deal has no call"),
    (rep(dq=-1), "delinquent_60 must be a non-negative integer, got -1"),
    (rep(u=True), "purchased_units must be a non-negative integer, got True"),
    (replace(rep(), call=1), "call must be true or false, got 1"),  # type: ignore[arg-type]
    (replace(rep(), purchase_root=b"\x01"), "purchase_root must be 32 bytes"),
    (rep(u=5, count=0), "all three or none: got units 5, count 0"),
    (replace(rep(), purchased_count=2), "all three or none: got units 0, count 2"),
    (replace(rep(), purchase_root=ROOT), "all three or none: got units 0, count 0, root 0xabab"),
])
def test_each_refusal_names_its_rule_and_changes_nothing(report: PeriodReport, match: str) -> None:
    refused(small(), DealState.initial(small()), report, match)


def test_the_boundaries_themselves_are_accepted() -> None:
    deal = small(revolving_periods=1, cleanup_call_bps=10_000)
    state = DealState.initial(deal)
    run_period_v2(deal, state, rep(p=600, d=300, dq=100))  # delinquent_60 = B1
    # AF = 8 + 600 + 400 - 8 of A's interest; need = 1000 - (1000 - 600 - 400) - 0: C = 1000 after step 5
    result, _ = run_period_v2(deal, state, rep(8, 600, 400, 400, u=1_000))
    assert (result.principal_account_end, result.pool_balance_end, result.residual_paid) == (0, 1_000, 0)
    refused(deal, state, rep(8, 600, 400, 400, u=1_001), "1001 units exceeds the principal account, 1000 after "
                                                         "step 5 \\(0 at the start \\+ 1000 moved in\\)")
    # the call at exactly cleanup_call_bps x B_initial, once amortising
    refused(deal, state, rep(call=True), "the clean-up call is not allowed in period 1: it revolves")
    after = run_period_v2(deal, state, rep())[1]
    result, end = run_period_v2(deal, after, rep(call=True))
    assert result.status == "called" and result.call_price == 1_000 and end.called


def test_a_purchase_after_the_revolving_period_and_a_refused_call_price() -> None:
    deal = small(revolving_periods=2, cleanup_call_bps=5_000)
    _, s1 = run_period_v2(deal, DealState.initial(deal), rep(i=8, p=100, u=100))  # 8: A's interest
    _, s2 = run_period_v2(deal, s1, rep(i=8, p=100, u=100))
    refused(deal, s2, rep(p=100, u=100), "a purchase of 100 units in period 3, which amortises \\(the revolving "
                                         "period ended with period 2\\)")
    refused(deal, s2, rep(call=True), "the pool balance 1000 x 10000 exceeds cleanup_call_bps 5000 x the initial "
                                      "balance 1000")
    _, s3 = run_period_v2(deal, s2, rep(p=500))
    # A 308 after period 3 (492 paid), E 192 (8 lost); the call: AF = 60 + 100 + 350 - 3 of interest
    result, _ = run_period_v2(deal, s3, rep(i=60, p=100, d=50, call=True))
    assert result.call_price == 350 and result.pool_balance_end == 0
    assert col(result, "principal_paid") == [308, 192] and result.residual_paid == 7
    assert col(result, "balance_end") == [0, 0] and sum(col(result, "loss")) == 0


# --- triggers at their boundaries ----------------------------------------------------------

def one_trigger(metric: str, threshold: int, effect: str = "sequential", curable: bool = False,
                **kw: Any) -> DealParams:
    return small(triggers=(Trigger(metric, threshold, effect, curable),), principal_mode="pro_rata", **kw)


def breaches(deal: DealParams, reports: list[PeriodReport]) -> list[bool]:
    results, _ = run(deal, reports)
    return [r.triggers[0].breached for r in results]


def test_cumulative_default_is_strict_and_counts_this_period() -> None:
    deal = one_trigger("cumulative_default", 100)  # 1 % of 1,000 = 10
    assert breaches(deal, [rep(d=5), rep(d=5), rep(d=1)]) == [False, False, True]


def test_delinquency_60_sums_three_periods() -> None:
    deal = one_trigger("delinquency_60", 1_000, curable=True)  # 10 %
    # B1 = 1000, 900, 800, 700; dq 100, 90, 81, 0: windows 100/1000 and 190/1900 (10 %, not above),
    # 271/2700 (above), then 171/2400 (periods 2 to 4: the first has left the window)
    reports = [rep(dq=100), rep(p=100, dq=90), rep(p=100, dq=81), rep(p=100)]
    assert breaches(deal, reports) == [False, False, True, False]
    assert breaches(replace(deal, triggers=(Trigger("delinquency_60", 1_000, "sequential"),)),
                    reports) == [False, False, True, True]


def test_excess_spread_is_annualised_signed_and_strict() -> None:
    # A 800 at 12 % costs 8 a period; 12 x ES x 10000 < 1200 x B0  <=>  ES < B0 / 100 = 10
    deal = one_trigger("excess_spread", 1_200, curable=True)
    assert breaches(deal, [rep(i=18), rep(i=18), rep(i=18)]) == [False, False, False]  # ES 10 each
    assert breaches(deal, [rep(i=17)]) == [True]
    assert breaches(deal, [rep(i=38), rep(i=0), rep(i=16)]) == [False, False, False]  # ES 30, -8, 8: sum 30
    results, _ = run(deal, [rep(i=0)])
    assert results[0].excess_spread == -8 and results[0].trigger_breached


def test_principal_account_tests_the_start_of_the_period() -> None:
    deal = replace(one_trigger("principal_account", 1_000, effect="amortise", revolving_periods=5),  # C > 10 % T
                   tranches=(TrancheSpec("A", "A", 800, 0), TrancheSpec("E", "E", 200, 0)))
    results, _ = run(deal, [rep(p=100), rep(), rep(p=1)])
    assert [r.principal_account_end for r in results] == [100, 100, 101]
    assert [r.triggers[0].breached for r in results] == [False, False, False]  # 100 x 10000 = 1000 x 1000
    results, state = run(deal, [rep(p=101), rep()])
    assert [r.triggers[0].breached for r in results] == [False, True]
    assert [r.status for r in results] == ["revolving", "amortising"] and state.early_amortisation


def test_a_curable_amortise_trigger_ends_revolving_for_good() -> None:
    deal = one_trigger("delinquency_60", 1_000, effect="amortise", curable=True, revolving_periods=6)
    results, _ = run(deal, [rep(), rep(dq=500), rep(), rep(), rep(), rep()])
    assert [r.triggers[0].breached for r in results] == [False, True, True, True, False, False]
    assert [r.status for r in results] == ["revolving"] + ["amortising"] * 5


def test_a_turbo_trigger_waits_for_amortisation() -> None:
    """Revolving periods pay no principal whatever else is breached (see the report on ambiguity)."""
    deal = one_trigger("cumulative_default", 0, effect="turbo", revolving_periods=1)
    results, _ = run(deal, [rep(i=20, d=1), rep(i=20)])
    assert results[0].trigger_breached and results[0].principal_mode_applied is None
    assert col(results[0], "principal_paid") == [0, 0]
    assert results[1].principal_mode_applied == "turbo" and col(results[1], "principal_paid")[0] > 0


def test_a_revolving_shortfall_is_a_loss() -> None:
    """need = sum T - (B0 - P - D) - C; what AF cannot move into C is written down."""
    deal = small(revolving_periods=3)
    result, state = run_period_v2(deal, DealState.initial(deal), rep(d=100))
    assert result.principal_account_end == 0 and col(result, "loss") == [0, 100]
    assert state.tranche_balances == [800, 100]


def test_pro_rata_gives_the_remainder_senior_first_within_caps() -> None:
    assert pro_rata(2, [1, 1, 1]) == [1, 1, 0]
    assert pro_rata(10, [3, 3, 4]) == [3, 3, 4]
    assert pro_rata(5, [1, 9, 0]) == [1, 4, 0]  # floors 0, 4, 0; the remainder 1 to T_1 (capped at 1)
    assert pro_rata(0, [0, 0]) == [0, 0]


def test_triggers_are_validated_by_field() -> None:
    with pytest.raises(DealError) as info:
        small(triggers=(Trigger("losses", 1, "turbo"),)).validate()
    assert info.value.field == "triggers[0].metric"
    with pytest.raises(DealError) as info:
        small(triggers=(Trigger("excess_spread", 1, "turbo"), Trigger("excess_spread", 1, "stop"))).validate()
    assert info.value.field == "triggers[1].effect"
    with pytest.raises(DealError) as info:
        small(triggers=(Trigger("excess_spread", 10_001, "turbo"),)).validate()
    assert info.value.field == "triggers[0].threshold_bps"
    with pytest.raises(DealError) as info:
        small(triggers=(Trigger("excess_spread", 1, "turbo", 1),)).validate()  # type: ignore[arg-type]
    assert info.value.field == "triggers[0].curable"
    with pytest.raises(DealError) as info:
        small(triggers=(Trigger("excess_spread", 1, "turbo"),) * 9).validate()
    assert info.value.field == "triggers"
    for bad in ({"revolving_periods": -1}, {"revolving_periods": 1_201}, {"principal_mode": "pro-rata"},
                {"cleanup_call_bps": 10_001}, {"default_trigger_bps": 500}):
        with pytest.raises(DealError) as info:
            small(**bad).validate()
        assert info.value.field == next(iter(bad)), bad


# --- properties over random version 2 deals ------------------------------------------------

amounts = st.one_of(st.integers(1, 50), st.integers(1, 10**6), st.integers(1, 10**12))


@st.composite
def v2_deals(draw: st.DrawFn) -> DealParams:
    n = draw(st.integers(2, 5))
    faces = draw(st.lists(amounts, min_size=n, max_size=n))
    coupons = draw(st.lists(st.one_of(st.integers(0, 1_500), st.integers(0, 10_000)), min_size=n - 1,
                            max_size=n - 1)) + [0]
    listed = draw(st.booleans())
    triggers = tuple(Trigger(draw(st.sampled_from(METRICS)),
                             draw(st.one_of(st.integers(0, 1_500), st.integers(0, 10_000))),
                             draw(st.sampled_from(EFFECTS)), draw(st.booleans()))
                     for _ in range(draw(st.integers(0, 8)))) if listed else None
    return DealParams(
        tranches=tuple(TrancheSpec(f"T{k}", f"T{k}", f, c) for k, (f, c) in enumerate(zip(faces, coupons,
                                                                                         strict=True))),
        servicer_fee_bps=draw(st.one_of(st.integers(0, 300), st.integers(0, 10_000))),
        reserve_target_bps=draw(st.one_of(st.integers(0, 500), st.integers(0, 10_000))),
        initial_reserve=draw(st.one_of(st.just(0), amounts)),
        default_trigger_bps=0 if listed else draw(st.integers(0, 10_000)),
        revolving_periods=draw(st.integers(0, 12)),
        principal_mode=draw(st.sampled_from(["sequential", "pro_rata"])),
        cleanup_call_bps=draw(st.sampled_from([0, 500, 1_000, 5_000, 10_000])),
        triggers=triggers,
    )


def draw_report(draw: st.DrawFn, deal: DealParams, state: DealState) -> PeriodReport:
    """Mostly plausible reports (purchases up to about what principal frees, calls), some that
    break a rule; the model decides which are refused."""
    b0 = state.pool_balance
    kind = draw(st.sampled_from(["normal", "normal", "normal", "zero", "total", "payoff", "call", "bad"]))
    i = draw(st.integers(0, b0 // 50 + 2))
    p = d = r = 0
    if kind == "normal":
        d = draw(st.integers(0, b0 // 10))
        p = draw(st.integers(0, b0 - d))
        r = draw(st.integers(0, deal.initial_balance // 100 + 1))
    elif kind == "total":
        d = b0
    elif kind == "payoff":
        p = b0
    elif kind == "bad":
        p, d = draw(st.integers(0, b0 + 2)), draw(st.integers(0, b0 + 2))
    u = 0
    if kind != "call" and draw(st.booleans()):
        u = draw(st.integers(0, p + d + state.principal_account + 2))
    b1 = max(0, b0 - p - d + u) if kind != "call" else 0
    dq = draw(st.integers(0, b1 + (1 if kind == "bad" else 0)))
    count = max(1, u // 1_000) if u else 0
    return PeriodReport(i, p, r, d, delinquent_60=dq, purchased_units=u, purchased_count=count,
                        purchase_root=ROOT if u else ZERO_ROOT, call=kind == "call")


@st.composite
def lives(draw: st.DrawFn) -> tuple[DealParams, list[PeriodReport], list[bool]]:
    """A deal and up to 12 reports (refused ones included), drawn against the model's state."""
    deal = draw(v2_deals())
    state = DealState.initial(deal)
    reports, accepted = [], []
    for _ in range(draw(st.integers(0, 12))):
        report = draw_report(draw, deal, state)
        try:
            _, state = run_period_v2(deal, state, report)
            accepted.append(True)
        except WaterfallError:
            accepted.append(False)
        reports.append(report)
    return deal, reports, accepted


def second_reading_of_triggers(deal: DealParams, results: list[PeriodResultV2]) -> list[list[bool]]:
    """Step 0 read again from the page, from the published figures of each period alone."""
    out: list[list[bool]] = []
    b_init = deal.initial_balance
    for t, r in enumerate(results):
        window = results[max(0, t - 2):t + 1]
        cumulative = sum(x.defaulted_principal for x in results[:t + 1])
        es = [x.interest_collected - x.pool_balance_start * deal.servicer_fee_bps // MONTHLY_BPS
              - sum(tr.balance_start * spec.coupon_bps // MONTHLY_BPS
                    for tr, spec in zip(x.tranches, deal.tranches, strict=True)) for x in window]
        row = []
        for k, trig in enumerate(deal.effective_triggers):
            th = trig.threshold_bps
            holds = {
                "cumulative_default": cumulative * 10_000 > th * b_init,
                "delinquency_60": (sum(x.delinquent_60 for x in window) * 10_000
                                   > th * sum(x.pool_balance_end for x in window)),
                "excess_spread": 12 * sum(es) * 10_000 < th * sum(x.pool_balance_start for x in window),
                "principal_account": (r.principal_account_start * 10_000
                                      > th * sum(tr.balance_start for tr in r.tranches)),
            }[trig.metric]
            row.append(holds or (not trig.curable and t > 0 and out[t - 1][k]))
        out.append(row)
    return out


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(lives())
def test_random_v2_deals_keep_the_pages_invariants(life: tuple[DealParams, list[PeriodReport], list[bool]]) -> None:
    deal, reports, accepted = life
    state = DealState.initial(deal)
    results: list[PeriodResultV2] = []
    amortised = False
    for report, ok in zip(reports, accepted, strict=True):
        before = copy.deepcopy(state)
        if not ok:
            refused(deal, state, report, None)
            event("refused report")
            continue
        result, new_state = run_period_v2(deal, state, report)
        assert state == before, "run_period_v2 mutated its input"
        assert run_period(deal, copy.deepcopy(state), report) == (result.v1(), new_state)
        check_conservation(result)
        c_in = (report.interest + report.principal + report.recoveries + result.call_price + result.reserve_drawn
                + result.reserve_released + result.principal_account_start)
        c_out = (result.fee_paid + sum(col(result, "interest_paid")) + sum(col(result, "principal_paid"))
                 + result.residual_paid + result.reserve_added + report.purchased_units
                 + result.principal_account_end)
        assert c_in == c_out
        # balances and the principal account
        for tr in result.tranches:
            assert 0 <= tr.principal_paid <= tr.balance_start, "a tranche paid above its balance"
            assert 0 <= tr.balance_end <= tr.balance_start and tr.loss >= 0
            assert tr.interest_paid <= tr.interest_due
        assert result.principal_account_start >= 0 and result.principal_account_end >= 0
        assert sum(new_state.tranche_balances) <= new_state.pool_balance + new_state.principal_account
        assert new_state.reserve >= 0 and new_state.unpaid_fee >= 0 and min(new_state.unpaid_interest) >= 0
        assert new_state.tranche_balances == col(result, "balance_end")
        assert new_state.pool_balance == result.pool_balance_end
        assert new_state.principal_account == result.principal_account_end
        # status: revolving, then amortising for good, then perhaps called
        assert result.status in ("revolving", "amortising", "called")
        if result.status == "revolving":
            assert not amortised and result.period <= deal.revolving_periods
            assert result.principal_mode_applied is None and sum(col(result, "principal_paid")) == 0
            assert result.call_price == 0
        else:
            amortised = True
            assert result.principal_account_end == 0 and result.purchased_units == 0
            assert result.principal_mode_applied in ("pro_rata", "sequential", "turbo")
            effects = {x.effect for x in result.triggers if x.breached}
            expected_mode = ("turbo" if "turbo" in effects else "sequential"
                             if "sequential" in effects or deal.principal_mode == "sequential" else "pro_rata")
            assert result.principal_mode_applied == expected_mode
        if result.status == "called":
            assert new_state.called and new_state.pool_balance == 0 and sum(new_state.tranche_balances) == 0
            assert result.call_price == before.pool_balance - report.principal - report.defaults
        if any(x.breached and x.effect == "amortise" for x in result.triggers):
            assert result.status != "revolving"
        assert result.trigger_breached == any(x.breached for x in result.triggers)
        assert [(x.metric, x.threshold_bps, x.effect, x.curable) for x in result.triggers] == [
            (t.metric, t.threshold_bps, t.effect, t.curable) for t in deal.effective_triggers]
        if deal.triggers is None:
            assert new_state.latched == 0 and new_state.history == ()
        event(f"status {result.status}")
        if result.purchased_units:
            event("purchase")
        if result.principal_mode_applied == "pro_rata" and sum(col(result, "principal_paid")):
            event("pro rata principal")
        if any(x.breached and x.curable for x in result.triggers):
            event("curable trigger breached")
        results.append(result)
        state = new_state
    # triggers: a second reading of step 0; a non-curable trigger stays, a curable one cures
    expected = second_reading_of_triggers(deal, results)
    assert [[x.breached for x in r.triggers] for r in results] == expected
    for k, trig in enumerate(deal.effective_triggers):
        seen = [row[k] for row in expected]
        if not trig.curable and True in seen:
            assert all(seen[seen.index(True):]), "a non-curable trigger cured"


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**9), min_size=1, max_size=5))
def test_pro_rata_pays_exactly_and_within_each_balance(pay: int, balances: list[int]) -> None:
    pay = min(pay, sum(balances))
    shares = pro_rata(pay, balances)
    assert sum(shares) == pay and all(0 <= x <= b for x, b in zip(shares, balances, strict=True))
