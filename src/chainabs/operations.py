"""A deal's life on top of a tokenised pool, with its state kept in the data dir.

`<data_dir>/deals/<slug>.json` records the deal's contracts (the indexer reads the same file),
its roles and parameters; `<data_dir>/pools/<slug>/periods/<n>.json` keeps each period's
loan-level tape (status and outstanding per loan) so its root can be recomputed and proofs
served later; `<data_dir>/deals/<slug>-servicing.json` keeps the simulator's state so a run
can resume after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from web3.exceptions import Web3Exception

from chainabs import deal as deals
from chainabs.context import Context
from chainabs.dealfile import DealFile
from chainabs.datadir import CommittedLoan, DataDir, DealRecord, PartialDeal, PeriodTape, period_root
from chainabs.errors import ChainabsError, Conflict, InvalidInput, NotFound, WaterfallError
from chainabs.pool import PoolFiles, find_pool
from chainabs.tape import Loan
from chainabs.waterfall import DealParams, PeriodReport, PeriodResult, run_period

FAR_FUTURE = 2**39  # eligible-until for the originator's own account (fits uint40)


def create_deal(ctx: Context, *, dealfile: DealFile, pool_name: str | None = None) -> deals.DealHandle:
    """Deploy the deal's contracts over a filled pool and open the offering; resumable.

    Once the registry, deal and exchange are deployed their addresses are kept in
    `<slug>.json.partial`; a run after an interruption finishes that deal (attaching the tokens,
    registering the originator, opening the offering as far as not done) instead of deploying
    another. The deal file `<slug>.json` is written last.
    """
    data = DataDir(ctx.data_dir)
    files = find_pool(data, pool_name or dealfile.pool.name)
    record = files.record
    pool_slug = files.dir.slug
    if record.status != "filled" or not record.address:
        raise Conflict(f"pool {record.name!r} is not fully minted yet: run `chainabs pool create` again")
    if data.has_deal(pool_slug):
        raise Conflict(f"pool {record.name!r} already has a deal ({data.deal_path(pool_slug)})")
    if not dealfile.has_tranches:
        raise ChainabsError("the deal file has no [deal] and [[tranches]] sections")
    params = dealfile.deal_params(record.outstanding_units)
    settlement = dealfile.pool.settlement_token
    if settlement is not None:
        check_settlement_token(ctx, settlement, decimals=dealfile.pool.decimals)
    partial = data.read_partial_deal(pool_slug)
    if partial is not None:
        handle = _resume_deal(ctx, data.partial_deal_path(pool_slug), partial, params,
                              settlement or ctx.core.contracts["SettlementToken"])
    else:
        admin = ctx.chain.accounts[0]
        handle = deals.deploy_deal(ctx.chain, manifest=ctx.core, pool=record.address, params=params,
                                   roles=deals.DealRoles.single(admin), settlement=settlement, attach=False)
        data.write_partial_deal(pool_slug, PartialDeal(contracts=handle.addresses, roles=asdict(handle.roles)))
    roles = handle.roles
    deals.attach_tokens(handle)
    if not deals.is_eligible(handle, investor=roles.originator):
        deals.add_investors(handle, investors=[roles.originator], eligible_until=FAR_FUTURE)
    if deals.phase(handle) == "pending":
        deals.open_offering(handle)
    data.write_deal(DealRecord(
        slug=pool_slug, name=record.name, pool=record.address, cutoff_day=dealfile.pool.cutoff_day,
        contracts={k: v for k, v in handle.addresses.items() if k not in ("LoanPool", "SettlementToken")},
        roles=asdict(roles), params=params))
    data.remove_partial_deal(pool_slug)
    return handle


def _resume_deal(ctx: Context, path: Path, partial: PartialDeal, params: DealParams,
                 settlement: str) -> deals.DealHandle:
    """The half-created deal recorded at `path`, if it is on chain with these terms and
    settles in `settlement`."""
    contracts = partial.contracts
    if not bytes(ctx.chain.w3.eth.get_code(to_checksum_address(contracts["Deal"]))):
        raise Conflict(f"{path} names a deal at {contracts['Deal']} that is not on this chain "
                       "(a reset node?); remove the file to deploy a new one")
    handle = deals.load_deal(ctx.chain, deal=contracts["Deal"], exchange=contracts["TrancheExchange"],
                             roles=deals.DealRoles(**partial.roles))
    if handle.params != params or handle.settlement.address.lower() != settlement.lower():
        raise Conflict(f"{path} is a half-created deal with other terms than this deal file; "
                       "use that deal file, or remove the .partial file to deploy a new deal")
    return handle


def check_settlement_token(ctx: Context, address: str, *, decimals: int) -> None:
    """The deal file's `pool.settlement_token` must be an ERC-20 on this chain with the pool's
    decimals: amounts on the tape and in the deal are base units of it."""
    where = f"pool.settlement_token {address}"
    if not bytes(ctx.chain.w3.eth.get_code(to_checksum_address(address))):
        raise ChainabsError(f"{where}: no contract at that address on chain {ctx.chain.chain_id}")
    token = ctx.chain.contract("SettlementToken", address)
    try:
        onchain = int(ctx.chain.call(token.functions.decimals()))
    except (ChainabsError, Web3Exception):
        raise ChainabsError(f"{where}: not an ERC-20 token (it has no decimals())") from None
    if onchain != decimals:
        raise ChainabsError(f"{where} has {onchain} decimals; the deal file's pool.decimals is {decimals}")


def deal_cutoff_day(ctx: Context, files: PoolFiles) -> int:
    """The pool's cut-off as its deal file gave it (days since 1970-01-01)."""
    record = DataDir(ctx.data_dir).read_deal(files.dir.slug)
    cutoff = record.cutoff_day if record is not None else None
    if cutoff is None:
        raise ChainabsError(f"the deal of pool {files.record.name!r} has no recorded cut-off date: give --cutoff")
    return cutoff


