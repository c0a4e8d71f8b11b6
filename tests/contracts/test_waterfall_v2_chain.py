"""WaterfallV2.sol alone (through WaterfallV2Harness) against the reference model
(waterfall.run_period_v2), field by field: both worked examples of WATERFALL.md, and random
version 2 deals (2-5 tranches, 0-8 triggers or version 1's one, R 0-12, both principal modes,
purchases, calls, refused reports) every period, the chain's state carried by the chain and the
model's by the model. A report the model refuses is refused on chain by the same rule, with the
same figures, and both carry on from the unchanged state.

The deals and reports are drawn by the model's own strategies (tests/test_waterfall_v2.py), so
this file and that one read the page's examples from one place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, WaterfallError
from chainabs.waterfall import (
    BPS,
    EFFECTS,
    METRICS,
    DealParams,
    DealState,
    PeriodReport,
    PeriodResultV2,
    TrancheSpec,
    Trigger,
    run_period_v2,
)
from chainabs.waterfall_abi import params_struct, report_struct, result_from, state_from, state_struct
from test_waterfall_v2 import (
    EXAMPLE_1,
    EXAMPLE_1_LISTED,
    EXAMPLE_1_REPORTS,
    EXAMPLE_2,
    EXAMPLE_2_REPORTS,
    EXAMPLE_2_TABLE,
    draw_report,
    v2_deals,
)

EXAMPLES = int(os.environ.get("CHAINABS_SOAK_EXAMPLES", "300")) if os.environ.get("CHAINABS_SOAK") == "1" else 40


EIP170_BYTES = 24_576


@pytest.fixture
def harness(chain: EmbeddedChain, core: Manifest) -> Any:
    return chain.deploy("WaterfallV2Harness")


def chain_period(chain: EmbeddedChain, harness: Any, deal: DealParams, state: DealState,
                 report: PeriodReport) -> tuple[PeriodResultV2, DealState]:
    raw_result, raw_state = chain.call(harness.functions.runPeriod(params_struct(deal), state_struct(state),
                                                                   report_struct(report)))
    return result_from(raw_result), state_from(raw_state)


# -- refusals: the model's sentence and the chain's error name the same rule and figures ---------

def _purchase_while_amortising(m: re.Match[str]) -> Callable[[list[Any]], bool]:
    early = m.group(3).startswith("an amortise")
    return lambda a: a[:3] == [int(m.group(1)), int(m.group(2)), early] and (early or a[3] == int(m.group(4)))


RULES: dict[str, tuple[str, Callable[[re.Match[str]], Callable[[list[Any]], bool]]]] = {
    "DealCalled": (r"the deal was called \(clean-up call\) by period (\d+);", lambda m: lambda a: a == [int(m[1])]),
    "DefaultsExceedPoolBalance": (r"^report refused: defaults (\d+) exceed the pool balance (\d+)$",
                                  lambda m: lambda a: a == [int(m[1]), int(m[2])]),
    "PrincipalAndDefaultsExceedPoolBalance": (r"principal (\d+) \+ defaults (\d+) exceed the pool balance (\d+)$",
                                              lambda m: lambda a: a == [int(m[1]), int(m[2]), int(m[3])]),
    "PurchaseIncomplete": (r"got units (\d+), count (\d+), root 0x([0-9a-f]{64})$",
                           lambda m: lambda a: a == [int(m[1]), int(m[2]), bytes.fromhex(m[3])]),
    "Delinquent60ExceedsPoolBalance": (r"delinquent_60 (\d+) exceeds the pool balance at the end of the period, (\d+)",
                                       lambda m: lambda a: a == [int(m[1]), int(m[2])]),
    "PurchaseWhileAmortising": (r"a purchase of (\d+) units in period (\d+), which amortises "
                                r"\((an amortise trigger|the revolving period ended with period (\d+))",
                                _purchase_while_amortising),
    "CallNotInDeal": (r"the clean-up call is not allowed: the deal has no call", lambda m: lambda a: a == []),
    "CallWhileRevolving": (r"the clean-up call is not allowed in period (\d+): it revolves",
                           lambda m: lambda a: a == [int(m[1])]),
    "CallAbovePoolLimit": (r"the pool balance (\d+) x 10000 exceeds cleanup_call_bps (\d+) x the initial balance "
                           r"(\d+)$", lambda m: lambda a: a == [int(m[1]), int(m[2]), int(m[3])]),
    "PurchaseExceedsPrincipalAccount": (r"a purchase of (\d+) units exceeds the principal account, (\d+) after step 5 "
                                        r"\((\d+) at the start \+ (\d+) moved in\)$",
                                        lambda m: lambda a: a == [int(m[i]) for i in range(1, 5)]),
}


def same_refusal(model: WaterfallError, chain: ContractRevert) -> str:
    """The rule both refused by; fails unless the chain's error is the model's rule with the
    model's figures."""
    message = str(model)
    matched = [name for name, (pattern, _) in RULES.items() if re.search(pattern, message)]
    assert len(matched) == 1, f"no single rule for the model's refusal {message!r}: {matched}"
    name = matched[0]
    assert chain.name == name, f"model: {message!r}; chain: {chain}"
    pattern, expect = RULES[name]
    match = re.search(pattern, message)
    assert match is not None
    args = list(chain.args_.values()) if isinstance(chain.args_, dict) else list(chain.args_)
    args = [bytes(a) if isinstance(a, (bytes, bytearray)) else a for a in args]
    assert expect(match)(args), f"model: {message!r}; chain: {chain}"
    return name


