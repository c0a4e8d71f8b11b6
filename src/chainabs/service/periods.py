"""A deal's periods: a servicer's own report with its loan-level tape, simulated periods, and
reading a period back.

Every period goes through `post_period`, the one code path the simulator and a real servicer
share: the report is checked against the reference model first (nothing is sent if the rules
refuse it), the servicer pays the collections in, the waterfall runs on chain, and the
period's loan-level tape is kept in the pool's folder (`PoolDir.write_period`) so that its
root can be recomputed and proofs served later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from chainabs import deal as deals
from chainabs.context import Context
from chainabs.datadir import CommittedLoan, DataDir, PeriodTape, period_root
from chainabs.errors import InvalidInput, NotFound, WaterfallError
from chainabs.pool import PoolFiles
from chainabs.service.deals import fund, need_cash, need_phase, open_deal
from chainabs.tape import Loan, Tape, parse_tape, read_tape
from chainabs.waterfall import PeriodReport, PeriodResult, run_period


@dataclass(frozen=True)
class TapeSource:
    """A loan tape as a front end received it: a file named on the command line, or the bytes
    of an upload and the name to quote in messages. Read only once the pool (its decimals) is
    known; a file's OSError propagates."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def file(cls, path: str | os.PathLike[str]) -> TapeSource:
        return cls(name=Path(path).name, path=Path(path))

    @classmethod
    def upload(cls, name: str, data: bytes) -> TapeSource:
        return cls(name=name, data=data)

    def read(self, *, decimals: int) -> Tape:
        if self.path is not None:
            return read_tape(self.path, decimals=decimals)
        return parse_tape(self.data or b"", name=self.name, decimals=decimals)


@dataclass(frozen=True)
class PostedPeriod:
    """A period as the chain ran it, and whether the reference model agrees."""

    pool: str  # the pool's slug
    result: PeriodResult
    matches_model: bool


Progress = Callable[[PostedPeriod, float], None]
"""Called after each simulated period with the period and the seconds it took."""


def loans_from_rows(rows: Sequence[CommittedLoan]) -> list[Loan]:
    """The pool's committed loans as Loan records for the simulator (no borrower reference)."""
    return [Loan(i + 2, r.loan_id, "", r.product, r.currency, r.principal_units, r.outstanding_units, r.rate_bps,
                 r.origination_day, r.maturity_day, r.term_months, r.repayment_type, r.status,
                 r.funded_share_bps, r.credit_score, r.region)
            for i, r in enumerate(rows)]


def loan_level_tape(files: PoolFiles, loans: Sequence[Loan], *, source: str) -> PeriodTape:
    """A period's loan-level tape (TAPE.md rows, one per pool loan, any order) as the root it
    commits to and the statuses and balances kept for it, in the pool's loan order; its
    period number is 0 until it is posted."""
    by_id = {x.loan_id: x for x in loans}
    missing = [r.loan_id for r in files.rows if r.loan_id not in by_id]
    if missing:
        raise InvalidInput(f"{source}: {len(missing)} pool loans missing, e.g. {missing[0]}")
    statuses = [by_id[r.loan_id].status for r in files.rows]
    outstanding = [by_id[r.loan_id].outstanding_units for r in files.rows]
    root = period_root(files.rows, statuses, outstanding)
    return PeriodTape(period=0, root="0x" + root.hex(), statuses=statuses, outstanding=outstanding)


def post_period(ctx: Context, handle: deals.DealHandle, files: PoolFiles, report: PeriodReport, *,
                tape: PeriodTape | None = None, fund_servicer: bool = False) -> PostedPeriod:
    """Check the report against the model (WaterfallError, the chain untouched), pay it in, run
    the waterfall on chain and keep the period's tape. Without a tape the period commits to
    the zero root. `fund_servicer` mints the collections to the servicer first (simulations)."""
    before = deals.read_state(handle)
    expected, _ = run_period(handle.params, before, report)
    collections = report.interest + report.principal + report.recoveries
    if fund_servicer and collections:
        fund(ctx, to=handle.roles.servicer, amount=collections)
    root = bytes.fromhex(tape.root[2:]) if tape is not None else bytes(32)
    result = deals.post_report(handle, report=report, loan_root=root, loan_count=len(files.rows))
    if tape is not None:
        files.dir.write_period(replace(tape, period=result.period))
    return PostedPeriod(pool=files.dir.slug, result=result, matches_model=result == expected)


