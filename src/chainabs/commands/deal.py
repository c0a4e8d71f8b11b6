"""The deal's life from the command line: deal create, investors, subscribe, close, transfer,
trade, fund, simulate, report, period show, claim."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from chainabs import service
from chainabs.commands import args as argtypes
from chainabs.context import Context, open_context
from chainabs.dealfile import load_deal_file
from chainabs.waterfall import PeriodReport

_count = argtypes.whole(1, 100_000)
_lag = argtypes.whole(0, 1200, "must be from 0 to 1200 months")
_jurisdiction = argtypes.whole(1, 999, "must be an ISO 3166-1 numeric country code (1 to 999)")


def _ctx(args: argparse.Namespace) -> Context:
    return open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment, create=False)


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, default=str) if args.json else text)


def register(sub: argparse._SubParsersAction) -> None:
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
    handle = service.create_deal(_ctx(args), dealfile=load_deal_file(args.deal))
    faces = {t.symbol: t.face for t in handle.params.tranches}
    _print(args, {"contracts": handle.addresses, "faces": faces},
           "deal deployed, offering open:\n" + "\n".join(f"  {k:<24} {v}" for k, v in handle.addresses.items()))
    return 0


def run_investors_add(args: argparse.Namespace) -> int:
    done = service.add_investors(_ctx(args), investors=args.addresses, until_day=args.until,
                                 jurisdiction=args.jurisdiction, until_label="--until")
    _print(args, {"added": args.addresses, "eligible_until": done.eligible_until},
           f"{len(args.addresses)} investors eligible")
    return 0


def run_investors_freeze(args: argparse.Namespace) -> int:
    service.freeze_investors(_ctx(args), investors=args.addresses, frozen=not args.unfreeze)
    state = "unfrozen" if args.unfreeze else "frozen"
    _print(args, {state: args.addresses}, f"{len(args.addresses)} investors {state}")
    return 0


def run_fund(args: argparse.Namespace) -> int:
    service.fund(_ctx(args), to=args.address, amount=args.amount)
    _print(args, {"funded": args.address, "amount": args.amount}, f"minted {args.amount} to {args.address}")
    return 0


def run_subscribe(args: argparse.Namespace) -> int:
    done = service.subscribe(_ctx(args), investor=args.investor, tranche=args.tranche, units=args.units)
    _print(args, {"investor": args.investor, "tranche": done.tranche, "units": args.units},
           f"{args.investor} bought {args.units} units of {done.symbol}")
    return 0


def run_close(args: argparse.Namespace) -> int:
    service.close_offering(_ctx(args))
    _print(args, {"closed": True}, "offering closed")
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    done = service.transfer(_ctx(args), sender=args.sender, to=args.to, tranche=args.tranche, units=args.units)
    _print(args, {"tranche": done.tranche, "from": args.sender, "to": args.to, "units": args.units}, "transferred")
    return 0


def run_trade(args: argparse.Namespace) -> int:
    done = service.trade(_ctx(args), seller=args.seller, buyer=args.buyer, tranche=args.tranche, units=args.units,
                         price=args.price)
    _print(args, {"tranche": done.tranche, "seller": args.seller, "buyer": args.buyer, "units": args.units,
                  "price": args.price},
           f"traded {args.units} units of {done.symbol} for {args.price}")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    rows = []

    def progress(done: service.PostedPeriod, seconds: float) -> None:
        r = done.result
        rows.append({"period": r.period, "pool_balance_end": r.pool_balance_end, "seconds": round(seconds, 2),
                     "matches_model": done.matches_model})
        if not args.json:
            print(f"period {r.period:>3}: I {r.interest_collected:>14} P {r.principal_collected:>15} "
                  f"D {r.defaulted_principal:>13} R {r.recoveries:>12} balance {r.pool_balance_end:>16} "
                  f"trigger {'BREACHED' if r.trigger_breached else 'ok'} model {'=' if done.matches_model else '!='}")

    started = time.perf_counter()
    service.simulate(_ctx(args), periods=args.periods, cdr=args.cdr, cpr=args.cpr, recovery=args.recovery,
                     lag=args.lag, seed=args.seed, cutoff_day=args.cutoff, progress=progress)
    if args.json:
        print(json.dumps({"periods": rows, "seconds": round(time.perf_counter() - started, 2)}))
    return 0


def run_report(args: argparse.Namespace) -> int:
    report = PeriodReport(args.interest, args.principal, args.recoveries, args.defaults)
    tape = service.TapeSource.file(args.loan_tape) if args.loan_tape else None
    done = service.report_period(_ctx(args), report=report, loan_tape=tape)
    _print(args, done.result.as_dict(),
           f"period {done.result.period} posted; model {'agrees' if done.matches_model else 'DISAGREES'}")
    return 0 if done.matches_model else 1


def run_period_show(args: argparse.Namespace) -> int:
    handle, period = service.read_period(_ctx(args), n=args.n)
    data = period.as_dict()
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
    paid = service.claim(_ctx(args), holder=args.holder)
    _print(args, {"holder": args.holder, "claimed": paid}, f"{args.holder} claimed {paid}")
    return 0