def step(chain: EmbeddedChain, harness: Any, deal: DealParams, model_state: DealState, chain_state: DealState,
         report: PeriodReport) -> tuple[DealState, DealState, str]:
    """One period on both sides: equal results and next states, or the same refusal (and
    both states kept)."""
    try:
        model_result, model_next = run_period_v2(deal, model_state, report)
    except WaterfallError as refusal:
        with pytest.raises(ContractRevert) as info:
            chain_period(chain, harness, deal, chain_state, report)
        return model_state, chain_state, "refused: " + same_refusal(refusal, info.value)
    chain_result, chain_next = chain_period(chain, harness, deal, chain_state, report)
    assert chain_result == model_result, _first_difference(chain_result, model_result)
    assert chain_next == model_next
    return model_next, chain_next, chain_result.status


def _first_difference(chain: PeriodResultV2, model: PeriodResultV2) -> str:
    for f in fields(PeriodResultV2):
        if getattr(chain, f.name) != getattr(model, f.name):
            return f"period {model.period} {f.name}: chain {getattr(chain, f.name)!r}, model {getattr(model, f.name)!r}"
    return "equal"


# -- the worked examples ------------------------------------------------------------------------

@pytest.mark.parametrize("deal", [EXAMPLE_1, EXAMPLE_1_LISTED], ids=["v1 trigger", "listed trigger"])
def test_example_1_on_chain_equals_the_model(chain: EmbeddedChain, harness: Any, deal: DealParams) -> None:
    initial = state_from(chain.call(harness.functions.initialState(params_struct(deal))))
    assert initial == DealState.initial(deal)
    model_state = chain_state = initial
    for report in EXAMPLE_1_REPORTS:
        model_state, chain_state, _ = step(chain, harness, deal, model_state, chain_state, report)
    assert chain_state.tranche_balances == [646_745, 120_000, 28_255]  # the page's last row
    assert (chain_state.reserve, chain_state.trigger_breached) == (4_833, True)


