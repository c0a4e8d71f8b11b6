"""The deal file's version 2 keys: the revolving example reproduces WATERFALL.md's example 2,
version 1 files mean what they meant, and every bad value names its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainabs.dealfile import ConcentrationLimits, load_deal_file, parse_deal_file
from chainabs.errors import DealError
from chainabs.waterfall import PeriodReport, Trigger, run_periods_v2

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REVOLVING = (EXAMPLES / "deal-revolving.toml").read_text()
V1 = (EXAMPLES / "deal.toml").read_text()
ROOT = b"\x01" * 32


def error_of(text: str) -> DealError:
    with pytest.raises(DealError) as info:
        parse_deal_file(text, "deal.toml")
    return info.value


def _sub(old: str, new: str, text: str = REVOLVING) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_revolving_example_is_example_2() -> None:
    deal = load_deal_file(EXAMPLES / "deal-revolving.toml")
    params = deal.deal_params(1_000_000)
    assert [(t.face, t.coupon_bps) for t in params.tranches] == [(750_000, 400), (150_000, 700), (100_000, 0)]
    assert (params.revolving_periods, params.principal_mode, params.cleanup_call_bps, params.initial_reserve,
            params.default_trigger_bps) == (6, "pro_rata", 1_000, 10_000, 0)
    assert params.triggers == (Trigger("principal_account", 1_000, "amortise", False),
                               Trigger("delinquency_60", 400, "sequential", True),
                               Trigger("cumulative_default", 440, "turbo", False),
                               Trigger("excess_spread", 200, "amortise", False))
    assert deal.concentration_limits() == ConcentrationLimits(max_region_share_bps=2_500,
                                                              max_borrower_outstanding_units=5_000_000_000,
                                                              min_wac_bps=1_800)
    rows = [(20_000, 150_000, 0, 5_000, 10_000, 150_000), (19_000, 160_000, 1_000, 8_000, 12_000, 100_000),
            (17_000, 140_000, 0, 10_000, 40_000, 0), (15_000, 200_000, 2_000, 6_000, 5_000, 0),
            (12_000, 180_000, 1_000, 9_000, 30_000, 0), (7_000, 150_000, 3_000, 5_000, 2_000, 0),
            (4_000, 125_000, 0, 2_000, 0, 0), (1_500, 20_000, 0, 1_000, 0, 0)]
    reports = [PeriodReport(i, p, r, d, dq, u, 1 if u else 0, ROOT if u else bytes(32), call=n == 7)
               for n, (i, p, r, d, dq, u) in enumerate(rows)]
    results = run_periods_v2(params, reports)
    assert [t.balance_end for t in results[6].tranches] == [12_859, 50_897, 33_932]
    assert results[7].residual_paid == 3_391 and results[7].status == "called"


def test_version_1_file_keeps_its_meaning() -> None:
    params = parse_deal_file(V1).deal_params(1_000_000)
    assert params.is_v1 and params.triggers is None and params.default_trigger_bps == 500
    assert params.effective_triggers == (Trigger("cumulative_default", 500, "turbo", False),)
    assert parse_deal_file(V1).concentration_limits() == ConcentrationLimits()


def test_explicit_empty_trigger_list_and_partial_concentration() -> None:
    text = "triggers = []\n" + _sub("[concentration]                    # checked on the pool after each purchase\n"
                                    'max_region_share = "25%"\n', "[concentration]\n")
    text = text[:text.index("[[triggers]]")] + text[text.index("[concentration]"):]
    deal = parse_deal_file(text)
    assert deal.deal_params(1_000).triggers == ()
    assert deal.concentration_limits().max_region_share_bps is None


_TRIGGERS = REVOLVING[REVOLVING.index("[[triggers]]"):REVOLVING.index("[concentration]")]


@pytest.mark.parametrize("text, field, words", [
    (_sub('principal_mode = "pro_rata"', 'principal_mode = "pro-rata"'), "deal.principal_mode", "'pro_rata'"),
    (_sub("revolving_periods = 6", "revolving_periods = -1"), "deal.revolving_periods", "0..1200"),
    (_sub("revolving_periods = 6", 'revolving_periods = "6"'), "deal.revolving_periods", "integer"),
    (_sub("cleanup_call_bps = 1000", "cleanup_call_bps = 10001"), "deal.cleanup_call_bps", "basis points"),
    (_sub('metric = "excess_spread"', 'metric = "losses"'), "triggers[3].metric", "cumulative_default"),
    (_sub('effect = "turbo"', 'effect = "stop"'), "triggers[2].effect", "'amortise'"),
    (_sub("threshold_bps = 440", "threshold_bps = 10001"), "triggers[2].threshold_bps", "basis points"),
    (_sub("curable = true", 'curable = "yes"'), "triggers[1].curable", "true or false"),
    (_sub("threshold_bps = 440", "threshold = 440"), "triggers[2].threshold", "threshold_bps"),
    (_sub("threshold_bps = 440\n", ""), "triggers[2].threshold_bps", "missing"),
    (REVOLVING + _TRIGGERS * 2, "triggers", "at most 8 triggers, the file has 12"),
    (_sub("cleanup_call_bps = 1000", "cleanup_call_bps = 1000\ndefault_trigger_bps = 500"),
     "deal.default_trigger_bps", "not allowed beside [[triggers]]"),
    (REVOLVING.replace(_TRIGGERS, ""), "deal.default_trigger_bps", "triggers = []"),
    (_sub('max_region_share = "25%"', "max_region_share = 2500"), "concentration.max_region_share", '"25%"'),
    (_sub('max_region_share = "25%"', 'max_region_share = "25.001%"'), "concentration.max_region_share",
     "whole number of basis points"),
    (_sub('max_borrower_outstanding = "5000.00"', 'max_borrower_outstanding = "0.0000001"'),
     "concentration.max_borrower_outstanding", "decimal places"),
    (_sub('max_borrower_outstanding = "5000.00"', "max_borrower_outstanding = 5000.5"),
     "concentration.max_borrower_outstanding", "strings"),
    (_sub("min_wac_bps = 1800", "min_wac_bps = 5000"), "concentration.min_wac_bps", "0..3600"),
    (_sub("min_wac_bps = 1800", "min_wac = 1800"), "concentration.min_wac", "min_wac_bps"),
    (REVOLVING[:REVOLVING.index("[deal]")] + _TRIGGERS, "deal", "[[triggers]]"),
    (REVOLVING[:REVOLVING.index("[deal]")] + "[concentration]\nmin_wac_bps = 1\n", "deal", "[concentration]"),
])
def test_bad_v2_value_names_its_field(text: str, field: str, words: str) -> None:
    error = error_of(text)
    assert error.field == field, str(error)
    assert words in error.reason, str(error)
    assert "pydantic" not in str(error) and "Traceback" not in str(error)
