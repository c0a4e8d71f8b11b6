"""The loan-level projection: integer figures that conserve the pool, a hand-computed pool,
scheduled amortisation at zero CDR and CPR, and a plain-Python loan-by-loan reference."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainabs.analytics.pool import Assumptions, Collections, PoolProjection
from chainabs.errors import InvalidInput


def _run(pool: PoolProjection, periods: int = 400) -> list[Collections]:
    out: list[Collections] = []
    while not pool.exhausted and len(out) < periods:
        out.append(pool.collect())
    return out


def test_one_loan_by_hand() -> None:
    # 1200 units at 12 % a year (1 % a month), two months left, no defaults or prepayments:
    # the level payment is 12 / (1 - 1.01^-2) = 609.01..., so period 1 pays interest 12 and
    # principal floor(597.01) = 597; period 2 interest floor(12 + 6.03) - 12 = 6 and, the loan
    # maturing, the integer balance left, 603.
    pool = PoolProjection(outstanding=[1200], rate_bps=[1200], remaining=[2], assumptions=Assumptions())
    first, second = _run(pool)
    assert (first.interest, first.principal, first.defaults, first.balance_end) == (12, 597, 0, 603)
    assert (second.interest, second.principal, second.defaults, second.balance_end) == (6, 603, 0, 0)
    assert pool.exhausted


def test_zero_cdr_cpr_is_the_schedule() -> None:
    # a zero-rate loan of 10,000 over 4 months repays 2,500 a month; a bullet loan all at the end
    pool = PoolProjection(outstanding=[10_000, 3_000], rate_bps=[0, 0], remaining=[4, 4], repayment=[0, 1],
                          assumptions=Assumptions())
    assert [c.principal for c in _run(pool)] == [2_500, 2_500, 2_500, 5_500]
    # an annuity: principal each month is the level payment less interest on the balance
    pool = PoolProjection(outstanding=[1_000_000], rate_bps=[2400], remaining=[12], assumptions=Assumptions())
    rows = _run(pool)
    r, bal, level = 0.02, 1_000_000.0, 1_000_000 * 0.02 / (1 - 1.02 ** -12)
    cum_p = 0.0
    for row in rows[:-1]:
        cum_p += level - bal * r
        bal -= level - bal * r
        assert sum(x.principal for x in rows[:rows.index(row) + 1]) == math.floor(cum_p)
    assert len(rows) == 12 and sum(x.principal for x in rows) == 1_000_000
    assert all(x.defaults == 0 and x.recoveries == 0 for x in rows)


def _reference(loans: list[tuple[int, int, int]], cdr: float, cpr: float, recovery: float, lag: int,
               periods: int) -> list[tuple[float, float, float, float]]:
    """Plain Python, loan by loan: float (interest, principal, defaults, recoveries) per period."""
    mdr, smm = 1 - (1 - cdr) ** (1 / 12), 1 - (1 - cpr) ** (1 / 12)
    state = [[float(b), r / 10_000 / 12, n] for b, r, n in loans]
    out = []
    for _ in range(periods):
        i = p = d = 0.0
        for loan in state:
            bal, r, n = loan
            dd = bal * mdr
            perf = bal - dd
            ii = perf * r
            if n <= 1:
                sched = perf
            else:
                level = perf * r / (1 - (1 + r) ** -n) if r > 0 else perf / n
                sched = min(max(level - ii, 0), perf)
            pp = sched + (perf - sched) * smm if n > 1 else perf
            loan[0] = 0.0 if n <= 1 else perf - pp
            loan[2] = max(n - 1, 1)
            i, p, d = i + ii, p + pp, d + dd
        out.append((i, p, d, 0.0))
    return out


def test_matches_a_loan_by_loan_reference() -> None:
    loans = [(500_000, 1800, 6), (250_000, 2400, 3), (125_000, 1500, 9)]
    a = Assumptions(cdr_bps=1000, cpr_bps=2000, recovery_bps=5000, lag=2)
    pool = PoolProjection(outstanding=[x[0] for x in loans], rate_bps=[x[1] for x in loans],
                          remaining=[x[2] for x in loans], assumptions=a)
    rows = _run(pool)
    ref = _reference(loans, 0.10, 0.20, 0.5, 2, len(rows))
    cum = [0.0, 0.0, 0.0]
    for n, (i, p, d, _) in enumerate(ref):
        cum = [cum[0] + i, cum[1] + p, cum[2] + d]
        got = [sum(getattr(x, f) for x in rows[:n + 1]) for f in ("interest", "principal", "defaults")]
        assert got[0] == math.floor(cum[0])
        assert got[2] == math.floor(cum[2])
        if rows[n].balance_end > 0:  # until the period the pool runs out and takes what is left
            assert got[1] == math.floor(cum[1])
    # recoveries: half of each period's integer defaults, two periods later, floored running total
    defaults = [x.defaults for x in rows]
    for n in range(len(rows)):
        due = sum(defaults[: max(0, n + 1 - 2)]) * 0.5
        assert sum(x.recoveries for x in rows[:n + 1]) == math.floor(due)
    assert sum(x.principal + x.defaults for x in rows) == 875_000


@settings(max_examples=60, deadline=None)
@given(loans=st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 3600), st.integers(0, 60),
                                st.integers(0, 2)), min_size=1, max_size=12),
       cdr=st.integers(0, 9999), cpr=st.integers(0, 10_000), dq=st.integers(0, 10_000),
       recovery=st.integers(0, 10_000), lag=st.integers(0, 6),
       buys=st.lists(st.integers(0, 10**9), max_size=6))
def test_pool_conserved_exactly(loans: list[tuple[int, int, int, int]], cdr: int, cpr: int, dq: int,
                                recovery: int, lag: int, buys: list[int]) -> None:
    a = Assumptions(cdr_bps=cdr, cpr_bps=cpr, recovery_bps=recovery, lag=lag, dq60_bps=dq)
    pool = PoolProjection(outstanding=[x[0] for x in loans], rate_bps=[x[1] for x in loans],
                          remaining=[x[2] for x in loans], repayment=[x[3] for x in loans], assumptions=a)
    total_in = pool.balance
    out = 0
    defaults = 0
    recovered = 0
    for n in range(200):
        if pool.exhausted:
            break
        c = pool.collect()
        for v in (c.interest, c.principal, c.defaults, c.recoveries, c.delinquent_60):
            assert isinstance(v, int) and v >= 0
        assert c.principal + c.defaults <= c.balance_start
        assert c.balance_end == c.balance_start - c.principal - c.defaults
        assert c.delinquent_60 <= c.balance_end
        out += c.principal + c.defaults
        defaults += c.defaults
        recovered += c.recoveries
        if n < len(buys):
            pool.purchase(buys[n])
            total_in += buys[n]
    assert pool.exhausted
    assert out == total_in
    assert recovered == defaults * recovery // 10_000  # every recovery comes in, after the pool runs out too


@pytest.mark.parametrize(("change", "option"), [
    ({"cdr_bps": -1}, "--cdr"), ({"cdr_bps": 10_001}, "--cdr"), ({"cdr_bps": 10_000}, "--cdr"),
    ({"cpr_bps": 10_001}, "--cpr"), ({"recovery_bps": -5}, "--recovery"), ({"dq60_bps": 20_000}, "--dq60"),
    ({"lag": -1}, "--lag"), ({"reinvest_rate_bps": 5000}, "--reinvest-rate-bps"), ({"reinvest_term": 0}, "--reinvest-term"),
])
def test_bad_assumptions_name_the_option(change: dict[str, int], option: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{option} "):
        Assumptions(**change).validate()
