"""The deal file: the examples, resolution of faces and reserve, and every class of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainabs.dealfile import DealFile, load_deal_file, parse_deal_file
from chainabs.errors import DealError
from chainabs.waterfall import PeriodReport, run_periods

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEAL_TEXT = (EXAMPLES / "deal.toml").read_text()

POOL = """
[pool]
name = "P"
currency = "EUR"
cutoff_date = 2026-10-01
decimals = 6
"""


def deal_text(faces: list[str | None], coupons: list[int] | None = None,
              reserve: str = '"0"', extra: str = "") -> str:
    coupons = coupons or [400] * (len(faces) - 1) + [0]
    parts = [POOL, "[deal]\nservicer_fee_bps = 100\nreserve_target_bps = 100\n"
                   f"default_trigger_bps = 500\ninitial_reserve = {reserve}\n{extra}"]
    for i, (face, coupon) in enumerate(zip(faces, coupons, strict=True)):
        parts.append(f'[[tranches]]\nname = "T{i}"\nsymbol = "T{i}"\ncoupon_bps = {coupon}\n'
                     + (f"face = {face}\n" if face is not None else ""))
    return "\n".join(parts)


def error_of(text: str) -> DealError:
    with pytest.raises(DealError) as info:
        parse_deal_file(text, "deal.toml")
    return info.value


# --- the examples ---------------------------------------------------------------------------


def test_example_deal_reproduces_the_worked_example() -> None:
    deal = load_deal_file(EXAMPLES / "deal.toml")
    params = deal.deal_params(1_000_000)
    assert [(t.symbol, t.face, t.coupon_bps) for t in params.tranches] == [
        ("CABS-A", 800_000, 400), ("CABS-B", 120_000, 800), ("CABS-C", 80_000, 0)]
    assert (params.servicer_fee_bps, params.reserve_target_bps, params.initial_reserve,
            params.default_trigger_bps) == (100, 100, 10_000, 500)
    reports = [PeriodReport(15_000, 80_000, 0, 5_000), PeriodReport(9_000, 60_000, 2_000, 60_000),
               PeriodReport(500, 0, 0, 0)]
    last = run_periods(params, reports)[-1]
    assert [t.balance_end for t in last.tranches] == [646_745, 120_000, 28_255]


@pytest.mark.parametrize("pool", [1, 3, 7, 999, 10_001, 1_000_000_003, 329_773_245_502_721])
def test_example_faces_sum_exactly_to_the_pool(pool: int) -> None:
    deal = load_deal_file(EXAMPLES / "deal.toml")
    if pool < 10:   # 80 % of a tiny pool leaves nothing, or 12 % rounds to 0
        with pytest.raises(DealError) as info:
            deal.deal_params(pool)
        assert info.value.field.startswith("tranches[")
        return
    params = deal.deal_params(pool)
    faces = [t.face for t in params.tranches]
    assert sum(faces) == pool
    assert faces[0] == pool * 8000 // 10_000 and faces[1] == pool * 1200 // 10_000
    assert params.initial_reserve == pool * 100 // 10_000


def test_example_pool_and_eligibility() -> None:
    deal = load_deal_file(EXAMPLES / "deal.toml")
    assert deal.pool.name == "Consumer Loans 2026-1" and deal.pool.currency == "EUR"
    assert deal.pool.cutoff_day == 20_727 and deal.pool.decimals == 6
    assert deal.pool.settlement_token is None and deal.has_tranches
    criteria = deal.eligibility()
    assert criteria.statuses == frozenset({"current", "dpd_1_30"})
    assert (criteria.cutoff_day, criteria.max_rate_bps, criteria.min_outstanding_units) == (20_727, 3600, 1)

    pool = load_deal_file(EXAMPLES / "pool.toml")
    assert not pool.has_tranches and pool.deal is None
    assert pool.eligibility().cutoff_day == 20_727
    with pytest.raises(DealError) as info:
        pool.deal_params(1_000_000)
    assert info.value.field == "tranches"


def test_pool_only_file_uses_tape_defaults() -> None:
    deal = parse_deal_file(POOL.replace("2026-10-01", '"2026-10-01"'))
    from chainabs.tape import Eligibility
    assert deal.eligibility() == Eligibility(cutoff_day=20_727)


def test_eligibility_overrides() -> None:
    deal = parse_deal_file(POOL + '[eligibility]\nmin_outstanding = "0.01"\nstatuses = ["current"]\n'
                                  'max_term_months = 36\nmin_credit_score = 600\nproducts = ["cash"]\n')
    c = deal.eligibility()
    assert c.min_outstanding_units == 10_000 and c.statuses == frozenset({"current"})
    assert (c.max_term_months, c.min_credit_score, c.products) == (36, 600, frozenset({"cash"}))


# --- faces and reserve ----------------------------------------------------------------------


def test_amount_faces_and_amount_reserve() -> None:
    deal = parse_deal_file(deal_text(['"800000.00"', '"120000.5"', '"79999.5"'], reserve='"10000.25"'))
    params = deal.deal_params(1_000_000_000_000)
    assert [t.face for t in params.tranches] == [800_000_000_000, 120_000_500_000, 79_999_500_000]
    assert params.initial_reserve == 10_000_250_000
    toml_ints = parse_deal_file(deal_text(["800000", "200000"], reserve="0")).deal_params(10**12)
    assert [t.face for t in toml_ints.tranches] == [800_000_000_000, 200_000_000_000]


def test_stated_residual_face_must_match_what_is_left() -> None:
    deal = parse_deal_file(deal_text(['"800000"', '"120000"', '"80000"']))
    with pytest.raises(DealError) as info:
        deal.deal_params(1_000_000_000_001)          # one unit more than the faces
    assert info.value.field == "tranches[2].face"
    # Shares absorb their own rounding: 3 share faces may leave up to 2 units over.
    shares = parse_deal_file(deal_text(['"33.33%"', '"33.33%"', '"33.34%"']))
    assert sum(t.face for t in shares.deal_params(10_001).tranches) == 10_001


@pytest.mark.parametrize("faces, pool, field", [
    (['"900000"', '"200000"', None], 1_000_000_000_000, "tranches[1].face"),   # exceed the pool
    (['"600000"', '"400000"', None], 1_000_000_000_000, "tranches[1].face"),   # residual 0
    (['"2000000"', None], 1_000_000_000_000, "tranches[0].face"),
    (['"0.01%"', '"50%"', None], 50, "tranches[0].face"),                       # rounds to 0
])
def test_faces_that_leave_no_residual(faces: list[str | None], pool: int, field: str) -> None:
    with pytest.raises(DealError) as info:
        parse_deal_file(deal_text(faces)).deal_params(pool)
    assert info.value.field == field


@pytest.mark.parametrize("pool", [0, -5, True, 1.5])
def test_bad_pool_balance(pool: object) -> None:
    with pytest.raises(DealError) as info:
        parse_deal_file(DEAL_TEXT).deal_params(pool)  # type: ignore[arg-type]
    assert info.value.field == "pool"


@settings(max_examples=60, deadline=None)
@given(shares=st.lists(st.integers(1, 4000), min_size=1, max_size=4).filter(lambda s: sum(s) < 10_000),
       pool=st.integers(10_000, 10**18), reserve_bps=st.integers(0, 10_000))
def test_share_faces_always_sum_to_the_pool(shares: list[int], pool: int, reserve_bps: int) -> None:
    faces = [f'"{bps // 100}.{bps % 100:02d}%"' for bps in shares] + [None]
    reserve = f'"{reserve_bps // 100}.{reserve_bps % 100:02d}%"'
    params = parse_deal_file(deal_text(faces, reserve=reserve)).deal_params(pool)
    resolved = [t.face for t in params.tranches]
    assert sum(resolved) == pool and all(face > 0 for face in resolved)
    assert resolved[:-1] == [pool * bps // 10_000 for bps in shares]
    assert params.initial_reserve == pool * reserve_bps // 10_000


# --- bad files ------------------------------------------------------------------------------


def _sub(old: str, new: str) -> str:
    assert old in DEAL_TEXT, old
    return DEAL_TEXT.replace(old, new, 1)


@pytest.mark.parametrize("text, field, words", [
    # unknown keys, sections and misspellings
    (_sub("coupon_bps = 800", "coupon = 800"), "tranches[1].coupon", "unknown key"),
    (DEAL_TEXT + "\n[extra]\nx = 1\n", "extra", "unknown key"),
    (_sub("decimals = 6", "decimals = 6\ncolour = 'red'"), "pool.colour", "unknown key"),
    (_sub("max_rate_bps = 3600", "max_rate = 3600"), "eligibility.max_rate", "max_rate_bps"),
    # missing keys and wrong types
    (_sub('currency = "EUR"\n', ""), "pool.currency", "missing"),
    (_sub("coupon_bps = 800", 'coupon_bps = "800"'), "tranches[1].coupon_bps", "integer"),
    (_sub("coupon_bps = 800", "coupon_bps = 8.5"), "tranches[1].coupon_bps", "integer"),
    (_sub("coupon_bps = 800", "coupon_bps = true"), "tranches[1].coupon_bps", "integer"),
    (_sub("decimals = 6", 'decimals = "6"'), "pool.decimals", "integer"),
    ("pool = 3\n" + DEAL_TEXT[DEAL_TEXT.index("[eligibility]"):], "pool", "table"),
    (_sub('statuses = ["current", "dpd_1_30"]', 'statuses = "current"'), "eligibility.statuses", "list"),
    # values out of range
    (_sub("coupon_bps = 800", "coupon_bps = 12000"), "tranches[1].coupon_bps", "basis points"),
    (_sub("coupon_bps = 800", "coupon_bps = -1"), "tranches[1].coupon_bps", "basis points"),
    (_sub("servicer_fee_bps = 100", "servicer_fee_bps = 10001"), "deal.servicer_fee_bps", "basis points"),
    (_sub("default_trigger_bps = 500", "default_trigger_bps = -500"), "deal.default_trigger_bps", "basis"),
    (_sub("max_rate_bps = 3600", "max_rate_bps = 36000"), "eligibility.max_rate_bps", "0..3600"),
    (_sub("decimals = 6", "decimals = 40"), "pool.decimals", "0..36"),
    (_sub('currency = "EUR"', 'currency = "euro"'), "pool.currency", "ISO 4217"),
    (_sub("cutoff_date = 2026-10-01", 'cutoff_date = "2026-13-01"'), "pool.cutoff_date", "calendar"),
    (_sub("cutoff_date = 2026-10-01", "cutoff_date = 2026-10-01T12:00:00"), "pool.cutoff_date", "time"),
    (_sub("cutoff_date = 2026-10-01", "cutoff_date = 1969-12-31"), "pool.cutoff_date", "1970"),
    (_sub('"dpd_1_30"]', '"late"]'), "eligibility.statuses", "unknown status 'late'"),
    (_sub('# min_outstanding = "0.01"', 'min_outstanding = 0.01'), "eligibility.min_outstanding", "strings"),
    (_sub('# min_outstanding = "0.01"', 'min_outstanding = "0.0000001"'), "eligibility.min_outstanding",
     "decimal places"),
    (_sub('# min_outstanding = "0.01"', 'min_outstanding = "0"'), "eligibility.min_outstanding", "more than 0"),
    (_sub('name = "Consumer Loans 2026-1"', 'name = "  "'), "pool.name", "characters"),
    (_sub('# settlement_token = "0x..."', 'settlement_token = "0x1234"'), "pool.settlement_token", "40 hex"),
    (_sub('# settlement_token = "0x..."', 'settlement_token = "0x' + "0" * 40 + '"'),
     "pool.settlement_token", "zero address"),
    (_sub('# settlement_token = "0x..."', 'settlement_token = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"'),
     "pool.settlement_token", "checksum"),
    # tranche rules
    (_sub("coupon_bps = 0", "coupon_bps = 50"), "tranches[2].coupon_bps", "residual"),
    (_sub('symbol = "CABS-B"', 'symbol = "CABS-A"'), "tranches[1].symbol", "duplicate symbol"),
    (_sub('name = "Class B"', 'name = "Class A"'), "tranches[1].name", "duplicate name"),
    (_sub('symbol = "CABS-B"', 'symbol = "CABS B!"'), "tranches[1].symbol", "A-Z"),
    (_sub('face = "80%"', 'face = "rest"'), "tranches[0].face", "only the last"),
    (_sub('face = "80%"\n', ""), "tranches[0].face", "only the last"),
    (_sub('face = "12%"', 'face = "12.345%"'), "tranches[1].face", "whole number of basis points"),
    (_sub('face = "12%"', 'face = "20%"'), "tranches[1].face", "nothing for the residual"),
    (_sub('face = "12%"', 'face = "0%"'), "tranches[1].face", "more than 0"),
    (_sub('face = "12%"', 'face = "120%"'), "tranches[1].face", "at most 100%"),
    (_sub('face = "12%"', 'face = "12 percent"'), "tranches[1].face", "decimal"),
    (_sub('face = "12%"', "face = 12.5"), "tranches[1].face", "strings"),
    (_sub('face = "80%"', 'face = "1.0000001"'), "tranches[0].face", "decimal places"),
    (_sub('face = "rest"', 'face = "10%"'), "tranches[2].face", "100%"),
    (DEAL_TEXT.split("[[tranches]]")[0], "tranches", "2 to 5"),
    (DEAL_TEXT + '[[tranches]]\nname = "D"\nsymbol = "D"\ncoupon_bps = 0\n' * 3, "tranches", "2 to 5"),
    ("[[tranches]]".join(DEAL_TEXT.split("[[tranches]]")[:1] + DEAL_TEXT.split("[[tranches]]")[3:]),
     "tranches", "2 to 5"),
    (DEAL_TEXT.replace("[deal]", "[unused]").split("[unused]")[0]
     + "[[tranches]]" + "[[tranches]]".join(DEAL_TEXT.split("[[tranches]]")[1:]), "deal", "required"),
    # reserve
    (_sub('initial_reserve = "1%"', 'initial_reserve = "-5"'), "deal.initial_reserve", "negative"),
    (_sub('initial_reserve = "1%"', 'initial_reserve = "-1%"'), "deal.initial_reserve", "negative"),
    (_sub('initial_reserve = "1%"', "initial_reserve = -5"), "deal.initial_reserve", "negative"),
    (_sub('initial_reserve = "1%"', "initial_reserve = 100.5"), "deal.initial_reserve", "strings"),
    (_sub('initial_reserve = "1%"', 'initial_reserve = "1,000"'), "deal.initial_reserve", "decimal"),
])
def test_bad_file_names_its_field(text: str, field: str, words: str) -> None:
    error = error_of(text)
    assert error.field == field, str(error)
    assert words in error.reason, str(error)
    assert "pydantic" not in str(error) and "Traceback" not in str(error)


@pytest.mark.parametrize("text, line", [
    (DEAL_TEXT.replace("decimals = 6", "decimals = "), 8),
    ('[pool]\nname = "Class A"; symbol = "X"\n', 2),
    ("[pool]\n[pool]\n", 2),
])
def test_malformed_toml_reports_its_line(text: str, line: int) -> None:
    error = error_of(text)
    assert error.field == "deal.toml"
    assert f"line {line}," in error.reason and "TOML" in error.reason


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DealError) as info:
        load_deal_file(tmp_path / "missing.toml")
    assert "cannot read" in info.value.reason
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[pool]\nname = "\xff"\n')
    with pytest.raises(DealError) as info:
        load_deal_file(bad)
    assert info.value.field == "bad.toml" and "line 2" in info.value.reason


def test_settlement_token_is_checksummed() -> None:
    address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    for written in (address, address.lower()):
        deal = parse_deal_file(POOL + f'settlement_token = "{written}"\n')
        assert deal.pool.settlement_token == address


def test_cross_field_rules_hold_for_model_validate_too() -> None:
    import tomllib
    data = tomllib.loads(DEAL_TEXT)
    data["tranches"][2]["coupon_bps"] = 7
    with pytest.raises(DealError) as info:
        DealFile.model_validate(data)
    assert info.value.field == "tranches[2].coupon_bps"


def test_a_key_with_a_newline_is_quoted_in_the_message() -> None:
    """Hypothesis found `pool = {"\\n" = 0}` printed a raw newline inside the one-line error."""
    with pytest.raises(DealError) as caught:
        parse_deal_file('pool = {"\\n" = 0}', "generated.toml")
    assert "\n" not in str(caught.value)
    assert caught.value.field == "pool.'\\n'"
