"""The servicing simulator: determinism, conservation, schedules, scenarios, resuming."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs import tape, tapegen
from chainabs.dealfile import load_deal_file
from chainabs.servicing import (
    PeriodOutcome,
    SimulationError,
    Simulator,
    monthly_rates,
    period_loans,
    principal_split,
    scheduled_principal,
)
from chainabs.tape import Loan, remaining_months
from chainabs.waterfall import check_conservation, run_periods

DEAL = Path(__file__).resolve().parents[1] / "examples" / "deal.toml"
CUTOFF = date(2026, 10, 1).toordinal() - date(1970, 1, 1).toordinal()
CURRENT, DPD_1_30, DPD_90_PLUS, DEFAULTED, REPAID = 0, 1, 4, 5, 6
AMORTIZING, BULLET, INTEREST_ONLY = 0, 1, 2


def make_loan(i: int, *, outstanding: int = 1_000_000_000, rate_bps: int = 1800, months: int = 24,
              repayment_type: int = AMORTIZING, status: int = CURRENT) -> Loan:
    """A loan maturing `months` calendar months after the cut-off (remaining_months == months)."""
    maturity = date(2026 + (9 + months) // 12, (9 + months) % 12 + 1, 1).toordinal() - date(1970, 1, 1).toordinal()
    return Loan(line=i + 2, loan_id=f"L{i}", borrower_ref=f"B{i}", product=1, currency="EUR",
                principal_units=outstanding, outstanding_units=outstanding, rate_bps=rate_bps,
                origination_day=CUTOFF - 100, maturity_day=maturity, term_months=months + 3,
                repayment_type=repayment_type, status=status, funded_share_bps=10_000,
                credit_score=700, region="DE-BY")


@pytest.fixture(scope="module")
def pool() -> list[Loan]:
    """A realistic 3,000-loan pool: the generated tape's eligible loans."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(tape.COLUMNS)
    writer.writerows(row.values() for row in tapegen.generate_loans(3_000, 11))
    parsed = tape.parse_tape(buffer.getvalue().encode())
    eligible, _ = tape.apply_eligibility(parsed.loans, load_deal_file(DEAL).eligibility())
    assert len(eligible) > 2_500
    return eligible


def simulate(loans: list[Loan], periods: int, **scenario: object) -> list[PeriodOutcome]:
    params: dict[str, object] = {"cdr": 0.05, "cpr": 0.10, "recovery": 0.4, "lag": 3, "seed": 1}
    params.update(scenario)
    return Simulator(loans, cutoff_day=CUTOFF, **params).run(periods)  # type: ignore[arg-type]


def check_period_invariants(loans: list[Loan], outcomes: list[PeriodOutcome]) -> None:
    balance = sum(loan.outstanding_units for loan in loans)
    previous = [loan.outstanding_units for loan in loans]
    for k, o in enumerate(outcomes, 1):
        r = o.report
        assert o.period == k and o.pool_balance_start == balance
        assert sum(o.outstanding) == balance - r.principal - r.defaults == o.pool_balance_end
        assert min(r.interest, r.principal, r.recoveries, r.defaults, o.prepayments) >= 0
        assert r.interest <= o.scheduled_interest and o.prepayments <= r.principal
        assert len(o.statuses) == len(o.outstanding) == len(loans)
        for s, b, before in zip(o.statuses, o.outstanding, previous, strict=True):
            assert 0 <= s <= 6 and 0 <= b <= before
            assert b == 0 or s < DEFAULTED
        balance, previous = o.pool_balance_end, o.outstanding


# --- determinism and conservation ------------------------------------------------------------


def test_same_seed_same_run_other_seed_other_run(pool: list[Loan]) -> None:
    a, b = simulate(pool, 6), simulate(pool, 6)
    assert a == b
    c = simulate(pool, 6, seed=2)
    assert [o.report for o in c] != [o.report for o in a]


def test_conservation_every_period(pool: list[Loan]) -> None:
    outcomes = simulate(pool, 24, cdr=0.2, cpr=0.3)
    check_period_invariants(pool, outcomes)
    assert sum(o.report.defaults for o in outcomes) > 0 and sum(o.prepayments for o in outcomes) > 0


def test_reports_run_through_the_waterfall(pool: list[Loan]) -> None:
    deal = load_deal_file(DEAL)
    params = deal.deal_params(sum(loan.outstanding_units for loan in pool))
    for scenario in ({}, {"cdr": 0.6, "recovery": 0.1}, {"cdr": 1.0, "cpr": 0.0, "lag": 0}):
        outcomes = simulate(pool, 40, **scenario)
        results = run_periods(params, [o.report for o in outcomes])
        for result, outcome in zip(results, outcomes, strict=True):
            check_conservation(result)
            assert result.pool_balance_end == outcome.pool_balance_end


