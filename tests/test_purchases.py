"""`service.check_purchase`: a purchase tape judged against the deal's eligibility criteria and
its concentration limits on the pool after the purchase (issue 17 item 2), off chain.

Each limit is tried exactly at its figure (accepted) and one cent over (refused, the sentence
naming the limit, the figure and the loans); the decision is also compared, on random pools
and purchases, with a second reading of the limits in exact fractions. No check writes to
the data dir."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs import merkle
from chainabs.datadir import CommittedLoan, DataDir, PeriodTape
from chainabs.errors import Conflict, DealError, NotFound, PurchaseRefused, TapeError
from chainabs.pool import committed_rows
from chainabs.service import PurchaseCheck, TapeSource, check_purchase
from chainabs.tape import MAX_TAPE_BYTES, STATUSES, parse_tape
from purchase_world import (
    UNITS,
    deal,
    four_regions,
    loan,
    make_pool,
    snapshot,
    tape_bytes,
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_pool(root, four_regions())
    return root


def check(data: Path, rows: list[dict[str, str]], **limits: Any) -> PurchaseCheck:
    return check_purchase(data, dealfile=deal(**limits), tape=TapeSource.upload("buy.csv", tape_bytes(rows)))


def refused(data: Path, rows: list[dict[str, str]], **limits: Any) -> PurchaseRefused:
    with pytest.raises(PurchaseRefused) as info:
        check(data, rows, **limits)
    return info.value


def salt_of(data: Path) -> bytes:
    salt = DataDir(data).pools()[0].read_salt()
    assert salt is not None
    return salt


# -- a clean purchase ------------------------------------------------------------------------------

def test_a_clean_purchase_passes_with_its_figures(data: Path) -> None:
    rows = [loan("N1", region="EE", borrower="C1", outstanding="1000.00", rate="0.2000"),
            loan("N2", region="FI", borrower="C2", outstanding="500.00", rate="0.1600"),
            loan("N3", region="AT", borrower="C3", outstanding="250.00", rate="0.2400")]
    done = check(data, rows)
    assert [x.loan_id for x in done.eligible] == ["N1", "N2", "N3"] and not done.ineligible
    assert done.pool == "consumer-loans-2026-r1" and done.loans == 3 and done.count == 3
    assert done.outstanding_units == 1750 * UNITS and done.principal_units == 30_000 * UNITS
    f = done.figures
    assert f.before == 4000 * UNITS and f.after == 5750 * UNITS
    # AT: 1,000 + 250 of 5,750 = 21.739...% -> 2174 bps rounded up
    assert (f.largest_region, f.largest_region_units, f.largest_region_share_bps) == ("AT", 1250 * UNITS, 2174)
    assert f.largest_borrower_units == 1000 * UNITS
    # (4,000 x 2000 + 1,000 x 2000 + 500 x 1600 + 250 x 2400) / 5,750 = 1982.6 -> 1982
    assert f.rate_weight == (5000 * 2000 + 500 * 1600 + 250 * 2400) * UNITS and f.wac_bps == 1982
    assert done.limits.max_region_share_bps == 4000 and done.limits.max_borrower_outstanding_units == 2000 * UNITS
    out = done.as_dict()
    assert out["largest_region"] == {"region": "AT", "units": 1250 * UNITS, "share_bps": 2174}
    assert out["wac_bps"] == 1982 and out["count"] == 3 and out["root"] == done.root


def test_the_root_is_the_pools_commitment_of_the_eligible_loans(data: Path) -> None:
    rows = [loan("N1", region="EE"), loan("N2", region="FI", status="defaulted"), loan("N3", region="GR")]
    done = check(data, rows)
    salt = salt_of(data)
    # recomputed from the committed rows, a second path to the same leaves
    assert done.rows == committed_rows(done.eligible, salt)
    leaves = [row.leaf() for row in done.rows]
    assert done.root == "0x" + merkle.MerkleTree.from_leaves(leaves).root.hex()
    assert len(done.commitment.loan_hashes) == 2
    assert all(merkle.verify(leaf, done.commitment.tree.proof(leaf), bytes.fromhex(done.root[2:]))
               for leaf in leaves)
    assert done.rows[0].borrower_hash == "0x" + merkle.borrower_hash(salt, "ref-N1").hex()


def test_without_limits_only_the_tape_and_eligibility_are_checked(data: Path) -> None:
    done = check(data, [loan("N1", region="AT", outstanding="9000.00", rate="0.0100")],
                 region=None, borrower=None, wac=None)
    assert done.count == 1 and done.figures.largest_region_share_bps == 7693  # 10,000 of 13,000


# -- each limit: at it, accepted; one cent over, refused ------------------------------------------

def test_region_share_at_the_limit_is_accepted(data: Path) -> None:
    # AT: 1,000 + 1,000 of 5,000 = 40 % exactly
    done = check(data, [loan("N1", region="AT", borrower="C1", outstanding="1000.00")])
    assert done.figures.largest_region_share_bps == 4000


def test_region_share_just_over_the_limit_is_refused(data: Path) -> None:
    rows = [loan("N1", region="AT", borrower="C1", outstanding="600.00"),
            loan("N2", region="AT", borrower="C2", outstanding="400.01"),
            loan("N3", region="BE", borrower="C3", outstanding="0.01", rate="0.3000")]
    exc = refused(data, rows)
    assert [b.limit for b in exc.breaches] == ["max_region_share"]
    b = exc.breaches[0]
    assert b.loan_ids == ["N1", "N2"] and b.loan_count == 2
    # 2,000.01 of 5,000.02: 40.0000...% over, shown rounded up
    assert b.figure.startswith("region 'AT' would hold 40.01 % of the pool after the purchase "
                               f"({2_000_010_000} of {5_000_020_000} units), over the limit of 40.00 %")
    assert str(exc).startswith("purchase refused, nothing minted: max_region_share: region 'AT'")
    assert str(exc).endswith("; loans N1, N2")


def test_borrower_outstanding_at_the_limit_is_accepted(data: Path) -> None:
    done = check(data, [loan("N1", borrower="B1", region="EE", outstanding="1000.00")])
    assert done.figures.largest_borrower_units == 2000 * UNITS
    assert done.figures.largest_borrower == "0x" + merkle.borrower_hash(salt_of(data), "B1").hex()


def test_borrower_outstanding_just_over_the_limit_is_refused(data: Path) -> None:
    exc = refused(data, [loan("N1", borrower="B1", region="EE", outstanding="1000.01"),
                         loan("N2", borrower="C2", region="FI")])
    (b,) = exc.breaches
    hashed = "0x" + merkle.borrower_hash(salt_of(data), "B1").hex()
    assert b.limit == "max_borrower_outstanding" and b.loan_ids == ["N1"]
    assert b.figure == (f"borrower {hashed} would owe 2,000.010000 EUR (2000010000 units) after the purchase, "
                        "over the limit of 2,000.000000 EUR")
    assert "B1" not in str(exc).replace(hashed, "")  # the reference itself is never shown


def test_wac_at_the_limit_is_accepted(data: Path) -> None:
    # (4,000 x 2000 + 1,000 x 1000) / 5,000 = 1800 exactly
    done = check(data, [loan("N1", region="EE", rate="0.1000")])
    assert done.figures.wac_bps == 1800 and done.figures.rate_weight == 1800 * 5000 * UNITS


def test_wac_just_under_the_limit_is_refused(data: Path) -> None:
    # (4,000 x 2000 + 1,000.01 x 1000 + 0.01 x 1800) / 5,000.02 = 1799.9984...
    exc = refused(data, [loan("N1", region="EE", rate="0.1000", outstanding="1000.01"),
                         loan("N2", region="FI", rate="0.1800", outstanding="0.01")])
    (b,) = exc.breaches
    assert b.limit == "min_wac_bps" and b.loan_ids == ["N1"]  # the loan under the limit, not N2 at it
    assert b.figure == ("the pool's weighted average coupon would be 17.99 % (1799 bps, rounded down) after the "
                        "purchase, under the limit of 18.00 % (1800 bps)")


def test_every_breach_is_named_at_once_and_long_lists_are_capped(data: Path) -> None:
    rows = [loan(f"N{i}", region="AT", borrower="B1", rate="0.0500", outstanding="100.00") for i in range(40)]
    exc = refused(data, rows)
    assert [b.limit for b in exc.breaches] == ["max_region_share", "max_borrower_outstanding", "min_wac_bps"]
    assert all(b.loan_count == 40 and len(b.loan_ids) == 40 for b in exc.breaches)
    assert str(exc).count("and 30 more") == 3 and "N10," not in str(exc)


def test_a_breach_the_purchase_does_not_touch_names_the_pools_loans(tmp_path: Path) -> None:
    make_pool(tmp_path, [loan("P1", region="AT"), loan("P2", region="AT"), loan("P3", region="BE")])
    exc = refused(tmp_path, [loan("N1", region="CZ")])
    (b,) = exc.breaches
    assert b.loan_ids == ["P1", "P2"] and "no loan of this purchase is concerned" in b.figure


def test_more_regions_over_the_limit_are_counted(tmp_path: Path) -> None:
    make_pool(tmp_path, [loan("P1", region="AT"), loan("P2", region="BE")])
    exc = refused(tmp_path, [loan("N1", region="AT", outstanding="1.00"), loan("N2", region="CZ", outstanding="1.00")])
    assert "region 'AT'" in exc.breaches[0].figure and "1 more region over it" in exc.breaches[0].figure


# -- what the pool holds now -----------------------------------------------------------------------

def test_the_latest_period_tape_gives_the_pools_balances(data: Path) -> None:
    folder = DataDir(data).pools()[0]
    n = len(folder.read_loans())
    folder.write_period(PeriodTape(period=1, root="0x" + "00" * 32, statuses=[0] * n, outstanding=[1] * n))
    # period 2: AT paid down to 500, BE defaulted (still listed with a balance: counts 0), CZ repaid
    gone = [STATUSES.index("defaulted"), STATUSES.index("repaid")]
    folder.write_period(PeriodTape(period=2, root="0x" + "00" * 32, statuses=[0, *gone, 0],
                                   outstanding=[500 * UNITS, 1000 * UNITS, 1000 * UNITS, 1000 * UNITS]))
    done = check(data, [loan("N1", region="EE", outstanding="500.00")], region="100%")
    assert done.figures.before == 1500 * UNITS and done.figures.after == 2000 * UNITS
    assert (done.figures.largest_region, done.figures.largest_region_share_bps) == ("DK", 5000)
    # the same purchase is now over 40 %: DK holds 1,000 of 2,000
    assert refused(data, [loan("N1", region="EE", outstanding="500.00")]).breaches[0].limit == "max_region_share"


def test_earlier_purchases_count_and_their_ids_are_refused(data: Path) -> None:
    folder = DataDir(data).pools()[0]
    salt = salt_of(data)
    bought = committed_rows(parse_tape(tape_bytes([loan("E1", region="AT", borrower="B1")])).loans, salt)
    folder.write_purchase(3, bought)
    done = check(data, [loan("N1", region="EE")])
    assert done.figures.before == 5000 * UNITS
    assert done.figures.largest_borrower_units == 2000 * UNITS  # B1: pool 1,000 + bought 1,000
    with pytest.raises(TapeError) as info:
        check(data, [loan("N2", region="EE"), loan("E1", region="EE")])
    (e,) = info.value.errors
    assert (e.line, e.column, e.value, e.reason) == (3, "loan_id", "E1", "already in the purchase of period 3")
    # a period tape of the initial loans only: the purchased loan counts as committed
    folder.write_period(PeriodTape(period=2, root="0x" + "00" * 32, statuses=[0] * 4,
                                   outstanding=[500 * UNITS] * 4))
    assert check(data, [loan("N1", region="EE")]).figures.before == 3000 * UNITS
    # a period tape reaching past the initial loans gives the purchased loan's balance too
    folder.write_period(PeriodTape(period=4, root="0x" + "00" * 32, statuses=[0] * 5,
                                   outstanding=[1000 * UNITS] * 4 + [10 * UNITS]))
    assert check(data, [loan("N1", region="EE")]).figures.before == 4010 * UNITS


def test_a_period_tape_that_does_not_fit_the_pool_is_a_conflict(data: Path) -> None:
    DataDir(data).pools()[0].write_period(PeriodTape(period=1, root="0x", statuses=[0] * 3, outstanding=[1] * 3))
    with pytest.raises(Conflict, match=r"periods/1.json lists 3 statuses and 3 balances; the pool has 4"):
        check(data, [loan("N1", region="EE")])


# -- ids, eligibility, the tape --------------------------------------------------------------------

def test_ids_already_in_the_pool_are_refused(data: Path) -> None:
    with pytest.raises(TapeError) as info:
        check(data, [loan("N1", region="EE"), loan("P2", region="EE"), loan("P4", region="EE", status="defaulted")])
    assert [(e.line, e.value, e.reason) for e in info.value.errors] == [
        (3, "P2", "already in the pool"), (4, "P4", "already in the pool")]


def test_duplicate_ids_in_the_tape_are_refused(data: Path) -> None:
    with pytest.raises(TapeError) as info:
        check(data, [loan("N1", region="EE"), loan("N1", region="FI")])
    (e,) = info.value.errors
    assert (e.line, e.column, e.reason) == (3, "loan_id", "duplicate loan id (first on line 2)")


def test_ineligible_loans_are_left_out_with_their_reasons(data: Path) -> None:
    rows = [loan("N1", region="EE"), loan("N2", status="dpd_1_30"), loan("N3", maturity="2026-09-30"),
            loan("N4", outstanding="0.00"), loan("N5", region="AT", borrower="B1", rate="0.0100", status="defaulted")]
    done = check(data, rows)
    assert [x.loan_id for x in done.eligible] == ["N1"]
    assert [(x.loan_id, r) for x, r in done.ineligible] == [
        ("N2", "status:dpd_1_30"), ("N3", "matures_before_cutoff"), ("N4", "outstanding_zero"),
        ("N5", "status:defaulted")]
    assert done.as_dict()["ineligible"] == {"matures_before_cutoff": 1, "outstanding_zero": 1,
                                            "status:defaulted": 1, "status:dpd_1_30": 1}
    # N5 would have broken all three limits: being ineligible it is not in the pool after the purchase
    assert done.figures.after == 5000 * UNITS and done.count == 1


def test_a_tape_with_no_eligible_loan_is_refused(data: Path) -> None:
    with pytest.raises(TapeError, match="no loan of the tape is eligible for the pool"):
        check(data, [loan("N1", status="defaulted")])


def test_a_tape_in_another_currency_is_refused(data: Path) -> None:
    with pytest.raises(TapeError, match="the pool's currency is EUR"):
        check(data, [loan("N1", currency="USD")])


def test_a_huge_tape_is_refused_before_it_is_read(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.write(tape_bytes([loan("N1")]))
        fh.truncate(MAX_TAPE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(TapeError, match=f"larger than the limit of {MAX_TAPE_BYTES} bytes"):
        check_purchase(data, dealfile=deal(), tape=TapeSource.file(path))


def test_a_tape_with_duplicate_headers_is_refused(data: Path) -> None:
    body = tape_bytes([loan("N1")]).decode().splitlines()
    body[0] += ",region"
    body[1] += ",XX"
    with pytest.raises(TapeError) as info:
        check_purchase(data, dealfile=deal(), tape=TapeSource.upload("dup.csv", "\n".join(body).encode()))
    assert info.value.errors[0].reason == "duplicate column name (also column 15)"


# -- the pool and the deal file --------------------------------------------------------------------

def test_a_missing_pool_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        check(tmp_path, [loan("N1")])


def test_a_deal_file_of_another_currency_is_refused(data: Path) -> None:
    other = deal().model_copy(update={"pool": deal().pool.model_copy(update={"currency": "USD"})})
    with pytest.raises(DealError, match="pool.currency: USD but pool 'Consumer Loans 2026-R1' is in EUR"):
        check_purchase(data, dealfile=other, tape=TapeSource.upload("b.csv", tape_bytes([loan("N1")])))


def test_a_pool_without_its_salt_is_a_conflict_and_no_salt_is_made(data: Path) -> None:
    folder = DataDir(data).pools()[0]
    folder.salt_path.unlink()
    with pytest.raises(Conflict, match="has no salt"):
        check(data, [loan("N1", region="EE")])
    assert not folder.salt_path.exists()


def test_no_check_writes_to_the_data_dir(data: Path, tmp_path: Path) -> None:
    folder = DataDir(data).pools()[0]
    folder.write_period(PeriodTape(period=1, root="0x", statuses=[0] * 4, outstanding=[900 * UNITS] * 4))
    before = snapshot(data)
    check(data, [loan("N1", region="EE")])
    for rows in ([loan("N1", region="AT", outstanding="9000.00")], [loan("P1")], [loan("N1", status="defaulted")]):
        with pytest.raises((PurchaseRefused, TapeError)):
            check(data, rows)
    assert snapshot(data) == before
    assert not any(tmp_path.glob("**/.*.tmp"))


# -- a second reading of the limits, in exact fractions --------------------------------------------

_LOAN = st.tuples(st.sampled_from(["AT", "BE", "CZ", "DK", "EE", ""]), st.sampled_from(["B1", "B2", "B3", "B4"]),
                  st.integers(1, 3000), st.sampled_from([0, 1700, 1800, 1900, 2400, 3600]))


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pool=st.lists(_LOAN, min_size=1, max_size=6), bought=st.lists(_LOAN, min_size=1, max_size=6),
       region_bps=st.sampled_from([2500, 3333, 5000, 10000]), most=st.sampled_from([10, 30, 60]))
def test_the_decision_matches_exact_fractions(tmp_path_factory: pytest.TempPathFactory,
                                              pool: list[tuple[str, str, int, int]],
                                              bought: list[tuple[str, str, int, int]],
                                              region_bps: int, most: int) -> None:
    def rows(loans: list[tuple[str, str, int, int]], prefix: str) -> list[dict[str, str]]:
        return [loan(f"{prefix}{i}", region=r, borrower=b, outstanding=f"{cents // 100}.{cents % 100:02d}",
                     rate=f"0.{rate:04d}") for i, (r, b, cents, rate) in enumerate(loans)]

    root = tmp_path_factory.mktemp("pool")
    make_pool(root, rows(pool, "P"))
    everything = pool + bought
    total = sum(Fraction(c) for _, _, c, _ in everything)
    regions: dict[str, Fraction] = {}
    borrowers: dict[str, Fraction] = {}
    for r, b, cents, _ in everything:
        regions[r] = regions.get(r, Fraction(0)) + cents
        borrowers[b] = borrowers.get(b, Fraction(0)) + cents
    wac = sum(Fraction(c * rate) for _, _, c, rate in everything) / total
    expected = [name for name, broken in (
        ("max_region_share", max(regions.values()) / total > Fraction(region_bps, 10000)),
        ("max_borrower_outstanding", max(borrowers.values()) > most * 100),
        ("min_wac_bps", wac < 1800)) if broken]
    share = f"{region_bps // 100}.{region_bps % 100:02d}%"
    try:
        done = check(root, rows(bought, "N"), region=share, borrower=f"{most}.00", wac=1800)
    except PurchaseRefused as exc:
        assert [b.limit for b in exc.breaches] == expected
        return
    assert expected == []
    assert done.figures.after == total * 10**4
    assert Fraction(done.figures.rate_weight, done.figures.after) == wac


def test_committed_loans_keep_their_type(data: Path) -> None:
    """The rows a mint would write are the data dir's own record type, in tape order."""
    done = check(data, [loan("N2", region="EE"), loan("N1", region="FI")])
    assert all(isinstance(r, CommittedLoan) for r in done.rows) and [r.loan_id for r in done.rows] == ["N2", "N1"]
