"""Deal figures: pool factor, losses, CPR/CDR, overcollateralisation, the tranches' state, the
investor report and a holder's positions, derived from a deal's indexed events.

A deal is known by its record (DealRecord, written by `chainabs deal create`), which names its
contracts and terms; `DealInfo.load` reads it as these figures need it. Everything that changes
over the deal's life comes from the chain's events as indexed, never from a call to the chain:
`PeriodReported` carries every figure of a period (pool and tranches); the tranche tokens'
`Transfer`, `Distributed`, `Claimed` and `EntitlementMoved` give each holder's units, what it
claimed and what it can claim now (chainabs.entitlements replays them as `claimableOf`
computes it, the way `audit verify` does); the registry's events give eligibility, judged at
the indexed head's block time; the pool's `TapeCommitted` and `LoansMinted` its root and how
many loans are minted. What is derived is kept per index generation (Store.generation), so
it is computed once per indexed block, not per request.

Ratios are floats for display, next to the integer figures they come from; money is always
integers in base units. The audit API serves these figures (chainabs.api); nothing here knows
about HTTP.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

from eth_utils import to_checksum_address

from chainabs.datadir import CommittedLoan, DataDir, DealRecord, PoolDir
from chainabs.entitlements import RegistryBook, TokenBook
from chainabs.pool import PoolFiles
from chainabs.service import loans_from_rows
from chainabs.servicing import principal_split
from chainabs.store import Store
from chainabs.tape import PRODUCTS, STATUSES, format_day
from chainabs.waterfall import PeriodResult, TrancheResult

BPS = 10_000
# a period's and a tranche's figures carry the names of the reference model's fields
PERIOD_FIELDS = tuple(f.name for f in fields(PeriodResult) if f.name != "tranches")
TRANCHE_FIELDS = tuple(f.name for f in fields(TrancheResult))
MAX_PERIODS = 100_000
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class TrancheInfo:
    index: int
    name: str
    symbol: str
    address: str          # lower-case
    face: int
    coupon_bps: int


@dataclass
class DealInfo:
    """A deal record as the figures need it. `stamp` and `memo` are for a long-running reader
    that keeps it: the record file's mtime, and what was derived from it (periods per indexed
    head, period tapes, principal splits)."""

    slug: str
    name: str
    pool: str             # lower-case addresses from here on
    deal: str
    registry: str | None
    exchange: str | None
    tranches: list[TrancheInfo]
    servicer_fee_bps: int
    reserve_target_bps: int
    initial_reserve: int
    default_trigger_bps: int
    cutoff_day: int | None = None  # the pool's cut-off (days since 1970-01-01): the loans' schedule starts there
    stamp: int = 0
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def initial_balance(self) -> int:
        return sum(t.face for t in self.tranches)

    @classmethod
    def from_record(cls, record: DealRecord, cutoff_day: int | None) -> DealInfo:
        """Raises ValueError when the record lacks a tranche token."""
        contracts = {k: v.lower() for k, v in record.contracts.items()}
        params = record.params
        tranches = []
        for k, t in enumerate(params.tranches):
            address = contracts.get(f"TrancheToken:{t.symbol}")
            if address is None:
                raise ValueError(f"deal {record.slug}: no TrancheToken:{t.symbol} among the contracts")
            tranches.append(TrancheInfo(k, str(t.name), str(t.symbol), address, int(t.face), int(t.coupon_bps)))
        return cls(slug=record.slug, name=record.name, pool=record.pool.lower(), deal=contracts["Deal"],
                   registry=contracts.get("InvestorRegistry"), exchange=contracts.get("TrancheExchange"),
                   tranches=tranches, servicer_fee_bps=int(params.servicer_fee_bps),
                   reserve_target_bps=int(params.reserve_target_bps), initial_reserve=int(params.initial_reserve),
                   default_trigger_bps=int(params.default_trigger_bps), cutoff_day=cutoff_day)

    @classmethod
    def load(cls, data: DataDir, record: DealRecord) -> DealInfo:
        """The deal of `record`, with its cut-off: the record's, or (deals created before it was
        recorded) the simulator's saved state's. Raises ValueError as from_record does."""
        return cls.from_record(record, _cutoff_day(data, record))


def _cutoff_day(data: DataDir, record: DealRecord) -> int | None:
    if record.cutoff_day is not None:
        return record.cutoff_day
    try:
        saved = data.read_servicing(record.slug)
        return None if saved is None else int(saved["cutoff_day"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


TrancheTokens = Mapping[str, tuple[DealInfo, TrancheInfo]]
"""{tranche token address (lower-case): (its deal, the tranche)}, over every deal of a data dir."""


# -- a pool's loans, as committed ------------------------------------------------------------------

def loan_figures(*, rows: Sequence[CommittedLoan], as_of_day: int) -> dict[str, Any]:
    """Count, balances, WAC, WAM and mix of committed loans (weights: outstanding units)."""
    outstanding = sum(r.outstanding_units for r in rows)
    weight = outstanding or 1
    by_status = {name: {"count": 0, "outstanding_units": 0} for name in STATUSES}
    by_product = {name: {"count": 0, "outstanding_units": 0} for name in PRODUCTS}
    for r in rows:
        for table, key in ((by_status, STATUSES[r.status]), (by_product, PRODUCTS[r.product])):
            table[key]["count"] += 1
            table[key]["outstanding_units"] += r.outstanding_units
    return {
        "loan_count": len(rows),
        "principal_units": sum(r.principal_units for r in rows),
        "outstanding_units": outstanding,
        "wac_bps": round(sum(r.rate_bps * r.outstanding_units for r in rows) / weight, 2),
        "wam_months": round(sum(max(0, r.maturity_day - as_of_day) * r.outstanding_units for r in rows)
                            / weight / DAYS_PER_MONTH, 2),
        "wa_original_term_months": round(sum(r.term_months * r.outstanding_units for r in rows) / weight, 2),
        "as_of": format_day(as_of_day),
        "by_status": by_status,
        "by_product": by_product,
    }


# -- periods, from PeriodReported events ----------------------------------------------------------

def indexed(store: Store, memo: dict[Any, Any]) -> dict[Any, Any]:
    """The part of `memo` that holds what was derived from the index at its current generation;
    emptied when the index changes (a new page, a rollback)."""
    generation = store.generation()
    current = memo.get("indexed")
    if current is None or current[0] != generation:
        current = (generation, {})
        memo["indexed"] = current
    return current[1]


def periods(store: Store, deal: DealInfo) -> list[dict[str, Any]]:
    """Every reported period in order, flattened from its PeriodReported event, with where it was
    recorded; derived once per index generation."""
    memo = indexed(store, deal.memo)
    if "periods" not in memo:
        out = []
        for e in store.events(deal.deal, "PeriodReported", limit=MAX_PERIODS):
            figures = e.args["figures"]
            row: dict[str, Any] = {name: figures[name] for name in PERIOD_FIELDS}
            row["loan_count"] = figures["loan_count"]
            row["loan_root"] = figures["loan_root"]
            row["tranches"] = [{"index": k, "name": deal.tranches[k].name, "symbol": deal.tranches[k].symbol,
                                **{name: t[name] for name in TRANCHE_FIELDS}}
                               for k, t in enumerate(e.args["tranches"])]
            row.update(block_number=e.block_number, block_hash=e.block_hash, tx_hash=e.tx_hash)
            out.append(row)
        memo["periods"] = out
    return memo["periods"]


@dataclass(frozen=True)
class DealBooks:
    """A deal's tranche tokens and registry replayed from the index (chainabs.entitlements)."""

    tokens: dict[str, TokenBook]    # by token address (lower-case)
    registry: RegistryBook
    head_time: int | None           # the indexed head's block time