def report_period(ctx: Context, *, report: PeriodReport, loan_tape: TapeSource | None = None,
                  pool: str | None = None) -> PostedPeriod:
    """A servicer's own period report, with the period's loan-level tape (its root goes on
    chain and the tape is kept; without one the period commits to the zero root). Refused,
    before anything is sent, when the tape does not cover the pool, the offering is not
    closed, the servicer lacks the collections' cash, or the model refuses the report."""
    handle, files = open_deal(ctx, pool)
    tape = None
    if loan_tape is not None:
        loans = loan_tape.read(decimals=files.record.decimals).loans
        tape = loan_level_tape(files, loans, source=loan_tape.name)
    need_phase(handle, "closed", "post a period report")
    need_cash(handle, handle.roles.servicer, report.interest + report.principal + report.recoveries,
              "post the report (its collections)")
    try:
        return post_period(ctx, handle, files, report, tape=tape)
    except WaterfallError as exc:
        reason = str(exc).removeprefix("report refused: ")
        raise WaterfallError(f"report refused by the deal's rules: {reason}") from None


def read_period(ctx: Context, *, n: int, pool: str | None = None) -> tuple[deals.DealHandle, PeriodResult]:
    """Period `n` as stored on chain, and the deal it belongs to."""
    handle, _ = open_deal(ctx, pool)
    count = deals.read_state(handle).period
    if not 1 <= n <= count:
        raise NotFound(f"no period {n}: {count} periods have run")
    return handle, deals.read_period(handle, n=n)


def deal_cutoff_day(ctx: Context, files: PoolFiles) -> int:
    """The pool's cut-off as its deal file gave it (days since 1970-01-01)."""
    record = DataDir(ctx.data_dir).read_deal(files.dir.slug)
    cutoff = record.cutoff_day if record is not None else None
    if cutoff is None:
        raise InvalidInput(f"the deal of pool {files.record.name!r} has no recorded cut-off date: give --cutoff")
    return cutoff


def simulate(ctx: Context, *, periods: int, cdr: float, cpr: float, recovery: float, lag: int, seed: int,
             cutoff_day: int | None = None, pool: str | None = None,
             progress: Progress | None = None) -> list[PostedPeriod]:
    """Evolve the pool's loans month by month and post `periods` more periods after the
    chain's last one; resumable. The offering must be closed. The loans' schedule starts at
    `cutoff_day` (default: the deal file's cut-off, recorded by `create_deal`).

    The chain decides where the run is: periods it already has are stepped over (their tape
    kept if it was not written), and a saved simulator ahead of the chain (a node restarted
    from an older state lost periods it had mined) is run again from the start with its saved
    parameters, which gives the same periods again.
    """
    from chainabs.servicing import Simulator

    handle, files = open_deal(ctx, pool)
    need_phase(handle, "closed", "simulate periods")
    rows = files.rows
    loans = loans_from_rows(rows)
    data = DataDir(ctx.data_dir)
    pool_slug = files.dir.slug
    onchain_period = deals.read_state(handle).period
    saved = data.read_servicing(pool_slug)
    if saved is not None:
        sim = Simulator.from_state_dict(loans, saved)
        if sim.period > onchain_period:
            sim = Simulator(loans, cutoff_day=saved["cutoff_day"], cdr=saved["cdr"], cpr=saved["cpr"],
                            recovery=Fraction(saved["recovery"]), lag=saved["lag"], seed=saved["seed"],
                            delinquency=saved["delinquency"], roll_rates=saved["roll_rates"])
    else:
        if cutoff_day is None:
            cutoff_day = deal_cutoff_day(ctx, files)
        sim = Simulator(loans, cutoff_day=cutoff_day, cdr=cdr, cpr=cpr, recovery=recovery, lag=lag, seed=seed)
    posted: list[PostedPeriod] = []
    while len(posted) < periods:
        started = time.perf_counter()
        outcome = sim.step()
        if outcome.period <= onchain_period and files.dir.period_path(outcome.period).exists():
            continue  # posted before an interruption, its tape kept
        root = period_root(rows, outcome.statuses, outcome.outstanding)
        tape = PeriodTape(period=outcome.period, root="0x" + root.hex(), statuses=list(outcome.statuses),
                          outstanding=list(outcome.outstanding))
        if outcome.period <= onchain_period:  # posted before an interruption that lost its tape
            files.dir.write_period(tape)
            continue
        done = post_period(ctx, handle, files, outcome.report, tape=tape, fund_servicer=True)
        data.write_servicing(pool_slug, sim.state_dict())
        if not done.matches_model:
            raise WaterfallError(f"period {done.result.period}: the chain's figures differ from the reference model")
        posted.append(done)
        if progress:
            progress(done, time.perf_counter() - started)
    return posted