def test_whole_pool_runs_off(pool: list[Loan]) -> None:
    outcomes = simulate(pool, 40)
    assert outcomes[-1].pool_balance_end == 0
    assert set(outcomes[-1].statuses) <= {DEFAULTED, REPAID}


# --- schedules -------------------------------------------------------------------------------


QUIET = {"cdr": 0, "cpr": 0, "recovery": 0, "lag": 0, "seed": 5, "delinquency": 0}


@pytest.mark.parametrize("outstanding, rate_bps, months", [
    (1_000_000_000, 1800, 24), (12_345, 3600, 36), (1_000_000_000, 0, 7), (999_999_999_999, 1, 119),
    (7, 2400, 12), (5_000_000, 1500, 1),
])
def test_amortizing_pays_off_exactly_at_maturity(outstanding: int, rate_bps: int, months: int) -> None:
    loan = make_loan(0, outstanding=outstanding, rate_bps=rate_bps, months=months)
    assert remaining_months(CUTOFF, loan.maturity_day) == months
    outcomes = simulate([loan], months + 2, **QUIET)
    balances = [o.outstanding[0] for o in outcomes]
    assert balances[months - 1] == 0 and outcomes[months - 1].statuses[0] == REPAID
    assert all(b > 0 for b in balances[:months - 1]) or outstanding < months
    # Level payments: interest + principal stays within a few units of the exact annuity.
    r = Fraction(rate_bps, 120_000)
    annuity = outstanding * r / (1 - (1 + r) ** -months) if r else Fraction(outstanding, months)
    if outstanding > 1_000:
        for o in outcomes[:months]:
            assert abs(o.report.interest + o.report.principal - annuity) <= 5
    assert sum(o.report.principal for o in outcomes) == outstanding


@pytest.mark.parametrize("repayment_type", [BULLET, INTEREST_ONLY])
def test_bullet_and_interest_only_pay_principal_at_maturity(repayment_type: int) -> None:
    loan = make_loan(0, outstanding=10_000_000, rate_bps=1200, months=6, repayment_type=repayment_type)
    outcomes = simulate([loan], 8, **QUIET)
    assert [o.report.principal for o in outcomes] == [0] * 5 + [10_000_000, 0, 0]
    assert [o.report.interest for o in outcomes] == [100_000] * 6 + [0, 0]


def test_delinquent_loan_pays_nothing_and_catches_up_by_maturity() -> None:
    loan = make_loan(0, outstanding=1_000_000, rate_bps=1200, months=6, status=DPD_1_30)
    sim = Simulator([loan], cutoff_day=CUTOFF, cdr=0, cpr=0, recovery=0, lag=0, seed=1, delinquency=0)
    first = sim.step()      # CDR 0: a delinquent loan always cures, and pays that month
    assert first.statuses == [CURRENT] and first.report.interest == 10_000
    outcomes = [first, *sim.run(6)]
    assert outcomes[5].outstanding == [0] and sum(o.report.principal for o in outcomes) == 1_000_000


# --- scenarios --------------------------------------------------------------------------------


def test_no_cdr_no_cpr_means_no_defaults_and_no_prepayments(pool: list[Loan]) -> None:
    outcomes = simulate(pool, 24, cdr=0, cpr=0)
    assert all(o.report.defaults == o.report.recoveries == o.prepayments == 0 for o in outcomes)
    assert any(DPD_1_30 in o.statuses for o in outcomes)       # loans still miss, then cure
    check_period_invariants(pool, outcomes)


@pytest.mark.parametrize("lag", [0, 1, 3, 7])
def test_recoveries_arrive_exactly_lag_periods_after_the_default(lag: int) -> None:
    loans = [make_loan(0, outstanding=1_000, status=DPD_90_PLUS),
             make_loan(1, outstanding=5_000, months=36)]
    outcomes = simulate(loans, lag + 3, cdr=1.0, cpr=0, recovery=0.3, lag=lag)
    assert outcomes[0].report.defaults == 1_000 and outcomes[0].statuses[0] == DEFAULTED
    assert outcomes[0].outstanding[0] == 0
    recoveries = [o.report.recoveries for o in outcomes]
    assert recoveries[lag] == 300       # exact: 0.3 is 3/10, not 0.29999...
    assert sum(recoveries) == 300
    for o in outcomes[1:]:
        assert o.report.defaults == 0 or o.period >= 5   # loan 1 needs 5 months to default