def test_example_2_on_chain_equals_the_model_and_the_page(chain: EmbeddedChain, harness: Any) -> None:
    state = DealState.initial(EXAMPLE_2)
    results = []
    for report in EXAMPLE_2_REPORTS:
        model_result, model_next = run_period_v2(EXAMPLE_2, state, report)
        result, state = chain_period(chain, harness, EXAMPLE_2, state, report)
        assert result == model_result and state == model_next
        results.append(result)
    for result, row in zip(results, EXAMPLE_2_TABLE, strict=True):  # the page's table, from the chain
        b0, b1, hit, fee, _, reserve_end, released, c0, c1, principal, residual, ends = row
        assert (result.pool_balance_start, result.pool_balance_end, result.fee_paid) == (b0, b1, fee)
        assert [k for k, x in enumerate(result.triggers, start=1) if x.breached] == hit
        assert (result.reserve_end, result.reserve_released) == (reserve_end, released)
        assert (result.principal_account_start, result.principal_account_end) == (c0, c1)
        assert [t.principal_paid for t in result.tranches] == principal
        assert (result.residual_paid, [t.balance_end for t in result.tranches]) == (residual, ends)
    assert [r.status for r in results] == ["revolving"] * 3 + ["amortising"] * 4 + ["called"]
    assert results[-1].call_price == 79_000


def test_the_engine_a_deal_calls_runs_the_same_library(chain: EmbeddedChain, harness: Any) -> None:
    """WaterfallEngine (what a deal calls, outside its own code) gives the model's results on
    example 2 when called from a contract, refuses by the library's errors, and fits EIP-170."""
    engine = chain.deploy("WaterfallEngine")
    state = DealState.initial(EXAMPLE_2)
    for report in EXAMPLE_2_REPORTS:
        expected, expected_next = run_period_v2(EXAMPLE_2, state, report)
        args = (params_struct(EXAMPLE_2), state_struct(state), report_struct(report))
        raw_result, raw_next, gas = chain.call(harness.functions.runPeriodThroughEngine(engine.address, *args))
        assert (result_from(raw_result), state_from(raw_next)) == (expected, expected_next) and gas > 0
        state = expected_next
    with pytest.raises(ContractRevert) as info:
        chain.call(engine.functions.runPeriod(params_struct(EXAMPLE_2), state_struct(state),
                                              report_struct(PeriodReport(0, 0, 0, 0))))
    assert info.value.name == "DealCalled"
    for name in ("WaterfallEngine", "Deal"):
        assert (len(load_artifact(name)["deployedBytecode"]) - 2) // 2 <= EIP170_BYTES, name


def test_example_2_refused_reports_on_chain(chain: EmbeddedChain, harness: Any) -> None:
    """The page's refused reports: a purchase in period 4, a purchase of 155,001 in period 1,
    a call in period 8 had B0 been 100,001; and no report after the call."""
    states = [DealState.initial(EXAMPLE_2)]
    for report in EXAMPLE_2_REPORTS:
        states.append(run_period_v2(EXAMPLE_2, states[-1], report)[1])
    cases = [
        (states[3], replace(EXAMPLE_2_REPORTS[3], purchased_units=1_000, purchased_count=1,
                            purchase_root=EXAMPLE_2_REPORTS[0].purchase_root), "PurchaseWhileAmortising"),
        (states[0], replace(EXAMPLE_2_REPORTS[0], purchased_units=155_001), "PurchaseExceedsPrincipalAccount"),
        (replace(states[7], pool_balance=100_001), replace(EXAMPLE_2_REPORTS[7], principal=20_001),
         "CallAbovePoolLimit"),
        (states[8], PeriodReport(0, 0, 0, 0), "DealCalled"),
    ]
    for state, report, rule in cases:
        assert step(chain, harness, EXAMPLE_2, state, state, report)[2] == "refused: " + rule


SMALL = DealParams((TrancheSpec("A", "A", 800, 1_200), TrancheSpec("E", "E", 200, 0)), servicer_fee_bps=0,
                   reserve_target_bps=0, initial_reserve=0, default_trigger_bps=0, triggers=())
ROOT = bytes.fromhex("ab" * 32)


def purchase(units: int, **kw: Any) -> PeriodReport:
    return PeriodReport(0, kw.pop("p", 0), 0, kw.pop("d", 0), purchased_units=units, purchased_count=1,
                        purchase_root=ROOT, **kw)


