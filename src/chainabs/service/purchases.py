"""A purchase checked before anything is minted (WATERFALL.md v2, issue 17 item 2).

Loans bought in a revolving period arrive as a tape in the initial pool's format (TAPE.md).
`check_purchase` judges it off chain, from the data dir alone, and writes nothing:

1. the tape is read with the pool's decimals and refused whole as any tape is (malformed
   cells, duplicate ids or headers, a file over the size limit...), or when it is in another
   currency than the pool, or names a loan id the pool already holds (its initial loans or an
   earlier purchase);
2. the deal file's eligibility criteria are applied exactly as to the initial pool
   (`DealFile.eligibility()`, the pool's cut-off included): an ineligible loan is left out and
   reported with its reason, the rest proceed; none eligible refuses the tape;
3. the eligible loans are committed under the pool's salt by the pool's own code
   (`chainabs.pool.commit`, `committed_rows`): the root and rows a mint would use;
4. the pool after the purchase (the pool's loans now plus the eligible purchased loans) is
   held to the deal file's `[concentration]` limits: the largest share of one region, the most
   outstanding units of one borrower reference (compared by borrower hash under the pool's
   salt, which is how the data dir knows a pooled loan's borrower), the lowest outstanding-
   weighted average coupon. A breach raises `PurchaseRefused` naming the limit, the figure and
   the loans; a figure exactly at its limit is accepted.

'Outstanding' of a pool loan here is what the data dir knows last: its balance in the latest
period tape kept (`periods/<n>.json`, whose balances follow the pool's loan order: the
initial loans as committed, then each purchase's loans in period order; a loan the tape does
not reach yet counts as committed), else its committed balance (at cut-off, or at purchase);
a loan whose status there is `defaulted` or `repaid` counts 0: its principal has left the pool
balance (WATERFALL.md, B1 = B0 − P − D). Purchased loans count with their tape balance, pool
share applied. A loan without a region counts in a region of its own ("").

Every figure is an integer: a share is tested as units × 10000 against limit × total (never a
ratio), the weighted average coupon as Σ outstanding × rate against limit × Σ outstanding.
Checks against the chain (a loan id tokenised by another pool, whether the period revolves)
belong to the mint that follows, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from chainabs.datadir import CommittedLoan, DataDir, shown_name
from chainabs.dealfile import ConcentrationLimits, DealFile
from chainabs.errors import Breach, CellError, Conflict, DealError, PurchaseRefused, TapeError
from chainabs.pool import Commitment, PoolFiles, commit, committed_rows
from chainabs.service.periods import TapeSource
from chainabs.tape import BPS, STATUSES, Loan, apply_eligibility

MAX_NAMED = 1000  # loan ids a breach or an error list keeps (all are counted)
T = TypeVar("T")
_GONE = frozenset({STATUSES.index("defaulted"), STATUSES.index("repaid")})


@dataclass(frozen=True)
class Concentration:
    """The pool's concentration figures in base units and bps; `before` is the pool without the
    purchase, the rest are of the pool after it."""

    before: int                 # the pool's outstanding units now
    after: int                  # the pool's outstanding units after the purchase
    largest_region: str
    largest_region_units: int
    largest_borrower: str       # borrower hash, 0x-hex
    largest_borrower_units: int
    rate_weight: int            # sum of outstanding units x rate bps, after the purchase

    @property
    def largest_region_share_bps(self) -> int:
        """The largest region's share, rounded up to a whole bps: a share over a limit in whole
        bps never shows as the limit itself."""
        return -(-self.largest_region_units * BPS // self.after) if self.after else 0

    @property
    def wac_bps(self) -> int:
        """The outstanding-weighted average coupon, rounded down (below a limit in whole bps
        exactly when the exact figure is)."""
        return self.rate_weight // self.after if self.after else 0


@dataclass(frozen=True)
class PurchaseCheck:
    """A purchase that passed: its eligible loans, committed, and the pool's figures after it."""

    pool: str                   # the pool's slug
    source: str                 # the tape's name
    currency: str
    decimals: int
    loans: int                  # loans on the tape
    eligible: list[Loan]
    ineligible: list[tuple[Loan, str]]
    rows: list[CommittedLoan]   # the eligible loans' committed values, in tape order
    commitment: Commitment      # their loan hashes and Merkle tree
    figures: Concentration
    limits: ConcentrationLimits
    warnings: list[str]

    @property
    def count(self) -> int:
        return len(self.eligible)

    @property
    def outstanding_units(self) -> int:
        return sum(x.outstanding_units for x in self.eligible)

    @property
    def principal_units(self) -> int:
        return sum(x.principal_units for x in self.eligible)

    @property
    def root(self) -> str:
        return self.commitment.root

    def as_dict(self) -> dict[str, Any]:
        f, lim = self.figures, self.limits
        reasons: dict[str, int] = {}
        for _, reason in self.ineligible:
            reasons[reason] = reasons.get(reason, 0) + 1
        return {
            "pool": self.pool, "source": self.source, "currency": self.currency, "loans": self.loans,
            "count": self.count, "outstanding_units": self.outstanding_units,
            "principal_units": self.principal_units, "root": self.root,
            "ineligible": dict(sorted(reasons.items())),
            "ineligible_loans": [{"loan_id": x.loan_id, "line": x.line, "reason": r}
                                 for x, r in self.ineligible[:MAX_NAMED]],
            "pool_outstanding_units": f.before, "outstanding_units_after": f.after,
            "largest_region": {"region": f.largest_region, "units": f.largest_region_units,
                               "share_bps": f.largest_region_share_bps},
            "largest_borrower": {"borrower_hash": f.largest_borrower, "units": f.largest_borrower_units},
            "wac_bps": f.wac_bps,
            "limits": {"max_region_share_bps": lim.max_region_share_bps,
                       "max_borrower_outstanding_units": lim.max_borrower_outstanding_units,
                       "min_wac_bps": lim.min_wac_bps},
            "warnings": list(self.warnings),
        }