def open_deal(ctx: Context, name: str | None = None) -> tuple[deals.DealHandle, PoolFiles]:
    """The deal of the named pool, or of the only pool in the data dir."""
    data = DataDir(ctx.data_dir)
    files = find_pool(data, name)
    record = data.read_deal(files.dir.slug)
    if record is None:
        raise NotFound(f"pool {files.record.name!r} has no deal yet: run `chainabs deal create`")
    roles = deals.DealRoles(**record.roles)
    handle = deals.load_deal(ctx.chain, deal=record.deal, exchange=record.contracts["TrancheExchange"], roles=roles)
    return handle, files


def tranche_index(handle: deals.DealHandle, tranche: str) -> int:
    """A tranche by index (0 = most senior) or by symbol."""
    if tranche.isdigit():
        k = int(tranche)
        handle.token(k)
        return k
    for k, spec in enumerate(handle.params.tranches):
        if spec.symbol.lower() == tranche.lower() or spec.name.lower() == tranche.lower():
            return k
    raise ChainabsError(f"no tranche {tranche!r}; tranches are " + ", ".join(t.symbol for t in handle.params.tranches))


def fund(ctx: Context, *, to: str, amount: int) -> None:
    """Mint dev settlement tokens (only the dev token of embedded and local chains can)."""
    cash = ctx.chain.contract("SettlementToken", ctx.core.contracts["SettlementToken"])
    ctx.chain.send(cash.functions.mint(to, amount), sender=ctx.core.deployer)


# -- periods -----------------------------------------------------------------------------------

def loans_from_rows(rows: Sequence[CommittedLoan]) -> list[Loan]:
    """The pool's committed loans as Loan records for the simulator (no borrower reference)."""
    return [Loan(i + 2, r.loan_id, "", r.product, r.currency, r.principal_units, r.outstanding_units, r.rate_bps,
                 r.origination_day, r.maturity_day, r.term_months, r.repayment_type, r.status,
                 r.funded_share_bps, r.credit_score, r.region)
            for i, r in enumerate(rows)]