def deal_books(store: Store, deal: DealInfo) -> DealBooks:
    """The deal's books at the index's current generation, replayed once per generation."""
    memo = indexed(store, deal.memo)
    if "books" not in memo:
        tokens = {t.address: TokenBook() for t in deal.tranches}
        registry = RegistryBook()
        addresses = [*tokens, *([deal.registry] if deal.registry else [])]
        for e in store.events_of(addresses):
            book = tokens.get(e.address)
            if book is not None:
                book.apply(e.event, e.args)
            else:
                registry.apply(e.event, e.args)
        memo["books"] = DealBooks(tokens, registry, store.head_time())
    books: DealBooks = memo["books"]
    return books


@dataclass(frozen=True)
class PoolChainState:
    """What the pool contract holds, from its indexed events: the root it committed to
    (TapeCommitted; None before), how many loans it minted (LoansMinted) and whether all are."""

    root: str | None
    loan_count: int
    minted: int

    @property
    def filled(self) -> bool:
        return self.root is not None and self.minted == self.loan_count


def pool_chain_state(store: Store, pool: str, memo: dict[Any, Any]) -> PoolChainState:
    """The pool contract at `pool` as its indexed events describe it, derived once per index
    generation (`memo`: the caller's, e.g. one per pool)."""
    cached = indexed(store, memo)
    if "pool" not in cached:
        root, count, minted = None, 0, 0
        for e in store.events_of([pool.lower()]):
            if e.event == "TapeCommitted":
                root, count = str(e.args["root"]).lower(), int(e.args["loanCount"])
            elif e.event == "LoansMinted":
                minted = int(e.args["mintedCount"])
        cached["pool"] = PoolChainState(root, count, minted)
    state: PoolChainState = cached["pool"]
    return state


