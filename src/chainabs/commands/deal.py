"""The deal's life from the command line: deal create, investors, subscribe, close, transfer,
trade, fund, simulate, report, period show, claim."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from chainabs import deal as deals
from chainabs.commands import args as argtypes
from chainabs.context import Context, open_context
from chainabs.dealfile import load_deal_file
from chainabs.errors import ChainabsError, ContractRevert
from chainabs.operations import (
    FAR_FUTURE, create_deal, fund, loan_level_tape, open_deal, post_period, simulate, tranche_index,
)
from chainabs.tape import format_day, read_tape
from chainabs.waterfall import PeriodReport

_count = argtypes.whole(1, 100_000)
_lag = argtypes.whole(0, 1200, "must be from 0 to 1200 months")
_jurisdiction = argtypes.whole(1, 999, "must be an ISO 3166-1 numeric country code (1 to 999)")


# -- checks before a command that pays: the reason in a sentence, before any transaction is sent ----

def _cash(handle: deals.DealHandle, who: str) -> int:
    return int(handle.chain.call(handle.settlement.functions.balanceOf(who)))


def _need_phase(handle: deals.DealHandle, wanted: str, doing: str) -> None:
    now = deals.phase(handle)
    if now != wanted:
        raise ChainabsError(f"cannot {doing}: the deal's offering is {now}, it must be {wanted}")


def _need_cash(handle: deals.DealHandle, who: str, amount: int, doing: str) -> None:
    cash = _cash(handle, who)
    if cash < amount:
        raise ChainabsError(f"cannot {doing}: {who} holds {cash} settlement units, {amount} are needed")


def _check_subscribe(handle: deals.DealHandle, investor: str, k: int, units: int) -> None:
    try:  # phase, tranche and unsold units are checked before payment: the call shows them
        handle.chain.call(handle.deal.functions.subscribe(k, units))
    except ContractRevert as exc:
        if not exc.name.startswith("ERC20Insufficient"):
            raise
    if not deals.is_eligible(handle, investor=investor):
        raise ChainabsError(f"cannot subscribe: {investor} is not an eligible investor (`chainabs investors add` it)")
    _need_cash(handle, investor, units, "subscribe")


def _check_trade(handle: deals.DealHandle, seller: str, buyer: str, k: int, units: int, price: int) -> None:
    code = deals.restriction(handle, tranche=k, sender=seller, to=buyer, units=units)
    if code:
        message = handle.chain.call(handle.token(k).functions.messageForTransferRestriction(code))
        raise ChainabsError(f"cannot trade: the transfer is restricted (code {code}, {message})")
    held = int(handle.chain.call(handle.token(k).functions.balanceOf(seller)))
    if held < units:
        raise ChainabsError(f"cannot trade: the seller {seller} holds {held} units of tranche {k}, not {units}")
    _need_cash(handle, buyer, price, "trade")


def _tranche(handle: deals.DealHandle, text: str) -> int:
    names = ", ".join(t.symbol for t in handle.params.tranches)
    if text.isdigit() and int(text) >= len(handle.params.tranches):
        raise ChainabsError(f"no tranche {text}: the deal's tranches are 0 to {len(handle.params.tranches) - 1} "
                            f"({names})")
    return tranche_index(handle, text)


def _ctx(args: argparse.Namespace) -> Context:
    return open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment, create=False)


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, default=str) if args.json else text)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deal", help="issue a deal's tranches over a tokenised pool")
    ds = p.add_subparsers(dest="deal_command", metavar="ACTION", required=True)
    c = ds.add_parser("create", help="deploy the deal's contracts and open the offering")
    c.add_argument("--deal", required=True, metavar="DEAL.toml")
    c.set_defaults(func=run_deal_create)

    inv = sub.add_parser("investors", help="manage the investor registry")
    isub = inv.add_subparsers(dest="investors_command", metavar="ACTION", required=True)
    add = isub.add_parser("add", help="make addresses eligible")
    add.add_argument("addresses", nargs="+", type=argtypes.address)
    add.add_argument("--until", type=argtypes.day, default=None, help="eligible until YYYY-MM-DD (default: far future)")
    add.add_argument("--jurisdiction", type=_jurisdiction, default=840, help="ISO 3166-1 numeric code")
    add.set_defaults(func=run_investors_add)
    frz = isub.add_parser("freeze", help="freeze (or --unfreeze) addresses")
    frz.add_argument("addresses", nargs="+", type=argtypes.address)
    frz.add_argument("--unfreeze", action="store_true")
    frz.set_defaults(func=run_investors_freeze)

    f = sub.add_parser("fund", help="mint dev settlement tokens to an address (dev chains only)")
    f.add_argument("address", type=argtypes.address)
    f.add_argument("amount", type=argtypes.amount, help="base units")
    f.set_defaults(func=run_fund)

    s = sub.add_parser("subscribe", help="buy tranche units at par, delivery versus payment")
    s.add_argument("--investor", required=True, type=argtypes.address)
    s.add_argument("--tranche", required=True, help="index (0 = senior) or symbol")
    s.add_argument("--units", required=True, type=argtypes.units)
    s.set_defaults(func=run_subscribe)

    cl = sub.add_parser("close", help="close the offering: unsold units to the originator, reserve funded")
    cl.set_defaults(func=run_close)

    t = sub.add_parser("transfer", help="transfer tranche units between eligible investors")
    t.add_argument("--from", dest="sender", required=True, type=argtypes.address)
    t.add_argument("--to", required=True, type=argtypes.address)
    t.add_argument("--tranche", required=True)
    t.add_argument("--units", required=True, type=argtypes.units)
    t.set_defaults(func=run_transfer)

    tr = sub.add_parser("trade", help="atomic trade: the seller's signed order filled by the buyer")
    tr.add_argument("--seller", required=True, type=argtypes.address)
    tr.add_argument("--buyer", required=True, type=argtypes.address)
    tr.add_argument("--tranche", required=True)
    tr.add_argument("--units", required=True, type=argtypes.units)
    tr.add_argument("--price", required=True, type=argtypes.amount, help="settlement base units for all the units")
    tr.set_defaults(func=run_trade)

    sim = sub.add_parser("simulate", help="simulate loan performance and post each period's report")
    sim.add_argument("--periods", type=_count, default=12)
    sim.add_argument("--cdr", type=argtypes.fraction, default=0.04)
    sim.add_argument("--cpr", type=argtypes.fraction, default=0.10)
    sim.add_argument("--recovery", type=argtypes.fraction, default=0.35)
    sim.add_argument("--lag", type=_lag, default=3)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--cutoff", type=argtypes.day, default=None,
                     help="the pool's cut-off date, where the loans' schedule starts (default: the deal file's)")
    sim.set_defaults(func=run_simulate)

    rep = sub.add_parser("report", help="post a servicer's own period report (base units)")
    for name in ("interest", "principal", "recoveries", "defaults"):
        rep.add_argument(f"--{name}", type=argtypes.amount, required=True)
    rep.add_argument("--loan-tape", default=None, help="this period's loan-level tape (TAPE.md format)")
    rep.set_defaults(func=run_report)

    per = sub.add_parser("period", help="show a period")
    psub = per.add_subparsers(dest="period_command", metavar="ACTION", required=True)
    show = psub.add_parser("show")
    show.add_argument("n", type=int)
    show.set_defaults(func=run_period_show)

    clm = sub.add_parser("claim", help="claim everything owed to a holder across tranches")
    clm.add_argument("--holder", required=True, type=argtypes.address)
    clm.set_defaults(func=run_claim)


def run_deal_create(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    handle = create_deal(ctx, dealfile=load_deal_file(args.deal))
    faces = {t.symbol: t.face for t in handle.params.tranches}
    _print(args, {"contracts": handle.addresses, "faces": faces},
           "deal deployed, offering open:\n" + "\n".join(f"  {k:<24} {v}" for k, v in handle.addresses.items()))
    return 0


def run_investors_add(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    handle, _ = open_deal(ctx)
    until = FAR_FUTURE if args.until is None else args.until * 86_400
    if until <= int(ctx.chain.w3.eth.get_block("latest")["timestamp"]):
        raise ChainabsError(f"--until {format_day(args.until)} is not after the chain's current time")
    deals.add_investors(handle, investors=args.addresses, eligible_until=until, jurisdiction=args.jurisdiction)
    _print(args, {"added": args.addresses, "eligible_until": until}, f"{len(args.addresses)} investors eligible")
    return 0


def run_investors_freeze(args: argparse.Namespace) -> int:
    handle, _ = open_deal(_ctx(args))
    deals.freeze(handle, investors=args.addresses, frozen=not args.unfreeze)
    state = "unfrozen" if args.unfreeze else "frozen"
    _print(args, {state: args.addresses}, f"{len(args.addresses)} investors {state}")
    return 0


def run_fund(args: argparse.Namespace) -> int:
    fund(_ctx(args), to=args.address, amount=args.amount)
    _print(args, {"funded": args.address, "amount": args.amount}, f"minted {args.amount} to {args.address}")
    return 0


def run_subscribe(args: argparse.Namespace) -> int:
    handle, _ = open_deal(_ctx(args))
    k = _tranche(handle, args.tranche)
    _check_subscribe(handle, args.investor, k, args.units)
    deals.subscribe(handle, investor=args.investor, tranche=k, units=args.units)
    _print(args, {"investor": args.investor, "tranche": k, "units": args.units},
           f"{args.investor} bought {args.units} units of {handle.params.tranches[k].symbol}")
    return 0


def run_close(args: argparse.Namespace) -> int:
    handle, _ = open_deal(_ctx(args))
    _need_phase(handle, "open", "close the offering")
    _need_cash(handle, handle.roles.originator, handle.params.initial_reserve, "close the offering (the initial reserve)")
    deals.close(handle)
    _print(args, {"closed": True}, "offering closed")
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    handle, _ = open_deal(_ctx(args))
    k = _tranche(handle, args.tranche)
    deals.transfer(handle, tranche=k, sender=args.sender, to=args.to, units=args.units)
    _print(args, {"tranche": k, "from": args.sender, "to": args.to, "units": args.units}, "transferred")
    return 0


def run_trade(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    handle, _ = open_deal(ctx)
    k = _tranche(handle, args.tranche)
    _check_trade(handle, args.seller, args.buyer, k, args.units, args.price)
    deadline = int(ctx.chain.w3.eth.get_block("latest")["timestamp"]) + 3_600
    order = deals.sign_order(handle, seller=args.seller, tranche=k, units=args.units, price=args.price,
                             deadline=deadline, buyer=args.buyer)
    deals.fill_order(handle, order=order, buyer=args.buyer)
    _print(args, {"tranche": k, "seller": args.seller, "buyer": args.buyer, "units": args.units, "price": args.price},
           f"traded {args.units} units of {handle.params.tranches[k].symbol} for {args.price}")
    return 0


def _period_dict(result: Any) -> dict[str, Any]:
    return result.as_dict()


def run_simulate(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    handle, files = open_deal(ctx)
    rows = []

    def progress(done: Any, seconds: float) -> None:
        r = done.result
        rows.append({"period": r.period, "pool_balance_end": r.pool_balance_end, "seconds": round(seconds, 2),
                     "matches_model": done.matches_model})
        if not args.json:
            print(f"period {r.period:>3}: I {r.interest_collected:>14} P {r.principal_collected:>15} "
                  f"D {r.defaulted_principal:>13} R {r.recoveries:>12} balance {r.pool_balance_end:>16} "
                  f"trigger {'BREACHED' if r.trigger_breached else 'ok'} model {'=' if done.matches_model else '!='}")

    _need_phase(handle, "closed", "simulate periods")
    started = time.perf_counter()
    simulate(ctx, handle, files, periods=args.periods, cdr=args.cdr, cpr=args.cpr, recovery=args.recovery,
             lag=args.lag, seed=args.seed, cutoff_day=args.cutoff, progress=progress)
    if args.json:
        print(json.dumps({"periods": rows, "seconds": round(time.perf_counter() - started, 2)}))
    return 0


def run_report(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    handle, files = open_deal(ctx)
    report = PeriodReport(args.interest, args.principal, args.recoveries, args.defaults)
    if args.loan_tape:
        tape = read_tape(args.loan_tape, decimals=files.record.decimals)
        root, tape_data = loan_level_tape(files, tape.loans, source=Path(args.loan_tape).name)
    else:
        root, tape_data = bytes(32), None
    _need_phase(handle, "closed", "post a period report")
    _need_cash(handle, handle.roles.servicer, report.interest + report.principal + report.recoveries,
               "post the report (its collections)")
    done = post_period(ctx, handle, files, report, loan_root=root, loan_count=len(files.rows), tape=tape_data)
    _print(args, _period_dict(done.result), f"period {done.result.period} posted; model {'agrees' if done.matches_model else 'DISAGREES'}")
    return 0 if done.matches_model else 1


def run_period_show(args: argparse.Namespace) -> int:
    handle, _ = open_deal(_ctx(args))
    state = deals.read_state(handle)
    if not 1 <= args.n <= state.period:
        raise ChainabsError(f"no period {args.n}: {state.period} periods have run")
    data = _period_dict(deals.read_period(handle, n=args.n))
    if args.json:
        print(json.dumps(data))
        return 0
    for key, value in data.items():
        if key != "tranches":
            print(f"{key:<22} {value}")
    for spec, t in zip(handle.params.tranches, data["tranches"], strict=True):
        print(f"tranche {spec.symbol}: " + ", ".join(f"{k} {v}" for k, v in t.items()))
    return 0


def run_claim(args: argparse.Namespace) -> int:
    handle, _ = open_deal(_ctx(args))
    paid = deals.claim(handle, holder=args.holder)
    _print(args, {"holder": args.holder, "claimed": paid}, f"{args.holder} claimed {paid}")
    return 0
