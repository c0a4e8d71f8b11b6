"""Checks anyone can run against a deal, from the chain's events and the deal's published files.

Each check is a name, a result (PASS, FAIL, or NOT CHECKED when what it needs is absent) and
the figures it compared. The events are read straight from the chain with `eth_getLogs`
(the indexer's log sources and decoders, not its SQLite file), for the deal's contracts
(Deal, InvestorRegistry, TrancheExchange, every TrancheToken), its LoanPool, the settlement
token's transfers into and out of the deal and the loan token's commitments to the pool.
Every contract view is read at the same block as the last log, so the two agree.

`verify_deal(handle, files)` is the chain half, from events alone:

- parameters: the Deal's constructor arguments (decoded from the transaction that emitted
  DealCreated) equal the deal file's published terms and the contract's views.
- units: holder units rebuilt from Transfer events equal totalSupply and every balanceOf;
  Subscribed plus OfferingClosed's unsold units account for every mint.
- registry: investor records rebuilt from InvestorSet/Revoked/Frozen equal the registry's,
  and every unit receiver was registered, unexpired and unfrozen when it received.
- waterfall: every PeriodReported, replayed through waterfall.py from the published terms,
  equal field by field; the model's carried state equals the contract's.
- cash: settlement flows into and out of the deal equal the reserve, collections, fees and
  claims; the deal's balance equals reserve + paid not yet claimed (dust included); every
  period conserves cash.
- claims: per-holder entitlements replayed from Distributed, Transfer and Claimed equal
  claimableOf; claimed + claimable never exceed what each tranche was paid.
- loans and periods: the published loan rows hash to the committed loan hashes and the
  pool's root; each period's loan-level tape has the period's on-chain root and balance.

`audit(ctx, pool)` adds what needs the data dir: the SQLite index equals the chain's events,
the audit API's figures equal the chain's, and, given the loan tape and the pool's salt, every
loan commitment and the pool's root recomputed from scratch.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import collapse_if_tuple, to_checksum_address

from chainabs import deal as deals
from chainabs import merkle
from chainabs.build import load_artifact
from chainabs.chain import Chain, LogSource, RawLog
from chainabs.chain.abi import event_specs
from chainabs.context import Context
from chainabs.errors import ChainabsError, WaterfallError
from chainabs.indexer import DEFAULT_RANGE, contracts_for
from chainabs.datadir import INDEX_FILE, DataDir, period_root
from chainabs.service import open_deal
from chainabs.pool import PoolFiles
from chainabs.waterfall import (DealParams, DealState, PeriodReport, PeriodResult, TrancheResult, TrancheSpec,
                                check_conservation, run_period)

ZERO = "0x" + "0" * 40
MAGNITUDE = deals.MAGNITUDE
SHOWN = 10  # mismatches listed in a check's figures; the count is always complete


# -- checks ------------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool | None            # None: not checked (what it needs is absent); never a FAIL
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return "NOT CHECKED" if self.ok is None else "PASS" if self.ok else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "result": self.result, "figures": self.figures}

    def line(self) -> str:
        """The check for people: result, name and its figures (empty lists left out)."""
        shown = [f"{k} {v if isinstance(v, (int, str)) else json.dumps(v, separators=(',', ':'))}"
                 for k, v in self.figures.items() if v != []]
        return f"{self.result:<4}  {self.name}: {'; '.join(shown)}"


def passed(checks: Iterable[Check]) -> bool:
    """No check failed (a check not run is not a failure)."""
    return all(c.ok is not False for c in checks)


def _first(items: list[Any]) -> list[Any]:
    return items[:SHOWN]


# -- reading the chain -------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainEvent:
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    address: str               # lower-case
    name: str
    args: dict[str, Any]

    def canonical(self) -> tuple[Any, ...]:
        """What the index must hold for this event, independent of JSON formatting (the block
        hash is compared on its own: see check_index)."""
        return (self.tx_hash, self.log_index, self.block_number, self.name,
                json.dumps(self.args, sort_keys=True, separators=(",", ":")))


def get_logs(source: LogSource, start: int, end: int, addresses: Sequence[str], *,
             max_range: int = DEFAULT_RANGE) -> list[RawLog]:
    """Every log of `addresses` in blocks [start, end], paged; a refused page is halved."""
    out: list[RawLog] = []
    size = max_range
    while start <= end:
        stop = min(end, start + size - 1)
        try:
            out.extend(source.get_logs(start, stop, addresses))
        except ChainabsError:
            if stop == start:
                raise
            size = max(1, (stop - start + 1) // 2)
            continue
        start = stop + 1
    return out


def decode_logs(logs: Iterable[RawLog], artifacts: Mapping[str, str],
                keep: Callable[[RawLog], bool] | None = None) -> list[ChainEvent]:
    """Decode as the indexer does (an undecodable log becomes "Unknown" with its raw topics)."""
    out = []
    for log in logs:
        if keep is not None and not keep(log):
            continue
        number, block_hash, tx_hash, index, address, topics, data = log
        spec = event_specs(artifacts[address]).get(topics[0]) if topics else None
        try:
            if spec is None:
                raise ValueError("unknown event")
            name, args = spec.name, spec.decode(topics, data)
        except Exception:  # noqa: BLE001 - kept raw, as the index keeps it
            name, args = "Unknown", {"topics": ["0x" + t.hex() for t in topics], "data": "0x" + data.hex()}
        out.append(ChainEvent(number, block_hash, index, tx_hash, address, name, args))
    out.sort(key=lambda e: (e.block_number, e.log_index))
    return out


@dataclass
class DealEvents:
    """A deal's events up to `head`, and which contract is which."""

    head: int
    start: int
    deal: str
    pool: str
    registry: str
    exchange: str
    settlement: str
    loan_token: str
    tokens: list[str]
    events: list[ChainEvent]            # every event of the deal's contracts and the pool
    cash_moves: list[ChainEvent]        # settlement Transfers from or to the deal
    commitments: list[ChainEvent]       # LoansCommitted to the pool
    seconds: float = 0.0

    def named(self, name: str, address: str | None = None) -> list[ChainEvent]:
        return [e for e in self.events if e.name == name and (address is None or e.address == address)]

    def artifacts(self) -> dict[str, str]:
        out = {self.deal: "Deal", self.pool: "LoanPool", self.registry: "InvestorRegistry",
               self.exchange: "TrancheExchange", self.settlement: "SettlementToken", self.loan_token: "LoanToken"}
        out.update({t: "TrancheToken" for t in self.tokens})
        return out