def index_day(store: Store) -> int:
    """Today as the index sees it: the indexed head's block day (days since 1970-01-01); the
    wall clock's before the index knows a block time."""
    stamp = store.head_time()
    return (int(time.time()) if stamp is None else stamp) // 86_400


def _ratio(part: int, whole: int) -> float:
    """part / whole to 8 decimals, for display (a factor); 0.0 when whole is 0."""
    return round(part / whole, 8) if whole else 0.0


def _annualised(monthly_numerator: int, base: int) -> tuple[float, float]:
    """(monthly rate, annualised rate 1 - (1 - m)^12) of numerator / base."""
    if base <= 0:
        return 0.0, 0.0
    monthly = monthly_numerator / base
    return round(monthly, 8), round(1 - (1 - min(monthly, 1.0)) ** 12, 8)


def _cpr(split: tuple[int, int] | None, balance_start: int) -> tuple[float | None, float | None]:
    """(SMM, CPR) from a period's (scheduled, unscheduled) principal; None when unknown."""
    if split is None:
        return None, None
    scheduled, unscheduled = split
    return _annualised(unscheduled, balance_start - scheduled)


@lru_cache(maxsize=4096)
def checksum(address: str) -> str:
    """EIP-55 of a lower-case address (keccak per call: kept, as the same few recur)."""
    return to_checksum_address(address)