@pytest.mark.parametrize("deal, periods, report, rule", [
    (SMALL, 0, PeriodReport(0, 0, 0, 1_001), "DefaultsExceedPoolBalance"),
    (SMALL, 0, PeriodReport(0, 600, 0, 401), "PrincipalAndDefaultsExceedPoolBalance"),
    (SMALL, 0, PeriodReport(0, 0, 0, 0, purchased_units=5), "PurchaseIncomplete"),
    (SMALL, 0, PeriodReport(0, 0, 0, 0, purchase_root=ROOT), "PurchaseIncomplete"),
    (SMALL, 0, PeriodReport(0, 600, 0, 300, delinquent_60=101), "Delinquent60ExceedsPoolBalance"),
    (replace(SMALL, cleanup_call_bps=BPS), 0, PeriodReport(0, 600, 0, 300, delinquent_60=1, call=True),
     "Delinquent60ExceedsPoolBalance"),
    (SMALL, 0, purchase(5), "PurchaseWhileAmortising"),
    (replace(SMALL, revolving_periods=3, triggers=(Trigger("principal_account", 0, "amortise"),)), 1,
     purchase(5, p=10), "PurchaseWhileAmortising"),
    (SMALL, 0, PeriodReport(0, 0, 0, 0, call=True), "CallNotInDeal"),
    (replace(SMALL, revolving_periods=2, cleanup_call_bps=BPS), 0, PeriodReport(0, 0, 0, 0, call=True),
     "CallWhileRevolving"),
    (replace(SMALL, cleanup_call_bps=9_999), 0, PeriodReport(0, 0, 0, 0, call=True), "CallAbovePoolLimit"),
    (replace(SMALL, revolving_periods=2), 0, purchase(11, p=10), "PurchaseExceedsPrincipalAccount"),
    (replace(SMALL, cleanup_call_bps=BPS), 1, PeriodReport(0, 0, 0, 0), "DealCalled"),
])
def test_every_refusal_by_its_rule_and_figures(chain: EmbeddedChain, harness: Any, deal: DealParams, periods: int,
                                               report: PeriodReport, rule: str) -> None:
    """Each refusal of the model on chain; `periods` accepted reports run first (a purchase
    of 10 after principal 10 at R >= 1 to close the principal-account case, the call for
    DealCalled)."""
    state = DealState.initial(deal)
    setup = PeriodReport(0, 10, 0, 0, call=deal.cleanup_call_bps == BPS)
    for _ in range(periods):
        state = step(chain, harness, deal, state, state, setup)[0]
    assert step(chain, harness, deal, state, state, report)[2] == "refused: " + rule


# -- random version 2 deals -----------------------------------------------------------------------

triggers = st.lists(st.builds(Trigger, st.sampled_from(METRICS), st.one_of(st.integers(0, 1_500), st.integers(0, 10_000)),
                              st.sampled_from(EFFECTS), st.booleans()), max_size=8).map(tuple)


@st.composite
def lives(draw: st.DrawFn) -> tuple[DealParams, list[PeriodReport]]:
    """A deal and up to 12 reports drawn against the model's state (refused ones included).
    The model's deals, with listed triggers and an allowed call made more frequent."""
    deal = draw(v2_deals())
    if deal.triggers is None and draw(st.booleans()):
        deal = replace(deal, default_trigger_bps=0, triggers=draw(triggers))
    if draw(st.booleans()):
        deal = replace(deal, cleanup_call_bps=BPS, revolving_periods=draw(st.integers(0, 3)))
    state = DealState.initial(deal)
    reports = []
    for _ in range(draw(st.integers(0, 12))):
        report = draw_report(draw, deal, state)
        try:
            state = run_period_v2(deal, state, report)[1]
        except WaterfallError:
            pass
        reports.append(report)
    return deal, reports


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
@given(life=lives())
def test_random_v2_deals_chain_equals_model_every_period(chain: EmbeddedChain, harness: Any,
                                                         life: tuple[DealParams, list[PeriodReport]]) -> None:
    deal, reports = life
    model_state = chain_state = DealState.initial(deal)
    event(f"triggers: {'v1' if deal.triggers is None else len(deal.triggers)}")
    for report in reports:
        model_state, chain_state, outcome = step(chain, harness, deal, model_state, chain_state, report)
        event(outcome)
