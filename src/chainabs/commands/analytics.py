"""`chainabs project`, `chainabs breakeven` and `chainabs stress`: a deal's tranches under a default, prepayment
and recovery scenario, from the same v2 reference model the contract runs.

The deal and its loans come from a deal file and a tape before issuance (`--deal FILE --tape
FILE`), or from a deal in the data dir at its current on-chain state (`--pool P`, or the only
pool). Rates are percentages: `--cdr 5` is a 5 % annual default rate.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict
from typing import Any

from chainabs.analytics.breakeven import WHATS, breakeven, tranche_index
from chainabs.analytics.inputs import Source, from_data_dir, from_files
from chainabs.analytics.pool import Assumptions
from chainabs.analytics.run import MAX_PERIODS, Projection, project_deal
from chainabs.analytics.stress import bps_range, stress_grid
from chainabs.commands import args as argtypes
from chainabs.errors import InvalidInput

CSV_COLUMNS = ("period", "status", "pool_balance_start", "pool_balance_end", "interest", "principal",
               "defaults", "recoveries", "delinquent_60", "purchased_units", "call_price", "triggers_breached",
               "tranche", "interest_due", "interest_paid", "principal_paid", "loss", "balance_end", "cash_paid")


def percent(option: str) -> Any:
    """A percentage from 0 to 100 as whole basis points (rounded to the nearest bp); argparse
    names `option` in the message."""
    def parse(text: str) -> int:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a percentage, got {text[:80]!r}") from None
        if not 0 <= value <= 100:
            raise argparse.ArgumentTypeError(f"must be from 0 to 100 (a percentage), got {text[:80]}")
        return round(value * 100)
    return parse


def prices(text: str) -> dict[str, float]:
    """`A=99.5,B=98`: a price in percent of the tranche's balance per tranche name or symbol."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = -1.0
        if not sep or not name.strip() or not 0 < price <= 1000:
            raise argparse.ArgumentTypeError(f"--price takes NAME=PRICE pairs, a price in percent of the balance "
                                             f"above 0 and at most 1000, separated by commas; got {part[:80]!r}")
        out[name.strip()] = price
    return out


def _assumption_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deal", metavar="FILE", help="deal file (with --tape: project before issuance)")
    parser.add_argument("--tape", metavar="FILE", help="loan tape of the pool (with --deal)")
    parser.add_argument("--pool", metavar="P", help="a deal in the data dir, from its current state")
    parser.add_argument("--cdr", type=percent("--cdr"), default=0, metavar="X", help="annual default rate, %%")
    parser.add_argument("--cpr", type=percent("--cpr"), default=0, metavar="Y", help="annual prepayment rate, %%")
    parser.add_argument("--recovery", type=percent("--recovery"), default=0, metavar="Z",
                        help="share of a default recovered, %%")
    parser.add_argument("--lag", type=argtypes.whole(0, 120), default=0, metavar="L",
                        help="periods from a default to its recovery")
    parser.add_argument("--dq60", type=percent("--dq60"), default=0, metavar="Q",
                        help="share of the pool 60+ days delinquent at each period's end, %%")
    parser.add_argument("--reinvest-rate-bps", type=argtypes.whole(0, 3600), default=None, metavar="W",
                        help="annual rate of revolving purchases, bps (default: the pool's weighted rate)")
    parser.add_argument("--reinvest-term", type=argtypes.whole(1, 120), default=None, metavar="M",
                        help="term of revolving purchases, months (default: the pool's weighted remaining term)")
    parser.add_argument("--periods", type=argtypes.whole(1, MAX_PERIODS), default=360, metavar="N",
                        help="periods to project at most (default 360; stops when all is paid)")
    parser.add_argument("--call", action="store_true", help="exercise the clean-up call as soon as it is allowed")