def tranche_state(deal: DealInfo, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tranche now: balance, factor, unpaid interest and credit enhancement; computed once
    per `history` (the periods of one index generation)."""
    memo = _current(deal)
    cached = memo.get("tranche_state")
    if cached is None or cached[0] is not history:
        cached = memo["tranche_state"] = (history, _tranche_state(deal, history))
    rows: list[dict[str, Any]] = cached[1]
    return rows


def _tranche_state(deal: DealInfo, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = history[-1] if history else None
    pool_balance = last["pool_balance_end"] if last else deal.initial_balance
    reserve = last["reserve_end"] if last else deal.initial_reserve
    rows, senior = [], 0
    for k, t in enumerate(deal.tranches):
        balance = last["tranches"][k]["balance_end"] if last else t.face
        unpaid = last["tranches"][k]["interest_unpaid"] if last else 0
        senior += balance
        support = pool_balance + reserve - senior
        rows.append({
            "index": k, "name": t.name, "symbol": t.symbol, "address": checksum(t.address), "face": t.face,
            "balance": balance, "factor": _ratio(balance, t.face),
            "coupon_bps": t.coupon_bps, "residual": k == len(deal.tranches) - 1, "unpaid_interest": unpaid,
            "credit_enhancement_units": support,
            "credit_enhancement_bps": support * BPS // pool_balance if pool_balance else 0,
        })
    return rows


def deal_figures(deal: DealInfo, history: list[dict[str, Any]], statuses: list[int] | None,
                 outstanding: list[int] | None, split: tuple[int, int] | None = None) -> dict[str, Any]:
    """Pool performance of a deal: balance, factor, losses, CPR/CDR, OC, reserve, trigger.

    CPR: the last period's unscheduled principal (prepayments, `split` from the loan-level
    tapes: servicing.principal_split) over the balance at its start less the scheduled
    principal (the SMM), annualised as 1 - (1 - SMM)^12; None without the period's loan-level
    tapes. CDR: defaulted principal over the balance at the start, annualised the same way.
    """
    last = history[-1] if history else None
    initial = deal.initial_balance
    balance = last["pool_balance_end"] if last else initial
    defaults = sum(p["defaulted_principal"] for p in history)
    recoveries = sum(p["recoveries"] for p in history)
    tranches = tranche_state(deal, history)
    rated = sum(t["balance"] for t in tranches if not t["residual"])
    cpr_m, cpr_a = _cpr(split, last["pool_balance_start"]) if last else (0.0, 0.0)
    cdr_m, cdr_a = _annualised(last["defaulted_principal"], last["pool_balance_start"]) if last else (0.0, 0.0)
    delinquency = None
    if statuses is not None and outstanding is not None:
        delinquency = {name: {"count": 0, "outstanding_units": 0} for name in STATUSES}
        for s, o in zip(statuses, outstanding, strict=False):
            delinquency[STATUSES[s]]["count"] += 1
            delinquency[STATUSES[s]]["outstanding_units"] += o
    return {
        "name": deal.name, **{k: to_checksum_address(v) if v else None for k, v in
                              (("deal", deal.deal), ("registry", deal.registry), ("exchange", deal.exchange))},
        "periods": len(history), "last_period": last["period"] if last else None,
        "initial_balance": initial, "pool_balance": balance,
        "pool_factor": _ratio(balance, initial),
        "loan_count": last["loan_count"] if last else None,
        "cumulative_defaults": defaults, "cumulative_recoveries": recoveries,
        "cumulative_net_loss": defaults - recoveries,
        "cumulative_default_bps": defaults * BPS // initial if initial else 0,
        "prepayments_last_period": split[1] if split else None,
        "cpr_last_period": cpr_m, "cpr_annualised": cpr_a, "cdr_last_period": cdr_m, "cdr_annualised": cdr_a,
        # overcollateralisation: collateral beyond the rated notes (the residual tranche is the OC)
        "overcollateralisation_units": balance - rated,
        "overcollateralisation_ratio": round(balance / rated, 8) if rated else None,
        "reserve": last["reserve_end"] if last else deal.initial_reserve,
        "reserve_target_bps": deal.reserve_target_bps, "servicer_fee_bps": deal.servicer_fee_bps,
        "trigger": {"breached": bool(last["trigger_breached"]) if last else False,
                    "default_trigger_bps": deal.default_trigger_bps,
                    "cumulative_default_bps": defaults * BPS // initial if initial else 0},
        "delinquency": delinquency,
        "tranches": tranches,
    }


# -- the investor report ----------------------------------------------------------------------

def investor_report(deal: DealInfo, history: list[dict[str, Any]], n: int,
                    split: tuple[int, int] | None = None) -> dict[str, Any]:
    """Period `n`'s investor report: collections, waterfall, losses, excess spread, OC, CPR,
    CDR, reserve and trigger test, tranche by tranche. `split`: the period's (scheduled,
    unscheduled) principal, as for deal_figures."""
    upto = [x for x in history if x["period"] <= n]
    p = upto[-1]
    initial = deal.initial_balance
    defaults = sum(x["defaulted_principal"] for x in upto)
    recoveries = sum(x["recoveries"] for x in upto)
    interest_paid = sum(t["interest_paid"] for t in p["tranches"][:-1])
    rated_end = sum(t["balance_end"] for t in p["tranches"][:-1])
    cpr_m, cpr_a = _cpr(split, p["pool_balance_start"])
    cdr_m, cdr_a = _annualised(p["defaulted_principal"], p["pool_balance_start"])
    return {
        "deal": deal.name, "pool_address": to_checksum_address(deal.pool), "period": n,
        "loan_root": p["loan_root"], "loan_count": p["loan_count"],
        "block_number": p["block_number"], "tx_hash": p["tx_hash"],
        "collections": {"interest": p["interest_collected"], "principal": p["principal_collected"],
                        "scheduled_principal": split[0] if split else None,
                        "prepayments": split[1] if split else None, "recoveries": p["recoveries"],
                        "total": p["interest_collected"] + p["principal_collected"] + p["recoveries"]},
        "pool": {"balance_start": p["pool_balance_start"], "balance_end": p["pool_balance_end"],
                 "factor": _ratio(p["pool_balance_end"], initial),
                 "defaulted_principal": p["defaulted_principal"], "cumulative_defaults": defaults,
                 "cumulative_recoveries": recoveries, "cumulative_net_loss": defaults - recoveries,
                 "cpr_monthly": cpr_m, "cpr_annualised": cpr_a, "cdr_monthly": cdr_m, "cdr_annualised": cdr_a},
        "fees": {"due": p["fee_due"], "paid": p["fee_paid"]},
        "excess_spread": p["interest_collected"] - p["fee_paid"] - interest_paid,
        "overcollateralisation": {"units": p["pool_balance_end"] - rated_end,
                                  "ratio": round(p["pool_balance_end"] / rated_end, 8) if rated_end else None},
        "reserve": {name: p[f"reserve_{name}"] for name in ("start", "drawn", "released", "added", "end")},
        "trigger_test": {"cumulative_default_bps": defaults * BPS // initial if initial else 0,
                         "threshold_bps": deal.default_trigger_bps, "breached": bool(p["trigger_breached"])},
        "residual_paid": p["residual_paid"],
        "tranches": [{**t, "factor": _ratio(t["balance_end"], deal.tranches[k].face)}
                     for k, t in enumerate(p["tranches"])],
    }


def report_csv(report: dict[str, Any]) -> str:
    """The report as long-format CSV: section, tranche, field, value (one figure a row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "tranche", "field", "value"])
    for key, value in report.items():
        if key == "tranches":
            for t in value:
                for name, v in t.items():
                    if name not in ("index", "symbol"):
                        writer.writerow(["tranche", t["symbol"], name, v])
        elif isinstance(value, dict):
            for name, v in value.items():
                writer.writerow([key, "", name, v])
        else:
            writer.writerow(["deal", "", key, value])
    return out.getvalue()