def read_deal_events(handle: deals.DealHandle, files: PoolFiles, *, head: int | None = None,
                     max_range: int = DEFAULT_RANGE) -> DealEvents:
    started = time.perf_counter()
    chain = handle.chain
    source = chain.log_source()
    head = source.head() if head is None else head
    start = int(files.record.deployment_block or 0)
    pool = handle.pool.lower()
    deal = handle.deal.address.lower()
    tokens = [t.address.lower() for t in handle.tokens]
    pool_contract = chain.contract("LoanPool", handle.pool)
    loan_token = str(chain.call(pool_contract.functions.loanToken(), block=head)).lower()
    settlement = handle.settlement.address.lower()
    artifacts = {deal: "Deal", pool: "LoanPool", handle.registry.address.lower(): "InvestorRegistry",
                 handle.exchange.address.lower(): "TrancheExchange", **{t: "TrancheToken" for t in tokens}}
    events = decode_logs(get_logs(source, start, head, list(artifacts), max_range=max_range), artifacts)
    created = [e for e in events if e.name == "DealCreated" and e.address == deal]
    if created:  # the settlement token the Deal was built with, not the one the handle assumes
        settlement = str(created[0].args["settlement"]).lower()
    deal_topic = bytes(12) + bytes.fromhex(deal[2:])
    transfer_topic = next(t for t, s in event_specs("SettlementToken").items() if s.name == "Transfer")
    moves = decode_logs(
        get_logs(source, start, head, [settlement], max_range=max_range), {settlement: "SettlementToken"},
        keep=lambda log: len(log[5]) == 3 and log[5][0] == transfer_topic and deal_topic in (log[5][1], log[5][2]))
    committed_topic = next(t for t, s in event_specs("LoanToken").items() if s.name == "LoansCommitted")
    pool_topic = bytes(12) + bytes.fromhex(pool[2:])
    filled = [e.block_number for e in events if e.name == "PoolFilled" and e.address == pool]
    commitments = decode_logs(
        get_logs(source, start, filled[0] if filled else head, [loan_token], max_range=max_range),
        {loan_token: "LoanToken"},
        keep=lambda log: len(log[5]) == 2 and log[5][0] == committed_topic and log[5][1] == pool_topic)
    return DealEvents(head=head, start=start, deal=deal, pool=pool, registry=handle.registry.address.lower(),
                      exchange=handle.exchange.address.lower(), settlement=settlement, loan_token=loan_token,
                      tokens=tokens, events=events, cash_moves=moves, commitments=commitments,
                      seconds=time.perf_counter() - started)


# -- the deal's terms --------------------------------------------------------------------------

def published_terms(files: PoolFiles) -> DealParams | None:
    """The terms the deal record publishes (None when the pool has no deal record)."""
    data = files.dir.data_dir
    try:
        record = data.read_deal(files.dir.slug)
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainabsError(f"{data.deal_path(files.dir.slug)}: the deal's published parameters are "
                            f"unreadable ({exc})") from None
    return None if record is None else record.params


def constructor_terms(chain: Chain, tx_hash: str) -> DealParams | None:
    """The Deal's constructor arguments, decoded from its deployment transaction; None unless
    that transaction is a creation with chainabs' Deal artifact as its code."""
    data = bytes(chain.w3.eth.get_transaction(tx_hash)["input"])
    artifact = load_artifact("Deal")
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))
    if not data.startswith(code):
        return None
    ctor = next(item for item in artifact["abi"] if item["type"] == "constructor")
    try:
        _, _, _, tranches, parameters, _ = abi_decode([collapse_if_tuple(p) for p in ctor["inputs"]], data[len(code):])
    except Exception:  # noqa: BLE001 - malformed arguments: not a deployment we can read
        return None
    return DealParams(tranches=tuple(TrancheSpec(name=n, symbol=s, face=int(f), coupon_bps=int(c))
                                     for n, s, f, c in tranches),
                      servicer_fee_bps=int(parameters[0]), reserve_target_bps=int(parameters[1]),
                      initial_reserve=int(parameters[2]), default_trigger_bps=int(parameters[3]))


def _terms_diff(a: DealParams, b: DealParams) -> list[str]:
    out = [f.name for f in fields(DealParams) if f.name != "tranches" and getattr(a, f.name) != getattr(b, f.name)]
    if len(a.tranches) != len(b.tranches):
        return [*out, "tranches"]
    for k, (x, y) in enumerate(zip(a.tranches, b.tranches, strict=True)):
        out += [f"tranches[{k}].{f.name}" for f in fields(TrancheSpec) if getattr(x, f.name) != getattr(y, f.name)]
    return out