def loan_level_tape(files: PoolFiles, loans: Sequence[Loan], *, source: str
                    ) -> tuple[bytes, dict[str, list[int]]]:
    """A period's loan-level tape (TAPE.md rows, one per pool loan, any order) as the root it
    commits to and the statuses and balances kept for it, in the pool's loan order."""
    by_id = {x.loan_id: x for x in loans}
    missing = [r.loan_id for r in files.rows if r.loan_id not in by_id]
    if missing:
        raise InvalidInput(f"{source}: {len(missing)} pool loans missing, e.g. {missing[0]}")
    statuses = [by_id[r.loan_id].status for r in files.rows]
    outstanding = [by_id[r.loan_id].outstanding_units for r in files.rows]
    return period_root(files.rows, statuses, outstanding), {"statuses": statuses, "outstanding": outstanding}


@dataclass
class PostedPeriod:
    result: PeriodResult
    matches_model: bool


def post_period(ctx: Context, handle: deals.DealHandle, files: PoolFiles, report: PeriodReport, *,
                loan_root: bytes, loan_count: int, tape: dict[str, Any] | None = None,
                fund_servicer: bool = False) -> PostedPeriod:
    """One period through the single code path the simulator and a real servicer share: check
    the report against the model first (nothing is sent if the rules refuse it), pay it in,
    run the waterfall on chain, and keep the period's tape."""
    before = deals.read_state(handle)
    expected, _ = run_period(handle.params, before, report)  # raises WaterfallError, chain untouched
    collections = report.interest + report.principal + report.recoveries
    servicer = handle.roles.servicer
    if fund_servicer and collections:
        fund(ctx, to=servicer, amount=collections)
    result = deals.post_report(handle, report=report, loan_root=loan_root, loan_count=loan_count)
    if tape is not None:
        files.dir.write_period(PeriodTape(period=result.period, root="0x" + loan_root.hex(),
                                          statuses=list(tape["statuses"]), outstanding=list(tape["outstanding"])))
    return PostedPeriod(result=result, matches_model=result == expected)


def simulate(ctx: Context, handle: deals.DealHandle, files: PoolFiles, *, periods: int, cdr: float, cpr: float,
             recovery: float, lag: int, seed: int, cutoff_day: int | None = None,
             progress: Any = None) -> list[PostedPeriod]:
    """Evolve the pool's loans month by month and post `periods` more periods after the
    chain's last one; resumable. The loans' schedule starts at `cutoff_day` (default: the deal
    file's cut-off, recorded by `create_deal`).

    The chain decides where the run is: periods it already has are stepped over (their tape
    kept if it was not written), and a saved simulator ahead of the chain (a node restarted
    from an older state lost periods it had mined) is run again from the start with its saved
    parameters, which gives the same periods again.
    """
    from chainabs.servicing import Simulator

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
        if outcome.period <= onchain_period:  # already posted before an interruption
            if not files.dir.period_path(outcome.period).exists():
                root = period_root(rows, outcome.statuses, outcome.outstanding)
                files.dir.write_period(PeriodTape(period=outcome.period, root="0x" + root.hex(),
                                                  statuses=list(outcome.statuses),
                                                  outstanding=list(outcome.outstanding)))
            continue
        root = period_root(rows, outcome.statuses, outcome.outstanding)
        done = post_period(ctx, handle, files, outcome.report, loan_root=root, loan_count=len(rows),
                           tape={"statuses": outcome.statuses, "outstanding": outcome.outstanding},
                           fund_servicer=True)
        data.write_servicing(pool_slug, sim.state_dict())
        if not done.matches_model:
            raise WaterfallError(f"period {done.result.period}: the chain's figures differ from the reference model")
        posted.append(done)
        if progress:
            progress(done, time.perf_counter() - started)
    return posted
