"""WaterfallV2 gas (issue 17), wired into scripts/bench.py as `waterfall2`.

A 5-tranche deal with 8 triggers (two on each metric, every effect, curable and not), in a
revolving period with a purchase and in an amortising pro-rata period, each with two periods of
trigger history; and the page's example 1 (3 tranches, v1's trigger) as the v1 baseline. Each
period is measured three ways, all on the embedded chain with the model's figures checked first:

- library_gas: gas spent inside WaterfallV2.runPeriod alone (gasleft() around the internal call
  in WaterfallV2Harness.runPeriodMetered: arguments already in memory, nothing encoded);
- engine_call_gas: WaterfallEngine.runPeriod called from a contract, as a deal would call it:
  encoding the arguments, the call, the engine's decoding, the library, the result's encoding and
  the caller's decoding (WaterfallV2Harness.runPeriodThroughEngine);
- harness_tx_gas: the receipt gas of a transaction to WaterfallV2Harness.runPeriod (21,000 and
  calldata included; eth-tester's estimate is coarser), an upper bound nobody pays in a deal.

None of them includes the deal's storage reads and writes, its transfers or its event: those
come with the integration into Deal.sol. Bytecode sizes are printed beside: the engine, and
Deal's current size against EIP-170's 24,576 bytes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.waterfall import DealParams, DealState, PeriodReport, TrancheSpec, Trigger, run_period_v2
from chainabs.waterfall_abi import params_struct, report_struct, result_from, state_struct

EIP170 = 24_576
UNIT = 10**6  # settlement base units per currency unit: magnitudes as a real deal's
ROOT = bytes.fromhex("5a" * 32)

FIVE_TRANCHES = DealParams(
    tranches=(TrancheSpec("A", "A", 600_000 * UNIT, 300), TrancheSpec("B", "B", 150_000 * UNIT, 450),
              TrancheSpec("C", "C", 100_000 * UNIT, 600), TrancheSpec("D", "D", 80_000 * UNIT, 900),
              TrancheSpec("E", "E", 70_000 * UNIT, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000 * UNIT, default_trigger_bps=0,
    revolving_periods=3, principal_mode="pro_rata", cleanup_call_bps=1_000,
    triggers=(Trigger("cumulative_default", 800, "turbo"), Trigger("cumulative_default", 500, "sequential", True),
              Trigger("delinquency_60", 800, "amortise"), Trigger("delinquency_60", 500, "sequential", True),
              Trigger("excess_spread", 100, "amortise"), Trigger("excess_spread", 50, "turbo", True),
              Trigger("principal_account", 2_500, "amortise"), Trigger("principal_account", 4_000, "sequential")),
)
EXAMPLE_1 = DealParams(
    tranches=(TrancheSpec("A", "A", 800_000, 400), TrancheSpec("B", "B", 120_000, 800),
              TrancheSpec("C", "C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500,
)


def _report(i: int, p: int, r: int, d: int, dq: int, u: int = 0) -> PeriodReport:
    return PeriodReport(i * UNIT, p * UNIT, r * UNIT, d * UNIT, delinquent_60=dq * UNIT, purchased_units=u * UNIT,
                        purchased_count=u // 1_000, purchase_root=ROOT if u else bytes(32))


# Periods 1-3 revolve (3 with a purchase), 4-5 amortise pro rata; nothing is breached.
FIVE_TRANCHE_REPORTS = [
    _report(15_000, 60_000, 0, 2_000, 10_000, 60_000),
    _report(15_000, 60_000, 500, 2_000, 10_000, 60_000),
    _report(15_000, 60_000, 0, 2_000, 10_000, 61_000),
    _report(14_000, 70_000, 0, 2_000, 9_000),
    _report(13_000, 70_000, 1_000, 2_000, 8_000),
]


def _measure(chain: EmbeddedChain, harness: Any, engine: Any, deal: DealParams, reports: list[PeriodReport],
             period: int) -> dict[str, Any]:
    """Run the model to `period` - 1, then measure `period` three ways; the chain's result must
    equal the model's."""
    state = DealState.initial(deal)
    for report in reports[:period - 1]:
        state = run_period_v2(deal, state, report)[1]
    report = reports[period - 1]
    expected, _ = run_period_v2(deal, state, report)
    args = (params_struct(deal), state_struct(state), report_struct(report))
    raw, _, library_gas = chain.call(harness.functions.runPeriodMetered(*args))
    through = chain.call(harness.functions.runPeriodThroughEngine(engine.address, *args))
    if result_from(raw) != expected or result_from(through[0]) != expected:
        raise SystemExit(f"WaterfallV2 disagrees with the model in period {period}")
    return {"status": expected.status, "mode": expected.principal_mode_applied,
            "purchase": expected.purchased_units > 0, "breached": sum(t.breached for t in expected.triggers),
            "library_gas": library_gas, "engine_call_gas": through[2],
            "harness_tx_gas": chain.send(harness.functions.runPeriod(*args)).gas_used}


def _size(name: str) -> int:
    return (len(load_artifact(name)["deployedBytecode"]) - 2) // 2


def bench_waterfall2() -> dict[str, Any]:
    chain = EmbeddedChain()
    harness = chain.deploy("WaterfallV2Harness")
    engine = chain.deploy("WaterfallEngine")
    v1 = [PeriodReport(15_000, 80_000, 0, 5_000), PeriodReport(9_000, 60_000, 2_000, 60_000)]
    called = replace(FIVE_TRANCHES, revolving_periods=0)
    call_reports = [_report(14_000, 880_000, 0, 20_000, 0), replace(_report(1_000, 10_000, 0, 0, 0), call=True)]
    return {
        "bench": "waterfall2",
        "five_tranches_8_triggers_revolving_purchase": _measure(chain, harness, engine, FIVE_TRANCHES,
                                                                FIVE_TRANCHE_REPORTS, 3),
        "five_tranches_8_triggers_amortising_pro_rata": _measure(chain, harness, engine, FIVE_TRANCHES,
                                                                 FIVE_TRANCHE_REPORTS, 5),
        "five_tranches_8_triggers_call": _measure(chain, harness, engine, called, call_reports, 2),
        "example_1_v1_period_2": _measure(chain, harness, engine, EXAMPLE_1, v1, 2),
        "bytes": {"WaterfallEngine": _size("WaterfallEngine"), "WaterfallV2Harness": _size("WaterfallV2Harness"),
                  "Deal": _size("Deal"), "Deal_headroom": EIP170 - _size("Deal"), "eip170": EIP170},
        "target": "a whole period, state writes included, <= 900,000 gas (5 tranches, 8 triggers)",
    }