# -- holdings ----------------------------------------------------------------------------------

def enrich_holdings(*, store: Store, tokens: TrancheTokens, address: str,
                    holdings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tranche holdings gain units, outstanding principal (units x balance / face, rounded down,
    from the last PeriodReported), claimable and claimed (the token's events replayed: what
    `claimableOf` answers at the indexed head) and eligibility (the registry's events, at the
    indexed head's block time, as the token mirrors them). Nothing here reads the chain."""
    address = address.lower()
    held = {h["token"].lower() for h in holdings}
    # a holder who sold every unit may still have cash to claim: show those tranches too
    for token, (deal, t) in tokens.items():
        book = deal_books(store, deal).tokens[token]
        if token not in held and (book.claimable(address) or book.claimed_by.get(address)):
            holdings.append({"token": checksum(token), "contract": "TrancheToken",
                             "label": f"{deal.slug}/TrancheToken:{t.symbol}", "kind": "erc20", "amount": "0"})
    out = []
    for h in holdings:
        entry = tokens.get(h["token"].lower())
        if entry is None:
            out.append(h)
            continue
        deal, t = entry
        state = tranche_state(deal, periods(store, deal))[t.index]
        books = deal_books(store, deal)
        book = books.tokens[t.address]
        units = int(h["amount"])
        eligible_until, frozen = books.registry.mirrored(address)
        now = int(time.time()) if books.head_time is None else books.head_time
        out.append({**h, "pool": checksum(deal.pool), "deal": checksum(deal.deal),
                    "tranche": t.name, "symbol": t.symbol, "tranche_index": t.index, "units": str(units),
                    "outstanding_principal": units * state["balance"] // t.face if t.face else 0,
                    "claimable": book.claimable(address), "claimed": book.claimed_by.get(address, 0),
                    "eligible": not frozen and eligible_until >= now,
                    "eligible_until": eligible_until, "frozen": frozen})
    return out


def _period_tape(deal: DealInfo, folder: PoolDir, n: int) -> tuple[list[int], list[int]] | None:
    """Statuses and outstanding units of period `n`'s loan-level tape, if the pool folder has it."""
    memo = _current(deal)
    key = ("tape", n)
    if key not in memo:
        try:
            tape = folder.read_period(n)
            memo[key] = None if tape is None else (
                [int(s) for s in tape.statuses], [int(o) for o in tape.outstanding])
        except (OSError, ValueError, KeyError, TypeError):
            memo[key] = None
    result: tuple[list[int], list[int]] | None = memo[key]
    return result


def _current(deal: DealInfo) -> dict[Any, Any]:
    """The deal's memo of the index generation last seen (periods() moves it on): period tapes
    and principal splits are read again when the index moves, as a new period may have come
    with its tape."""
    current = deal.memo.get("indexed")
    if current is None:
        current = deal.memo["indexed"] = (None, {})
    scratch: dict[Any, Any] = current[1]
    return scratch


def _committed_tape(files: PoolFiles) -> tuple[list[int], list[int]]:
    """Statuses and outstanding units of the pool's loans as committed (before period 1)."""
    return [r.status for r in files.rows], [r.outstanding_units for r in files.rows]


def principal_split_of(deal: DealInfo, files: PoolFiles, n: int) -> tuple[int, int] | None:
    """Period `n`'s (scheduled, unscheduled) principal from its loan-level tape and the one
    before it (the committed rows before period 1); None without them or the cut-off."""
    memo = _current(deal)
    key = ("split", n)
    if key not in memo:
        value = None
        before = _committed_tape(files) if n == 1 else _period_tape(deal, files.dir, n - 1)
        after = _period_tape(deal, files.dir, n)
        if deal.cutoff_day is not None and before is not None and after is not None:
            if "loans" not in memo:
                memo["loans"] = loans_from_rows(files.rows)
            try:
                value = principal_split(memo["loans"], cutoff_day=deal.cutoff_day, period=n, before=before,
                                        after=after)
            except ValueError:  # a period tape of another length: not this pool's
                value = None
        memo[key] = value
    result: tuple[int, int] | None = memo[key]
    return result


def pool_deal_figures(deal: DealInfo, store: Store, files: PoolFiles) -> dict[str, Any]:
    """deal_figures of the deal now: its latest period, with that period's loan-level tape for
    the delinquency buckets and the CPR (the committed rows at closing); derived once per
    index generation."""
    history = periods(store, deal)
    memo = _current(deal)
    if "pool_figures" not in memo:
        memo["pool_figures"] = _pool_deal_figures(deal, history, files)
    result: dict[str, Any] = memo["pool_figures"]
    return result


def _pool_deal_figures(deal: DealInfo, history: list[dict[str, Any]], files: PoolFiles) -> dict[str, Any]:
    tape = _period_tape(deal, files.dir, history[-1]["period"]) if history else None
    statuses, outstanding = tape if tape else (None, None)
    if not history:  # at closing, every loan is as committed
        statuses, outstanding = _committed_tape(files)
    split = principal_split_of(deal, files, history[-1]["period"]) if history else None
    return deal_figures(deal, history, statuses, outstanding, split)