def check_parameters(handle: deals.DealHandle, ev: DealEvents, terms: DealParams | None) -> tuple[Check, DealParams]:
    """The Deal's constructor arguments against the deal file and the contract's views; returns
    the terms the model runs on (the published ones, or the constructor's without a deal file)."""
    created = ev.named("DealCreated", ev.deal)
    problems: list[str] = []
    if len(created) != 1:
        name = "parameters: the Deal was deployed with the published terms"
        return Check(name, False, {"DealCreated events": len(created)}), terms or handle.params
    dc = created[0].args
    decoded = constructor_terms(handle.chain, created[0].tx_hash)
    if decoded is None:
        problems.append("the Deal's creation transaction is not chainabs' Deal code: its views stand in")
    onchain = decoded or handle.params
    model_terms = terms or onchain
    problems += [f"deal file {d}" for d in _terms_diff(model_terms, onchain)]
    problems += [f"contract view {d}" for d in _terms_diff(handle.params, onchain)]
    if [str(t).lower() for t in dc["tokens"]] != ev.tokens:
        problems.append("DealCreated tokens differ from the deal file's TrancheTokens")
    if str(dc["loanPool"]).lower() != ev.pool or str(dc["registry"]).lower() != ev.registry:
        problems.append("DealCreated pool or registry differs from the deal file")
    committed = ev.named("TapeCommitted", ev.pool)
    pool_units = int(committed[-1].args["outstandingUnits"]) if committed else None
    if int(dc["initialBalance"]) != onchain.initial_balance or pool_units != onchain.initial_balance:
        problems.append("faces, DealCreated.initialBalance and the pool's committed units disagree")
    figures = {"tranches": [f"{t.symbol} face {t.face} coupon {t.coupon_bps}" for t in onchain.tranches],
               "servicer_fee_bps": onchain.servicer_fee_bps, "reserve_target_bps": onchain.reserve_target_bps,
               "initial_reserve": onchain.initial_reserve, "default_trigger_bps": onchain.default_trigger_bps,
               "initial_balance": int(dc["initialBalance"]), "published": terms is not None,
               "differences": problems}
    return Check("parameters: the Deal was deployed with the published terms", not problems, figures), model_terms


# -- units, registry, entitlements -------------------------------------------------------------