def test_tape_defaulted_and_repaid_loans_settle_in_period_one() -> None:
    loans = [make_loan(0, outstanding=700, status=DEFAULTED), make_loan(1, outstanding=300, status=REPAID)]
    [o] = simulate(loans, 1, cdr=0, recovery=1, lag=0)
    assert (o.report.defaults, o.report.principal, o.report.recoveries) == (700, 300, 700)
    assert o.outstanding == [0, 0] and o.statuses == [DEFAULTED, REPAID]


def test_prepayments_are_roughly_the_smm(pool: list[Loan]) -> None:
    rates = monthly_rates(0.0, 0.3)
    [o] = simulate(pool, 1, cdr=0, cpr=0.3)
    running = [remaining_months(CUTOFF, loan.maturity_day) > 1 and loan.status == CURRENT for loan in pool]
    prepaid = sum(1 for run, s in zip(running, o.statuses, strict=True) if run and s == REPAID)
    paying = sum(running) * (1 - rates.miss)
    assert 0.7 * rates.smm < prepaid / paying < 1.3 * rates.smm


@pytest.mark.parametrize("cdr", [0.0, 1e-6, 0.03, 0.1, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_monthly_chain_matches_the_cdr(cdr: float) -> None:
    rates = monthly_rates(cdr, 0.1)
    assert rates.mdr == pytest.approx(1 - (1 - cdr) ** (1 / 12))
    assert rates.miss * math.prod(rates.roll) == pytest.approx(rates.mdr, rel=1e-9, abs=1e-15)
    assert 0 <= rates.miss <= 1 and all(0 <= r <= 1 for r in rates.roll)
    assert rates.smm == pytest.approx(1 - 0.9 ** (1 / 12))
    # continuity across the three regimes
    near = monthly_rates(min(1.0, cdr + 1e-9), 0.1)
    assert near.miss == pytest.approx(rates.miss, abs=1e-6)
    if cdr == 0.0:
        assert rates.roll == (0.0, 0.0, 0.0, 0.0)
    assert monthly_rates(1.0, 0).roll == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("kwargs", [
    {"cdr": 1.5}, {"cpr": -0.1}, {"recovery": 2}, {"recovery": "x"}, {"lag": -1}, {"lag": 1.5},
    {"seed": 1.5}, {"cdr": True}, {"delinquency": 2}, {"roll_rates": (0.5, 0.5)},
    {"roll_rates": (1.0, 0.5, 0.5, 0.5)},
])
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    params: dict[str, object] = {"cdr": 0.05, "cpr": 0.1, "recovery": 0.4, "lag": 3, "seed": 1}
    params.update(kwargs)
    with pytest.raises(SimulationError):
        Simulator([make_loan(0)], cutoff_day=CUTOFF, **params)  # type: ignore[arg-type]


# --- resuming and the period tape -------------------------------------------------------------


def test_resume_from_saved_state_continues_the_same_run(pool: list[Loan]) -> None:
    straight = simulate(pool, 12, cdr=0.3)
    sim = Simulator(pool, cutoff_day=CUTOFF, cdr=0.3, cpr=0.10, recovery=0.4, lag=3, seed=1)
    first = sim.run(5)
    saved = json.loads(json.dumps(sim.state_dict()))
    resumed = Simulator.from_state_dict(pool, saved)
    assert resumed.period == 5 and resumed.pool_balance == first[-1].pool_balance_end
    assert first + resumed.run(7) == straight


def test_saved_state_must_match_the_loans(pool: list[Loan]) -> None:
    sim = Simulator(pool, cutoff_day=CUTOFF, cdr=0.3, cpr=0.1, recovery=0.4, lag=3, seed=1)
    saved = sim.state_dict()
    with pytest.raises(SimulationError):
        Simulator.from_state_dict(pool[1:], saved)
    with pytest.raises(SimulationError):
        Simulator.from_state_dict(pool, {"version": 1})
    with pytest.raises(SimulationError):
        Simulator.from_state_dict(pool, {**saved, "version": 99})


def test_period_tape_gives_the_period_leaves(pool: list[Loan]) -> None:
    from chainabs import merkle
    outcome = simulate(pool, 3, cdr=0.5)[-1]
    period = period_loans(pool, outcome)
    salt = bytes(range(32))
    for i in (0, 1, len(pool) // 2, len(pool) - 1):
        assert period[i].status == outcome.statuses[i]
        assert period[i].outstanding_units == outcome.outstanding[i]
        assert period[i].loan_id == pool[i].loan_id and period[i].region == pool[i].region
        assert merkle.loan_hash(period[i], salt) == merkle.loan_hash(
            pool[i], salt, status=outcome.statuses[i], outstanding_units=outcome.outstanding[i])


# --- properties --------------------------------------------------------------------------------


loan_terms = st.tuples(st.integers(0, 10**13), st.integers(0, 3600), st.integers(1, 120),
                       st.integers(0, 2), st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5, 6]))
probability = st.floats(0, 1, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms=st.lists(loan_terms, min_size=1, max_size=25), cdr=probability, cpr=probability,
       recovery=st.fractions(0, 1), lag=st.integers(0, 6), seed=st.integers(0, 2**64),
       periods=st.integers(1, 30))
def test_any_pool_conserves_balance_and_the_waterfall_accepts_it(
        terms: list[tuple[int, int, int, int, int]], cdr: float, cpr: float, recovery: Fraction,
        lag: int, seed: int, periods: int) -> None:
    loans = [make_loan(i, outstanding=out, rate_bps=rate, months=months, repayment_type=rtype, status=status)
             for i, (out, rate, months, rtype, status) in enumerate(terms)]
    outcomes = simulate(loans, periods, cdr=cdr, cpr=cpr, recovery=recovery, lag=lag, seed=seed)
    check_period_invariants(loans, outcomes)
    total_defaults = sum(o.report.defaults for o in outcomes)
    assert sum(o.report.recoveries for o in outcomes) <= total_defaults * recovery
    balance = sum(loan.outstanding_units for loan in loans)
    if balance >= 10:   # the example deal needs 80 % and 12 % of the pool to be whole units
        params = load_deal_file(DEAL).deal_params(balance)
        for result in run_periods(params, [o.report for o in outcomes]):
            check_conservation(result)


@settings(max_examples=40, deadline=None)
@given(out=st.integers(1, 10**13), rate=st.integers(0, 3600), months=st.integers(1, 120),
       seed=st.integers(0, 1000))
def test_always_current_amortizing_loan_ends_at_zero_at_maturity(out: int, rate: int, months: int,
                                                                 seed: int) -> None:
    loan = make_loan(0, outstanding=out, rate_bps=rate, months=months)
    outcomes = simulate([loan], months, **{**QUIET, "seed": seed})
    assert outcomes[-1].outstanding == [0]
    assert sum(o.report.principal for o in outcomes) == out
    assert all(o.report.interest == o.scheduled_interest for o in outcomes)


def test_principal_split_by_hand() -> None:
    """Scheduled principal is the schedule's, prepayments what a loan paid beyond it."""
    level = make_loan(0, outstanding=1_200, rate_bps=0, months=12)       # owes 1,200 / 12 = 100
    bullet = make_loan(1, outstanding=5_000, months=6, repayment_type=BULLET)  # owes nothing yet
    gone = make_loan(2, outstanding=700, months=12)                      # defaults: no payment at all
    late = make_loan(3, outstanding=900, rate_bps=0, months=3, status=DPD_1_30)  # owes 300, pays 0
    loans = [level, bullet, gone, late]
    before = ([CURRENT, CURRENT, DPD_90_PLUS, DPD_1_30], [1_200, 5_000, 700, 900])
    after = ([CURRENT, REPAID, DEFAULTED, 2], [900, 0, 0, 900])
    assert principal_split(loans, cutoff_day=CUTOFF, period=1, before=before, after=after) == (
        100 + 0 + 300, (300 - 100) + 5_000)
    # period 12: one payment left, the whole balance is scheduled
    assert principal_split([level], cutoff_day=CUTOFF, period=12, before=([0], [100]), after=([REPAID], [0])) == (100, 0)
    assert scheduled_principal(1_000, 1800, 1, True) == 1_000
    with pytest.raises(ValueError, match="differ in length"):
        principal_split(loans, cutoff_day=CUTOFF, period=1, before=before, after=([0], [0]))


@pytest.mark.parametrize("cpr", [0.0, 0.3])
def test_principal_split_recovers_the_simulated_prepayments(pool: list[Loan], cpr: float) -> None:
    """Without prepayments in the scenario the split finds none; with them, the unscheduled
    principal is each prepaid balance less what the loan was scheduled to pay, and the period's
    principal is scheduled principal paid plus prepayments."""
    before = ([x.status for x in pool], [x.outstanding_units for x in pool])
    sim = Simulator(pool, cutoff_day=CUTOFF, cdr=0.05, cpr=cpr, recovery=0.4, lag=3, seed=4)
    for k in range(1, 7):
        outcome = sim.step()
        after = (outcome.statuses, outcome.outstanding)
        scheduled, unscheduled = principal_split(pool, cutoff_day=CUTOFF, period=k, before=before, after=after)
        if cpr == 0:
            assert unscheduled == 0 and outcome.prepayments == 0
        else:
            assert 0 < unscheduled < outcome.prepayments  # a payoff less its scheduled part
        assert 0 <= outcome.report.principal - unscheduled <= scheduled
        before = after