def check_purchase(data_dir: Path | DataDir, *, dealfile: DealFile, tape: TapeSource,
                   pool: str | None = None) -> PurchaseCheck:
    """Check a purchase tape against the deal file's eligibility criteria and concentration
    limits on the pool after it (see the module's docstring); writes nothing. The pool is
    `pool`, else the one the deal file names. Raises TapeError (the tape, ids already pooled,
    nothing eligible), PurchaseRefused (a limit), DealError (a deal file of another currency
    or decimals than the pool), NotFound, Conflict (a pool folder without its salt or with a
    period tape that does not fit it); a file's OSError propagates."""
    data = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    files = PoolFiles(data.find_pool(pool or dealfile.pool.name))
    record = files.record
    if dealfile.pool.currency != record.currency:
        raise DealError("pool.currency", f"{dealfile.pool.currency} but pool {shown_name(record.name)} "
                                         f"is in {record.currency}")
    if dealfile.pool.decimals != record.decimals:
        raise DealError("pool.decimals", f"{dealfile.pool.decimals} but pool {shown_name(record.name)} "
                                         f"has {record.decimals}")
    salt = files.dir.read_salt()
    if salt is None:
        raise Conflict(f"pool {shown_name(record.name)} has no salt in {files.folder}: it cannot commit loans")
    read = tape.read(decimals=record.decimals)
    if read.currency != record.currency:
        raise TapeError([CellError(read.loans[0].line, "currency", read.currency,
                                   f"the pool's currency is {record.currency}")])
    held, where = _pool_now(files)
    _refuse_known_ids(read.loans, where)
    eligible, rejected = apply_eligibility(read.loans, dealfile.eligibility())
    if not eligible:
        raise TapeError([CellError(1, "", "", "no loan of the tape is eligible for the pool")])
    rows = committed_rows(eligible, salt)
    limits = dealfile.concentration_limits()
    figures = _check_limits(held, rows, limits, decimals=record.decimals, currency=record.currency)
    return PurchaseCheck(pool=files.dir.slug, source=read.source, currency=read.currency,
                         decimals=record.decimals, loans=len(read.loans), eligible=eligible,
                         ineligible=rejected, rows=rows, commitment=commit(eligible, salt),
                         figures=figures, limits=limits, warnings=read.warnings)


# -- the pool as the data dir knows it ------------------------------------------------------------

def _pool_now(files: PoolFiles) -> tuple[list[CommittedLoan], dict[str, str]]:
    """The pool's loans with their balances now (module docstring), and where each loan id
    came from ("the pool", "the purchase of period n")."""
    loans = list(files.rows)
    where = dict.fromkeys((x.loan_id for x in loans), "the pool")
    for n in files.dir.purchase_numbers():
        bought = _readable(files.dir.purchase_path(n), files.dir.read_purchase, n) or []
        loans.extend(bought)
        for x in bought:
            where.setdefault(x.loan_id, f"the purchase of period {n}")
    periods = [n for n in files.dir.period_numbers() if n >= 1]
    if periods:
        path = files.dir.period_path(periods[-1])
        tape = _readable(path, files.dir.read_period, periods[-1])
        if tape is not None:
            k = len(tape.outstanding)
            if len(tape.statuses) != k or not len(files.rows) <= k <= len(loans):
                raise Conflict(f"{path} lists {len(tape.statuses)} statuses and {k} balances; the pool has "
                               f"{len(files.rows)} initial loans and {len(loans)} with its purchases")
            loans[:k] = [x.in_period(status=s, outstanding_units=o)
                         for x, s, o in zip(loans[:k], tape.statuses, tape.outstanding, strict=True)]
    return loans, where


def _readable(path: Path, read: Callable[[int], T], n: int) -> T:
    """read(n), a file that is not what it should be a Conflict naming it."""
    try:
        return read(n)
    except (ValueError, KeyError, TypeError) as exc:
        raise Conflict(f"{path} is not readable ({exc.__class__.__name__}: {exc})") from None


