"""The periods checks: the waterfall replayed through the reference model, and the cash.

- waterfall: every PeriodReported, replayed through chainabs.waterfall from the published
  terms, equal field by field; the model's carried state equals the contract's.
- cash: settlement flows into and out of the deal equal the reserve, collections and stray
  transfers in, fees, claims and sweeps out; the deal's balance equals reserve + paid not yet
  claimed (dust included) + strays not yet swept; every period conserves cash.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from chainabs import deal as deals
from chainabs.audit.events import ChainEvent, DealEvents
from chainabs.audit.report import Check, first
from chainabs.audit.tokens import TokenBook
from chainabs.errors import WaterfallError
from chainabs.waterfall import (
    DealParams,
    DealState,
    PeriodReport,
    PeriodResult,
    TrancheResult,
    check_conservation,
    run_period,
)


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
                    "differences": len(differences), "first": first(differences)})
    final = deals.read_state(handle)  # the latest block: the logs were read up to it moments ago
    carried = Check("waterfall: the model's carried state equals the contract's", state == final,
                    {"period": final.period, "tranche balances": final.tranche_balances,
                     "model tranche balances": state.tranche_balances, "unpaid interest": final.unpaid_interest,
                     "reserve": final.reserve, "model reserve": state.reserve, "pool balance": final.pool_balance})
    return [replay, carried]


# -- cash and claims ---------------------------------------------------------------------------

def check_cash(handle: deals.DealHandle, ev: DealEvents, periods: list[tuple[ChainEvent, PeriodResult]],
               books: list[TokenBook]) -> list[Check]:
    """Settlement cash into and out of the deal, transaction by transaction. The closing's
    transaction brings the initial reserve, each report's its collections; anything else that
    arrives (in any transaction, beyond those amounts) is a stray: anyone can send the deal
    tokens, and the admin's sweep is what takes them out again, with each tranche's released
    carry. So: strays + released carry - swept >= 0 is what the deal still holds of them, and
    the balance is reserve + credited and not claimed or released + that."""
    closed = ev.named("OfferingClosed", ev.deal)
    reserve_funded = int(closed[0].args["reserveFunded"]) if closed else 0
    expected: dict[str, int] = {}  # transaction -> settlement units the deal must receive in it
    for e in closed:
        expected[e.tx_hash] = expected.get(e.tx_hash, 0) + int(e.args["reserveFunded"])
    for e, r in periods:
        expected[e.tx_hash] = expected.get(e.tx_hash, 0) + r.interest_collected + r.principal_collected + r.recoveries
    received: dict[str, int] = dict.fromkeys(expected, 0)
    for e in ev.cash_moves:
        if e.args["to"] == ev.deal and e.args["from"] != ev.deal:
            received[e.tx_hash] = received.get(e.tx_hash, 0) + int(e.args["value"])
    short = [f"{tx}: received {received[tx]}, due {due}" for tx, due in expected.items() if received[tx] < due]
    strays = sum(max(0, got - expected.get(tx, 0)) for tx, got in received.items())
    moved_in = sum(received.values())
    moved_out = sum(int(e.args["value"]) for e in ev.cash_moves
                    if e.args["from"] == ev.deal and e.args["to"] != ev.deal)
    collected = sum(r.interest_collected + r.principal_collected + r.recoveries for _, r in periods)
    fees = sum(r.fee_paid for _, r in periods)
    claimed = sum(b.claimed for b in books)
    released = sum(b.released for b in books)
    swept = sum(int(e.args["amount"]) for e in ev.named("Swept", ev.deal))
    unswept = strays + released - swept
    flows = Check("cash: settlement flows into and out of the deal equal reserve + collections (+ strays) and "
                  "fees + claims + sweeps; sweeps take no more than strays and released carry",
                  not short and moved_in == reserve_funded + collected + strays
                  and moved_out == fees + claimed + swept and unswept >= 0,
                  {"in": moved_in, "reserve funded": reserve_funded, "collections": collected, "strays": strays,
                   "short receipts": first(short), "out": moved_out, "fees": fees, "claims": claimed,
                   "swept": swept, "released carry": released})

    reserve = periods[-1][1].reserve_end if periods else reserve_funded
    unclaimed = sum(b.paid - b.claimed - b.released for b in books)
    balance = int(handle.chain.call(handle.settlement.functions.balanceOf(handle.deal.address), block=ev.head))
    dust = handle.chain.call(handle.deal.functions.cashLedger(), block=ev.head)[3]
    held = Check("cash: deal balance (from events and on chain) = reserve + paid not yet claimed or released "
                 "(dust included) + strays and released carry not swept",
                 moved_in - moved_out == balance == reserve + unclaimed + unswept,
                 {"from events": moved_in - moved_out, "on chain": balance, "reserve": reserve,
                  "unclaimed": unclaimed, "dust": sum(dust), "strays not swept": unswept})

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
                      {"periods": len(periods), "broken": first(broken), "cash_paid": paid_by_period,
                       "Distributed": distributed})
    return [flows, held, conserved]