def register(subparsers: Any) -> None:
    project = subparsers.add_parser(
        "project", help="project the tranches' cash flows under a scenario",
        description="Project the pool's loans period by period under CDR, CPR, recovery and delinquency "
                    "assumptions and run them through the v2 reference waterfall: per period and tranche "
                    "interest, principal, loss and balance; triggers; per tranche WAL, principal window, "
                    "loss and IRR at a price.")
    _assumption_options(project)
    project.add_argument("--price", type=prices, default=None, metavar="A=99.5,B=98",
                         help="prices in percent of the tranche balance, for the IRR")
    project.add_argument("--csv", action="store_true", help="print one CSV row per period and tranche")
    project.set_defaults(func=run_project)
    be = subparsers.add_parser(
        "breakeven", help="the lowest CDR at which a tranche loses principal or misses interest",
        description="Bisect the annual CDR, to the basis point, for the lowest at which the tranche first "
                    "loses one base unit of principal (or misses interest), at the recovery given and at "
                    "a stressed recovery.")
    _assumption_options(be)
    be.add_argument("--tranche", required=True, metavar="NAME", help="tranche name or symbol")
    be.add_argument("--what", choices=WHATS, default="loss", help="loss of principal (default) or missed interest")
    be.add_argument("--stressed-recovery", type=percent("--stressed-recovery"), default=0, metavar="Z",
                    help="the stressed recovery, %% (default 0)")
    be.set_defaults(func=run_breakeven)
    stress = subparsers.add_parser(
        "stress", help="a grid of CDR x CPR scenarios: loss, WAL and IRR per tranche per cell",
        description="Run the projection over every pair of a CDR range and a CPR range (START:STOP:STEP in "
                    "percent, inclusive), the cells spread over worker processes.")
    _assumption_options(stress)
    stress.set_defaults(cdr="0", cpr="0")
    for action in stress._actions:
        if action.dest in ("cdr", "cpr"):
            action.type, action.metavar = str, "START:STOP:STEP"
    stress.add_argument("--price", type=prices, default=None, metavar="A=99.5,B=98",
                        help="prices in percent of the tranche balance, for the IRR")
    stress.add_argument("--workers", type=argtypes.whole(1, 64), default=2, metavar="N",
                        help="worker processes (default 2)")
    stress.add_argument("--csv", action="store_true", help="print one CSV row per cell and tranche")
    stress.set_defaults(func=run_stress)


def _source(args: argparse.Namespace) -> Source:
    if args.deal or args.tape:
        if not (args.deal and args.tape):
            raise InvalidInput("--deal and --tape go together: a deal file and the tape of its pool")
        if args.pool:
            raise InvalidInput("--pool projects a deal in the data dir; --deal and --tape one before issuance: "
                               "give one or the other")
        return from_files(args.deal, args.tape)
    from chainabs.commands.deal import _ctx  # the one way the commands open the chain
    return from_data_dir(_ctx(args), args.pool)


def _assumptions(args: argparse.Namespace, **changes: int) -> Assumptions:
    a = Assumptions(cdr_bps=changes.pop("cdr_bps", args.cdr), cpr_bps=changes.pop("cpr_bps", args.cpr),
                    recovery_bps=args.recovery, lag=args.lag,
                    dq60_bps=args.dq60, reinvest_rate_bps=args.reinvest_rate_bps,
                    reinvest_term=args.reinvest_term)
    a = Assumptions(**{**asdict(a), **changes})
    a.validate()
    return a


def run_project(args: argparse.Namespace) -> int:
    assumptions = _assumptions(args)
    src = _source(args)
    run = project_deal(src.deal, src.loans.projection(assumptions), state=src.state, periods=args.periods,
                       call=args.call, prices=args.price, average_loan=src.loans.average)
    if args.csv:
        sys.stdout.write(projection_csv(run))
    elif getattr(args, "json", False):
        print(json.dumps(projection_json(run, assumptions)))
    else:
        print(_describe(run))
    return 0


def run_breakeven(args: argparse.Namespace) -> int:
    base = _assumptions(args)
    stressed = _assumptions(args, recovery_bps=args.stressed_recovery)
    src = _source(args)
    tranche_index(src.deal, args.tranche)
    results = [breakeven(src.deal, src.loans, a, tranche=args.tranche, what=args.what, state=src.state,
                         periods=args.periods, call=args.call) for a in (base, stressed)]
    if getattr(args, "json", False):
        print(json.dumps({"tranche": results[0].tranche, "what": args.what,
                          "results": [asdict(r) for r in results]}))
        return 0
    for r in results:
        shown = "none below 100 %" if r.cdr_bps is None else f"{r.cdr_bps / 100:.2f} %"
        event = "loses principal" if r.what == "loss" else "misses interest"
        print(f"{r.tranche} {event} from CDR {shown} at recovery {r.recovery_bps / 100:.2f} % "
              f"({r.projections} projections)")
    return 0


STRESS_COLUMNS = ("cdr_bps", "cpr_bps", "tranche", "loss", "wal_years", "irr")