def _refuse_known_ids(loans: Sequence[Loan], where: dict[str, str]) -> None:
    errors = [CellError(x.line, "loan_id", x.loan_id, f"already in {where[x.loan_id]}")
              for x in loans if x.loan_id in where]
    if errors:
        raise TapeError(errors[:MAX_NAMED], len(errors))


# -- concentration ---------------------------------------------------------------------------------

def _outstanding(loan: CommittedLoan) -> int:
    return 0 if loan.status in _GONE else loan.outstanding_units


def _more_over(count: int, noun: str) -> str:
    """'; 2 more regions over it' after a breach's sentence, or nothing."""
    return f"; {count} more {noun}{'s' if count != 1 else ''} over it" if count else ""


def _check_limits(held: Sequence[CommittedLoan], bought: Sequence[CommittedLoan], limits: ConcentrationLimits,
                  *, decimals: int, currency: str) -> Concentration:
    """The figures after the purchase; PurchaseRefused with every limit they break."""
    regions: dict[str, int] = {}
    borrowers: dict[str, int] = {}
    weight = 0
    for x, out in [(x, _outstanding(x)) for x in held] + [(x, x.outstanding_units) for x in bought]:
        if out:
            regions[x.region] = regions.get(x.region, 0) + out
            borrowers[x.borrower_hash] = borrowers.get(x.borrower_hash, 0) + out
            weight += out * x.rate_bps
    before = sum(_outstanding(x) for x in held)
    after = before + sum(x.outstanding_units for x in bought)
    region, region_units = _largest(regions)
    borrower, borrower_units = _largest(borrowers)
    figures = Concentration(before=before, after=after, largest_region=region, largest_region_units=region_units,
                            largest_borrower=borrower, largest_borrower_units=borrower_units, rate_weight=weight)
    breaches: list[Breach] = []
    cap = limits.max_region_share_bps
    if cap is not None and region_units * BPS > cap * after:
        also = _more_over(sum(units * BPS > cap * after for units in regions.values()) - 1, "region")
        breaches.append(_breach(
            "max_region_share",
            f"region {_region(region)} would hold {percent(figures.largest_region_share_bps)} of the pool "
            f"after the purchase ({region_units} of {after} units), over the limit of {percent(cap)}{also}",
            held, bought, lambda x: x.region == region))
    most = limits.max_borrower_outstanding_units
    if most is not None and borrower_units > most:
        also = _more_over(sum(units > most for units in borrowers.values()) - 1, "borrower")
        breaches.append(_breach(
            "max_borrower_outstanding",
            f"borrower {borrower} would owe {format_units(borrower_units, decimals)} {currency} ({borrower_units} "
            f"units) after the purchase, over the limit of {format_units(most, decimals)} {currency}{also}",
            held, bought, lambda x: x.borrower_hash == borrower))
    least = limits.min_wac_bps
    if least is not None and weight < least * after:
        low = [x for x in bought if x.rate_bps < least]
        breaches.append(_breach(
            "min_wac_bps",
            f"the pool's weighted average coupon would be {percent(figures.wac_bps)} ({figures.wac_bps} bps, "
            f"rounded down) after the purchase, under the limit of {percent(least)} ({least} bps)",
            held, low or bought, lambda x: True))
    if breaches:
        raise PurchaseRefused(breaches)
    return figures


def _breach(limit: str, figure: str, held: Sequence[CommittedLoan], bought: Sequence[CommittedLoan],
            concerned: Callable[[CommittedLoan], bool]) -> Breach:
    """The breach, naming the purchased loans it concerns, or the pool's own when none is."""
    ids = [x.loan_id for x in bought if concerned(x)]
    if not ids:
        ids = [x.loan_id for x in held if _outstanding(x) and concerned(x)]
        figure += " (no loan of this purchase is concerned; the pool's loans are named)"
    return Breach(limit=limit, figure=figure, loan_ids=ids[:MAX_NAMED], loan_count=len(ids))


def _largest(units: dict[str, int]) -> tuple[str, int]:
    """The key with the most units (the first in sort order among equals); ("", 0) if none."""
    best = min(units.items(), key=lambda kv: (-kv[1], kv[0]), default=("", 0))
    return best[0], best[1]


def _region(name: str) -> str:
    return repr(name) if name else "(none given)"


def percent(bps: int) -> str:
    """Whole bps as a percentage with 2 decimals: 2501 -> '25.01 %'."""
    return f"{bps // 100}.{bps % 100:02d} %"


def format_units(units: int, decimals: int) -> str:
    """Base units as a grouped decimal: 5000000000 with 6 decimals -> '5,000.000000'."""
    whole, frac = divmod(units, 10 ** decimals)
    return f"{whole:,}.{frac:0{decimals}d}" if decimals else f"{whole:,}"