@dataclass
class TokenBook:
    """One tranche token replayed from its events: units, and entitlements in 1/MAGNITUDE."""

    balances: dict[str, int] = field(default_factory=dict)
    corrections: dict[str, int] = field(default_factory=dict)
    supply: int = 0
    points: int = 0
    carry: int = 0
    paid: int = 0
    claimed: int = 0
    minted: int = 0
    overdrafts: list[str] = field(default_factory=list)          # a Transfer of more than was held
    bad_distributions: list[str] = field(default_factory=list)   # emitted points/carry not the arithmetic

    def transfer(self, sender: str, receiver: str, value: int) -> None:
        moved = self.points * value
        if sender == ZERO:
            self.supply += value
            self.minted += value
        else:
            left = self.balances.get(sender, 0) - value
            if left < 0:
                self.overdrafts.append(f"{sender} sends {value} holding {left + value}")
            self.balances[sender] = left
            self.corrections[sender] = self.corrections.get(sender, 0) + moved
        self.balances[receiver] = self.balances.get(receiver, 0) + value
        self.corrections[receiver] = self.corrections.get(receiver, 0) - moved

    def distribute(self, cash: int, points: int, carry: int) -> None:
        scaled = cash * MAGNITUDE + self.carry
        expected = (self.points + scaled // self.supply, scaled % self.supply) if self.supply else None
        if expected != (points, carry):
            self.bad_distributions.append(f"Distributed({cash}) emitted points {points}, carry {carry}; "
                                          f"expected {expected}")
        self.points, self.carry, self.paid = points, carry, self.paid + cash

    def claim(self, holder: str, amount: int) -> None:
        self.corrections[holder] = self.corrections.get(holder, 0) - amount * MAGNITUDE
        self.claimed += amount

    def claimable(self, holder: str) -> int:
        return (self.points * self.balances.get(holder, 0) + self.corrections.get(holder, 0)) // MAGNITUDE


def replay_tokens(ev: DealEvents, upto: int | None = None) -> list[TokenBook]:
    """Every tranche token's book from its events (up to block `upto`, default all)."""
    books = {t: TokenBook() for t in ev.tokens}
    for e in ev.events:
        book = books.get(e.address)
        if book is None or (upto is not None and e.block_number > upto):
            continue
        a = e.args
        if e.name == "Transfer":
            book.transfer(str(a["from"]), str(a["to"]), int(a["value"]))
        elif e.name == "Distributed":
            book.distribute(int(a["cash"]), int(a["pointsPerUnit"]), int(a["carry"]))
        elif e.name == "Claimed":
            book.claim(str(a["holder"]), int(a["amount"]))
    return [books[t] for t in ev.tokens]


def check_units(handle: deals.DealHandle, ev: DealEvents, books: list[TokenBook]) -> Check:
    chain, head = handle.chain, ev.head
    problems: list[str] = []
    per_tranche = []
    subscribed = [0] * len(ev.tokens)
    for e in ev.named("Subscribed", ev.deal):
        subscribed[int(e.args["tranche"])] += int(e.args["units"])
    closed = ev.named("OfferingClosed", ev.deal)
    unsold = [int(u) for u in closed[0].args["unsold"]] if closed else [0] * len(ev.tokens)
    for k, (token, book) in enumerate(zip(handle.tokens, books, strict=True)):
        supply = int(chain.call(token.functions.totalSupply(), block=head))
        wrong = [h for h in sorted(book.balances)
                 if int(chain.call(token.functions.balanceOf(to_checksum_address(h)), block=head)) != book.balances[h]]
        if supply != book.supply or sum(book.balances.values()) != supply:
            problems.append(f"tranche {k}: totalSupply {supply}, rebuilt {book.supply}")
        problems += [f"tranche {k}: balanceOf({h}) differs from its transfers" for h in _first(wrong)]
        if book.minted != subscribed[k] + unsold[k]:
            problems.append(f"tranche {k}: minted {book.minted}, subscribed {subscribed[k]} + unsold {unsold[k]}")
        problems += [f"tranche {k}: {m}" for m in book.overdrafts]
        per_tranche.append({"supply": book.supply, "holders": sum(1 for u in book.balances.values() if u)})
    moves = [(e.tx_hash, e.address, e.args["from"], e.args["to"], e.args["value"])
             for e in ev.events if e.name == "Transfer" and e.address in ev.tokens]
    transfers = set(moves)
    forced = ev.named("ForcedTransfer")
    unmatched = [e.tx_hash for e in forced
                 if (e.tx_hash, e.address, e.args["from"], e.args["to"], e.args["value"]) not in transfers]
    problems += [f"ForcedTransfer in {tx} has no matching Transfer" for tx in _first(unmatched)]
    return Check("units: holder units rebuilt from Transfer events equal totalSupply and balanceOf", not problems,
                 {"tranches": per_tranche, "transfers": len(moves), "forced": len(forced),
                  "subscribed": subscribed, "unsold": unsold, "differences": _first(problems)})


def check_registry(handle: deals.DealHandle, ev: DealEvents) -> Check:
    chain, head = handle.chain, ev.head
    records: dict[str, list[Any]] = {}  # investor -> [eligible_until, jurisdiction, frozen]
    problems: list[str] = []
    stamps: dict[int, int] = {}
    receipts = 0
    for e in ev.events:
        if e.address == ev.registry:
            who = str(e.args.get("investor", ""))
            rec = records.setdefault(who, [0, 0, False]) if who else None
            if e.name == "InvestorSet" and rec is not None:
                rec[0], rec[1] = int(e.args["eligibleUntil"]), int(e.args["jurisdiction"])
            elif e.name == "InvestorRevoked" and rec is not None:
                rec[:] = [0, 0, False]
            elif e.name == "InvestorFrozen" and rec is not None:
                rec[2] = bool(e.args["frozen"])
        elif e.address in ev.tokens and e.name == "Transfer":
            receipts += 1
            to = str(e.args["to"])
            until, _, frozen = records.get(to, [0, 0, False])
            if e.block_number not in stamps:
                stamps[e.block_number] = int(chain.w3.eth.get_block(e.block_number)["timestamp"])
            if frozen or until < stamps[e.block_number]:
                problems.append(f"{to} received units in block {e.block_number} while "
                                f"{'frozen' if frozen else 'not registered or expired'}")
    for who, rec in records.items():
        onchain = list(chain.call(handle.registry.functions.investor(to_checksum_address(who)), block=head))
        if [int(onchain[0]), int(onchain[1]), bool(onchain[2])] != rec:
            problems.append(f"registry record of {who} differs from its events")
    return Check("registry: investor records rebuilt from events equal the registry's; receivers were eligible",
                 not problems, {"investors": len(records), "unit receipts": receipts,
                                "frozen now": sum(1 for r in records.values() if r[2]),
                                "differences": _first(problems)})


# -- the waterfall -----------------------------------------------------------------------------

def chain_periods(ev: DealEvents) -> list[tuple[ChainEvent, PeriodResult]]:
    return [(e, deals._period_result(e.args["figures"], e.args["tranches"]))
            for e in ev.named("PeriodReported", ev.deal)]


def _diff(chain: PeriodResult, model: PeriodResult) -> list[tuple[str, Any, Any]]:
    out = [(f.name, getattr(chain, f.name), getattr(model, f.name)) for f in fields(PeriodResult)
           if f.name != "tranches" and getattr(chain, f.name) != getattr(model, f.name)]
    if len(chain.tranches) != len(model.tranches):
        return [*out, ("tranches", len(chain.tranches), len(model.tranches))]
    for k, (a, b) in enumerate(zip(chain.tranches, model.tranches, strict=True)):
        out += [(f"tranches[{k}].{f.name}", getattr(a, f.name), getattr(b, f.name))
                for f in fields(TrancheResult) if getattr(a, f.name) != getattr(b, f.name)]
    return out


def check_waterfall(handle: deals.DealHandle, ev: DealEvents, terms: DealParams,
                    periods: list[tuple[ChainEvent, PeriodResult]]) -> list[Check]:
    offering = not periods and deals.phase(handle) != "closed"
    state = DealState.offering(terms) if offering else DealState.initial(terms)
    differences: list[dict[str, Any]] = []
    differing: list[int] = []
    numbers = [r.period for _, r in periods]
    for _, onchain in periods:
        report = PeriodReport(onchain.interest_collected, onchain.principal_collected, onchain.recoveries,
                              onchain.defaulted_principal)
        try:
            expected, state = run_period(terms, state, report)
        except WaterfallError as exc:
            differing.append(onchain.period)
            differences.append({"period": onchain.period, "model": str(exc)})
            break
        found = _diff(onchain, expected)
        if found:
            differing.append(onchain.period)
            differences += [{"period": onchain.period, "field": f, "chain": a, "model": b} for f, a, b in found]
    in_order = numbers == list(range(1, len(numbers) + 1))
    replay = Check("waterfall: every PeriodReported equals the reference model, field by field",
                   not differing and in_order,
                   {"periods": len(periods), "in order": in_order, "differing periods": differing,
                    "differences": len(differences), "first": _first(differences)})
    final = deals.read_state(handle)  # the latest block: the logs were read up to it moments ago
    carried = Check("waterfall: the model's carried state equals the contract's", state == final,
                    {"period": final.period, "tranche balances": final.tranche_balances,
                     "model tranche balances": state.tranche_balances, "unpaid interest": final.unpaid_interest,
                     "reserve": final.reserve, "model reserve": state.reserve, "pool balance": final.pool_balance})
    return [replay, carried]


# -- cash and claims ---------------------------------------------------------------------------

def check_cash(handle: deals.DealHandle, ev: DealEvents, periods: list[tuple[ChainEvent, PeriodResult]],
               books: list[TokenBook]) -> list[Check]:
    moved_in = sum(int(e.args["value"]) for e in ev.cash_moves if e.args["to"] == ev.deal)
    moved_out = sum(int(e.args["value"]) for e in ev.cash_moves if e.args["from"] == ev.deal)
    closed = ev.named("OfferingClosed", ev.deal)
    reserve_funded = int(closed[0].args["reserveFunded"]) if closed else 0
    collected = sum(r.interest_collected + r.principal_collected + r.recoveries for _, r in periods)
    fees = sum(r.fee_paid for _, r in periods)
    claimed = sum(b.claimed for b in books)
    flows = Check("cash: settlement flows into and out of the deal equal reserve + collections and fees + claims",
                  moved_in == reserve_funded + collected and moved_out == fees + claimed,
                  {"in": moved_in, "reserve funded": reserve_funded, "collections": collected,
                   "out": moved_out, "fees": fees, "claims": claimed})

    reserve = periods[-1][1].reserve_end if periods else reserve_funded
    unclaimed = sum(b.paid - b.claimed for b in books)
    balance = int(handle.chain.call(handle.settlement.functions.balanceOf(handle.deal.address), block=ev.head))
    dust = handle.chain.call(handle.deal.functions.cashLedger(), block=ev.head)[3]
    held = Check("cash: deal balance (from events and on chain) = reserve + paid not yet claimed (dust included)",
                 moved_in - moved_out == balance == reserve + unclaimed,
                 {"from events": moved_in - moved_out, "on chain": balance, "reserve": reserve,
                  "unclaimed": unclaimed, "dust": sum(dust)})

    broken = []
    for _, r in periods:
        try:
            check_conservation(r)
        except WaterfallError as exc:
            broken.append(str(exc))
    paid_by_period = [sum(r.tranches[k].cash_paid for _, r in periods if k < len(r.tranches))
                      for k in range(len(books))]
    distributed = [b.paid for b in books]
    conserved = Check("cash: every period conserves cash, and each tranche was credited its cash_paid",
                      not broken and paid_by_period == distributed,
                      {"periods": len(periods), "broken": _first(broken), "cash_paid": paid_by_period,
                       "Distributed": distributed})
    return [flows, held, conserved]


def check_claims(handle: deals.DealHandle, ev: DealEvents, books: list[TokenBook]) -> Check:
    chain, head = handle.chain, ev.head
    problems: list[str] = []
    paid, claimed = chain.call(handle.deal.functions.cashLedger(), block=head)[:2]
    claimable_totals = []
    for k, (token, book) in enumerate(zip(handle.tokens, books, strict=True)):
        problems += [f"tranche {k}: {m}" for m in book.bad_distributions]
        owed = 0
        for holder in sorted(book.balances):
            mine = book.claimable(holder)
            owed += mine
            if int(chain.call(token.functions.claimableOf(to_checksum_address(holder)), block=head)) != mine:
                problems.append(f"tranche {k}: claimableOf({holder}) differs from the replayed {mine}")
        claimable_totals.append(owed)
        if book.claimed + owed > book.paid:
            problems.append(f"tranche {k}: claimed {book.claimed} + claimable {owed} > paid {book.paid}")
        if (paid[k], claimed[k]) != (book.paid, book.claimed):
            problems.append(f"tranche {k}: cashLedger paid/claimed {paid[k]}/{claimed[k]} "
                            f"differ from the events' {book.paid}/{book.claimed}")
    return Check("claims: claimed + claimable never exceed what each tranche was paid", not problems,
                 {"paid": [b.paid for b in books], "claimed": [b.claimed for b in books],
                  "claimable": claimable_totals, "differences": _first(problems)})


# -- loans -------------------------------------------------------------------------------------

def _committed(ev: DealEvents) -> list[tuple[int, bytes]]:
    return [(int(t), bytes.fromhex(str(h)[2:])) for e in ev.commitments
            for t, h in zip(e.args["tokenIds"], e.args["loanHashes"], strict=True)]


def _pool_root(handle: deals.DealHandle, ev: DealEvents) -> tuple[str | None, str]:
    """(root of TapeCommitted, loanRoot() now)."""
    committed = ev.named("TapeCommitted", ev.pool)
    pool = handle.chain.contract("LoanPool", handle.pool)
    now = "0x" + bytes(handle.chain.call(pool.functions.loanRoot(), block=ev.head)).hex()
    return (str(committed[-1].args["root"]) if committed else None), now


def check_loans(handle: deals.DealHandle, files: PoolFiles, ev: DealEvents) -> Check:
    hashes = [row.loan_hash() for row in files.rows]
    root = "0x" + merkle.MerkleTree.from_leaves([merkle.leaf_from_loan_hash(h) for h in hashes]).root.hex()
    event_root, onchain_root = _pool_root(handle, ev)
    committed = _committed(ev)
    ids = [merkle.token_id(row.loan_id) for row in files.rows]
    same = committed == list(zip(ids, hashes, strict=True))
    return Check("loans: Merkle root of the published loan rows equals the pool's root",
                 root == event_root == onchain_root and same,
                 {"loans": len(hashes), "root": root, "TapeCommitted root": event_root, "loanRoot()": onchain_root,
                  "LoansCommitted": len(committed), "rows equal the committed hashes": same})


def check_period_tapes(files: PoolFiles, periods: list[tuple[ChainEvent, PeriodResult]]) -> Check:
    onchain = {r.period: (str(e.args["figures"]["loan_root"]), r.pool_balance_end) for e, r in periods}
    bad: list[str] = []
    paths = files.dir.period_files()
    for path in paths:
        n = int(path.stem) if path.stem.isdigit() else -1
        if n not in onchain:
            bad.append(f"{path.stem} (no such period on chain)")
            continue
        tape = files.dir.read_period(n)
        assert tape is not None
        root = "0x" + period_root(files.rows, tape.statuses, tape.outstanding).hex()
        if root != tape.root or root != onchain[n][0]:
            bad.append(f"{path.stem} (root)")
        if sum(tape.outstanding) != onchain[n][1]:
            bad.append(f"{path.stem} (balance)")
    return Check("periods: each loan-level tape matches its period's on-chain root and pool balance", not bad,
                 {"tapes": len(paths), "periods on chain": len(periods), "inconsistent": _first(bad)})


# -- the chain half ----------------------------------------------------------------------------

def verify_deal(handle: deals.DealHandle, files: PoolFiles, *, events: DealEvents | None = None) -> list[Check]:
    """Every check that needs only the chain and the deal's published files."""
    ev = events or read_deal_events(handle, files)
    params, terms = check_parameters(handle, ev, published_terms(files))
    books = replay_tokens(ev)
    periods = chain_periods(ev)
    return [params, check_units(handle, ev, books), check_registry(handle, ev),
            *check_waterfall(handle, ev, terms, periods), *check_cash(handle, ev, periods, books),
            check_claims(handle, ev, books), check_loans(handle, files, ev), check_period_tapes(files, periods)]


# -- the index ---------------------------------------------------------------------------------

def _digest(rows: Iterable[tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: (r[2], r[1])):
        h.update(json.dumps(row, separators=(",", ":")).encode())
    return h.hexdigest()[:16]


def _index_row(row: Sequence[Any]) -> tuple[Any, ...]:
    tx_hash, log_index, block_number, event, args_json = row
    return (tx_hash, log_index, block_number, event,
            json.dumps(json.loads(args_json), sort_keys=True, separators=(",", ":")))


def check_index(ctx: Context, ev: DealEvents) -> Check:
    """The data dir's index, opened read-only, against the events read from the chain."""
    name = "index: the SQLite index equals the chain's events (count and content hash per contract)"
    path = DataDir(ctx.data_dir).index_path
    if not path.exists():
        return Check(name, None, {"index": f"no {path.name} in the data dir"})
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        synced = dict(conn.execute("SELECT address, synced_to FROM contracts").fetchall())
    except sqlite3.Error as exc:
        return Check(name, False, {"index": f"unreadable: {exc}"})
    problems: list[str] = []
    per_contract = {}
    try:
        discovered = contracts_for(ctx)
        ours = {ev.deal: "Deal", ev.pool: "LoanPool", ev.registry: "InvestorRegistry",
                ev.exchange: "TrancheExchange", **{t: "TrancheToken" for t in ev.tokens}}
        problems += [f"the indexer does not discover {a} ({n})" for a, n in ours.items() if discovered.get(a) != n]
        for address, artifact in ours.items():
            if address not in synced:
                problems.append(f"{artifact} {address} is not in the index")
                continue
            upto = int(synced[address])
            chain_rows = [e.canonical() for e in ev.events if e.address == address and e.block_number <= upto]
            index_rows = [_index_row(r) for r in conn.execute(
                "SELECT tx_hash, log_index, block_number, event, args_json FROM events "
                "WHERE address = ? AND block_number <= ?", (address, upto))]
            a, b = _digest(chain_rows), _digest(index_rows)
            per_contract[f"{artifact} {address[:10]}"] = {"events": len(index_rows), "hash": b}
            if (len(chain_rows), a) != (len(index_rows), b):
                problems.append(f"{artifact} {address}: chain {len(chain_rows)} events ({a}), "
                                f"index {len(index_rows)} ({b})")
        for k, token in enumerate(ev.tokens):
            if token not in synced:
                continue
            rebuilt = {h: u for h, u in replay_tokens(ev, upto=int(synced[token]))[k].balances.items() if u}
            stored = {h: int(a) for h, a in conn.execute("SELECT holder, amount FROM balances WHERE token = ?",
                                                          (token,))}
            if stored != rebuilt:
                wrong = sorted(set(stored) ^ set(rebuilt) | {h for h in stored if stored[h] != rebuilt.get(h)})
                problems.append(f"tranche {k}: index balances differ for {_first(wrong)}")
        if ev.settlement in synced:
            upto = int(synced[ev.settlement])
            chain_moves = [(e.tx_hash, e.log_index, e.block_number, e.args["from"], e.args["to"],
                            str(e.args["value"])) for e in ev.cash_moves if e.block_number <= upto]
            index_moves = [tuple(r) for r in conn.execute(
                "SELECT tx_hash, log_index, block_number, from_addr, to_addr, amount FROM transfers "
                "WHERE token = ? AND (from_addr = ? OR to_addr = ?) AND block_number <= ?",
                (ev.settlement, ev.deal, ev.deal, upto))]
            if _digest(chain_moves) != _digest(index_moves):
                problems.append(f"settlement transfers of the deal: chain {len(chain_moves)}, "
                                f"index {len(index_moves)}")
        head = conn.execute("SELECT block_number FROM cursor WHERE name = 'head'").fetchone()
        ours_hashes = {e.block_number: e.block_hash for e in ev.events}
        stale = sorted(n for n, h in conn.execute("SELECT number, hash FROM blocks") if ours_hashes.get(n, h) != h)
    except sqlite3.Error as exc:
        return Check(name, False, {"index": f"unreadable: {exc}"})
    finally:
        conn.close()
    # A stored block hash the chain no longer has is a reorg the index has not caught up with
    # (the embedded chain re-creates identical blocks from its journal, so a restart is not one).
    if stale:
        problems.append(f"index block hashes differ from the chain's at blocks {_first(stale)}")
    figures: dict[str, Any] = {"indexed head": head[0] if head else None, "chain head": ev.head,
                               "contracts": per_contract, "block hashes differing": len(stale)}
    return Check(name, not problems, {**figures, "differences": _first(problems)})


# -- the API -----------------------------------------------------------------------------------

def _copy_index(ctx: Context, folder: Path) -> Path | None:
    """A private copy of the data dir's index (the audit never writes to the operator's)."""
    path = DataDir(ctx.data_dir).index_path
    if not path.exists():
        return None
    target = folder / path.name
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _find_period(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        if "interest_collected" in body:
            return body
        for value in body.values():
            if isinstance(value, dict) and "interest_collected" in value:
                return {**value, **({"tranches": body["tranches"]} if "tranches" in body else {})}
    return None


TRANCHE_KEYS = {"face": "face", "coupon_bps": "coupon_bps", "balance": "balance", "unpaid_interest": "unpaid",
                "units": "supply", "supply": "supply", "total_supply": "supply", "issued": "supply",
                "paid": "paid", "paid_total": "paid", "cash_paid": "paid", "claimed": "claimed",
                "claimed_total": "claimed", "credit_enhancement_units": "enhancement"}


def check_api(ctx: Context, handle: deals.DealHandle, files: PoolFiles, ev: DealEvents,
              terms: DealParams) -> Check:
    """The audit API, built in-process over a copy of the index (or a fresh one when the data
    dir has none), against the chain's figures at the index's head."""
    import warnings

    with warnings.catch_warnings():  # starlette's note about its test client's HTTP library
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from chainabs.api import Settings, create_app
    from chainabs.indexer import Indexer
    from chainabs.store import Store

    name = "api: the audit API's figures equal the chain's"
    problems: list[str] = []
    compared: dict[str, int] = {}
    not_checked: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chainabs-audit-") as tmp:
        copied = _copy_index(ctx, Path(tmp))
        store = Store(copied or Path(tmp) / INDEX_FILE, chain_id=ctx.chain.chain_id)
        try:
            if copied is None:
                contracts = {a: n for a, n in ev.artifacts().items() if a != ev.loan_token}
                Indexer(ctx.chain, store, contracts, start_block=ev.start).sync()
            head = store.cursor()
            if head is None:
                return Check(name, None, {"index": "empty"})
            head = min(head, ev.head)
            books = replay_tokens(ev, upto=head)
            final_books = replay_tokens(ev)
            app = create_app(Settings(data_dir=ctx.data_dir), ctx, store=store)
            with TestClient(app) as client:
                holders = sorted({h for b in books for h, u in b.balances.items() if u}
                                 | {h for b in final_books for h in b.balances})
                for holder in holders:
                    reply = client.get(f"/investors/{holder}/holdings")
                    if reply.status_code != 200:
                        problems.append(f"holdings of {holder}: HTTP {reply.status_code}")
                        continue
                    items = {str(i["token"]).lower(): i for i in reply.json()["holdings"]}
                    for k, token in enumerate(ev.tokens):
                        item = items.get(token, {})
                        if _as_int(item.get("amount", 0)) != books[k].balances.get(holder, 0):
                            problems.append(f"holdings of {holder}, tranche {k}: API {item.get('amount', 0)}, "
                                            f"chain {books[k].balances.get(holder, 0)}")
                        compared["holdings"] = compared.get("holdings", 0) + 1
                        if "claimable" in item:
                            compared["claimable"] = compared.get("claimable", 0) + 1
                            if _as_int(item["claimable"]) != final_books[k].claimable(holder):
                                problems.append(f"claimable of {holder}, tranche {k}: API {item['claimable']}")
                pool_key = files.dir.slug
                reply = client.get(f"/pools/{pool_key}")
                if reply.status_code == 200:
                    body = reply.json()
                    event_root, _ = _pool_root(handle, ev)
                    compared["pool"] = 1
                    if body.get("root_on_chain") != event_root or body.get("loan_count") != len(_committed(ev)):
                        problems.append(f"/pools/{pool_key}: root {body.get('root_on_chain')}, "
                                        f"{body.get('loan_count')} loans")
                else:
                    problems.append(f"/pools/{pool_key}: HTTP {reply.status_code}")
                _api_periods(client, pool_key, ev, head, problems, compared, not_checked)
                _api_tranches(client, pool_key, ev, terms, books, head, problems, compared, not_checked)
        finally:
            store.close()
    return Check(name, not problems, {"index": "the data dir's (a copy)" if copied else "built for this audit",
                                      "as of block": head, "compared": compared, "not checked": not_checked,
                                      "differences": _first(problems)})


def _route_missing(reply: Any) -> bool:
    return reply.status_code == 404 and reply.json().get("error") == "Not Found"


def _api_periods(client: Any, pool_key: str, ev: DealEvents, head: int, problems: list[str],
                 compared: dict[str, int], not_checked: list[str]) -> None:
    for e, onchain in chain_periods(ev):
        if e.block_number > head:
            break
        reply = client.get(f"/pools/{pool_key}/periods/{onchain.period}")
        if _route_missing(reply):
            not_checked.append("/pools/{pool}/periods/{n} (no such route)")
            return
        body = _find_period(reply.json()) if reply.status_code == 200 else None
        if body is None:
            problems.append(f"period {onchain.period}: HTTP {reply.status_code}, no period figures")
            continue
        expected = {**onchain.as_dict(), "loan_root": str(e.args["figures"]["loan_root"]),
                    "loan_count": int(e.args["figures"]["loan_count"])}
        for key, value in expected.items():
            if key == "tranches" or key not in body:
                continue
            compared["period fields"] = compared.get("period fields", 0) + 1
            shown = body[key] if isinstance(value, str) else bool(body[key]) if isinstance(value, bool) \
                else _as_int(body[key])
            if shown != value:
                problems.append(f"period {onchain.period} {key}: API {body[key]}, chain {value}")
        for k, tranche in enumerate(body.get("tranches") or []):
            if not isinstance(tranche, dict) or k >= len(expected["tranches"]):
                continue
            for key, value in expected["tranches"][k].items():
                if key in tranche:
                    compared["period fields"] = compared.get("period fields", 0) + 1
                    if _as_int(tranche[key]) != value:
                        problems.append(f"period {onchain.period} tranches[{k}].{key}: API {tranche[key]}, "
                                        f"chain {value}")


def _api_tranches(client: Any, pool_key: str, ev: DealEvents, terms: DealParams, books: list[TokenBook],
                  head: int, problems: list[str], compared: dict[str, int], not_checked: list[str]) -> None:
    reply = client.get(f"/pools/{pool_key}/tranches")
    if _route_missing(reply):
        not_checked.append("/pools/{pool}/tranches (no such route)")
        return
    if reply.status_code != 200:
        problems.append(f"/pools/{pool_key}/tranches: HTTP {reply.status_code}")
        return
    body = reply.json()
    items = body.get("tranches", body.get("items")) if isinstance(body, dict) else body
    if not isinstance(items, list) or len(items) != len(ev.tokens):
        problems.append(f"/pools/{pool_key}/tranches: {len(items) if isinstance(items, list) else 'no'} "
                        f"tranches, the deal has {len(ev.tokens)}")
        return
    last = [r for e, r in chain_periods(ev) if e.block_number <= head]
    for k, item in enumerate(items):
        spec = terms.tranches[k]
        balance = last[-1].tranches[k].balance_end if last else spec.face
        unpaid = last[-1].tranches[k].interest_unpaid if last else 0
        seniors = sum(r.balance_end for r in last[-1].tranches[:k + 1]) if last else \
            sum(t.face for t in terms.tranches[:k + 1])
        pool_balance, reserve = (last[-1].pool_balance_end, last[-1].reserve_end) if last else \
            (terms.initial_balance, terms.initial_reserve)
        expected = {"face": spec.face, "coupon_bps": spec.coupon_bps, "balance": balance, "unpaid": unpaid,
                    "supply": books[k].supply, "paid": books[k].paid, "claimed": books[k].claimed,
                    "enhancement": pool_balance + reserve - seniors}
        for key, what in TRANCHE_KEYS.items():
            if isinstance(item, dict) and key in item and _as_int(item[key]) is not None:
                compared["tranche fields"] = compared.get("tranche fields", 0) + 1
                if _as_int(item[key]) != expected[what]:
                    problems.append(f"tranche {k} {key}: API {item[key]}, chain {expected[what]}")
        if isinstance(item, dict) and "address" in item and str(item["address"]).lower() != ev.tokens[k]:
            problems.append(f"tranche {k} address: API {item['address']}")


# -- the loan tape -----------------------------------------------------------------------------

def read_salt(path: str | Path) -> bytes:
    """A pool salt file: 64 hex digits (32 bytes). The salt is never shown."""
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise ChainabsError(f"cannot read the salt file {path}: {exc.strerror or exc}") from None
    try:
        salt = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        salt = b""
    if len(salt) != 32:
        raise ChainabsError(f"{path} does not hold a pool salt (64 hex digits)")
    return salt


def check_tape(handle: deals.DealHandle, files: PoolFiles, ev: DealEvents, tape_path: str | Path,
               salt: bytes) -> Check:
    """Recompute every committed loan's hash from the tape and salt, and the pool's root."""
    from chainabs.tape import read_tape

    tape = read_tape(tape_path, decimals=files.record.decimals)
    by_id = {merkle.token_id(loan.loan_id): (loan, h) for loan, (h, _) in
             zip(tape.loans, merkle.commitments(tape.loans, salt), strict=True)}
    committed = _committed(ev)
    missing = [tid for tid, _ in committed if tid not in by_id]
    differ = [by_id[tid][0].loan_id for tid, h in committed if tid in by_id and by_id[tid][1] != h]
    leaves = [merkle.leaf_from_loan_hash(by_id[tid][1]) for tid, _ in committed if tid in by_id]
    root = "0x" + merkle.MerkleTree.from_leaves(leaves).root.hex() if leaves else None
    event_root, onchain_root = _pool_root(handle, ev)
    tc = ev.named("TapeCommitted", ev.pool)
    loans = [by_id[tid][0] for tid, _ in committed if tid in by_id]
    totals = (len(committed), sum(x.outstanding_units for x in loans), sum(x.principal_units for x in loans))
    expected = ((int(tc[-1].args["loanCount"]), int(tc[-1].args["outstandingUnits"]),
                 int(tc[-1].args["principalUnits"])) if tc else None)
    ok = not missing and not differ and root == event_root == onchain_root and totals == expected
    return Check("tape: the tape and salt recompute every loan commitment and the pool's root", ok,
                 {"tape loans": len(tape.loans), "committed on chain": len(committed),
                  "not in the tape": len(missing), "hash differs": len(differ), "first differing": _first(differ),
                  "root": root, "TapeCommitted root": event_root, "loanRoot()": onchain_root,
                  "count, outstanding, principal": list(totals), "on chain": list(expected) if expected else None})


# -- everything --------------------------------------------------------------------------------

@dataclass
class AuditReport:
    checks: list[Check]
    head: int
    events: int
    seconds: float

    @property
    def ok(self) -> bool:
        return passed(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"verify": "PASS" if self.ok else "FAIL", "head": self.head, "events": self.events,
                "seconds": round(self.seconds, 2), "checks": [c.as_dict() for c in self.checks]}


def audit(ctx: Context, pool: str | None = None, *, tape: str | Path | None = None,
          salt_file: str | Path | None = None, api: bool = True) -> AuditReport:
    """Every check of a data dir's deal: the chain's, the index's, the API's and (given the
    tape and the salt) the loan commitments'."""
    if (tape is None) != (salt_file is None):
        raise ChainabsError("--tape and --salt-file go together: the commitments need both")
    salt = read_salt(salt_file) if salt_file is not None else None
    started = time.perf_counter()
    handle, files = open_deal(ctx, pool)
    ev = read_deal_events(handle, files)
    checks = verify_deal(handle, files, events=ev)
    terms = published_terms(files) or handle.params
    checks.append(check_index(ctx, ev))
    if api:
        checks.append(check_api(ctx, handle, files, ev, terms))
    if tape is not None and salt is not None:
        checks.append(check_tape(handle, files, ev, tape, salt))
    events = len(ev.events) + len(ev.cash_moves) + len(ev.commitments)
    return AuditReport(checks=checks, head=ev.head, events=events, seconds=time.perf_counter() - started)