def run_stress(args: argparse.Namespace) -> int:
    cdrs, cprs = bps_range("--cdr", args.cdr), bps_range("--cpr", args.cpr)
    base = _assumptions(args, cdr_bps=cdrs[0], cpr_bps=cprs[0])
    src = _source(args)
    cells = stress_grid(src.deal, src.loans, base, cdrs=cdrs, cprs=cprs, state=src.state, periods=args.periods,
                        call=args.call, prices=args.price, workers=args.workers)
    if getattr(args, "json", False):
        print(json.dumps({"assumptions": asdict(base), "cdr_bps": cdrs, "cpr_bps": cprs, "cells": [
            {"cdr_bps": c.cdr_bps, "cpr_bps": c.cpr_bps,
             "tranches": [{"name": t.name, "loss": t.loss, "wal_years": t.wal_years, "irr": t.irr}
                          for t in c.tranches]} for c in cells]}))
        return 0
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STRESS_COLUMNS)
    for c in cells:
        for t in c.tranches:
            writer.writerow([c.cdr_bps, c.cpr_bps, t.name, t.loss, "" if t.wal_years is None else f"{t.wal_years:.4f}",
                             "" if t.irr is None else f"{t.irr:.6f}"])
    sys.stdout.write(out.getvalue())
    return 0


def projection_json(run: Projection, assumptions: Assumptions) -> dict[str, Any]:
    return {
        "assumptions": asdict(assumptions),
        "periods": [{
            "period": r.period, "status": r.status, "pool_balance_start": r.pool_balance_start,
            "pool_balance_end": r.pool_balance_end, "interest": r.interest_collected,
            "principal": r.principal_collected, "defaults": r.defaulted_principal, "recoveries": r.recoveries,
            "delinquent_60": r.delinquent_60, "purchased_units": r.purchased_units, "call_price": r.call_price,
            "reserve_end": r.reserve_end, "principal_account_end": r.principal_account_end,
            "triggers_breached": [i for i, t in enumerate(r.triggers) if t.breached],
            "tranches": [{"name": spec.name, "interest_due": t.interest_due, "interest_paid": t.interest_paid,
                          "principal_paid": t.principal_paid, "loss": t.loss, "balance_end": t.balance_end,
                          "cash_paid": t.cash_paid}
                         for spec, t in zip(run.deal.tranches, r.tranches, strict=True)],
        } for r in run.periods],
        "tranches": [asdict(s) for s in run.tranches],
        "triggers": [{"metric": t.metric, "threshold_bps": t.threshold_bps, "effect": t.effect,
                      "first_breached_period": first}
                     for t, first in zip(run.deal.effective_triggers, run.trigger_first_breach, strict=True)],
        "called_period": run.called_period,
    }


def projection_csv(run: Projection) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in run.periods:
        breached = ";".join(t.metric for t in r.triggers if t.breached)
        for spec, t in zip(run.deal.tranches, r.tranches, strict=True):
            writer.writerow([r.period, r.status, r.pool_balance_start, r.pool_balance_end, r.interest_collected,
                             r.principal_collected, r.defaulted_principal, r.recoveries, r.delinquent_60,
                             r.purchased_units, r.call_price, breached, spec.name, t.interest_due,
                             t.interest_paid, t.principal_paid, t.loss, t.balance_end, t.cash_paid])
    return out.getvalue()


def _describe(run: Projection) -> str:
    lines = [f"{len(run.periods)} periods projected" + (f", called in period {run.called_period}"
                                                       if run.called_period else "")]
    for t, first in zip(run.deal.effective_triggers, run.trigger_first_breach, strict=True):
        lines.append(f"trigger {t.metric} {t.threshold_bps} bps ({t.effect}): "
                     + (f"first breached in period {first}" if first else "never breached"))
    lines.append(f"{'tranche':<12} {'balance':>18} {'interest':>16} {'principal':>18} {'loss':>16} "
                 f"{'WAL y':>6} {'window':>9} {'IRR':>8}")
    for s in run.tranches:
        window = f"{s.first_principal_period}-{s.last_principal_period}" if s.first_principal_period else "-"
        wal = f"{s.wal_years:.2f}" if s.wal_years is not None else "-"
        irr = f"{s.irr * 100:.2f}%" if s.irr is not None else "-"
        lines.append(f"{s.name:<12} {s.balance_start:>18} {s.interest:>16} {s.principal:>18} {s.loss:>16} "
                     f"{wal:>6} {window:>9} {irr:>8}")
    return "\n".join(lines)
