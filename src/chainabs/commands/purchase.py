"""`chainabs purchase check --tape FILE --deal DEAL.toml`: a revolving period's purchase tape
judged against the deal's eligibility criteria and concentration limits, without a chain.

Exit status 0 when the purchase would be accepted (its ineligible loans left out and counted),
1 when it is refused: a bad tape lists its bad cells, a breached limit names the limit, the
figure and the loans. Nothing is written and nothing reaches the chain.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from chainabs import service
from chainabs.datadir import DataDir
from chainabs.dealfile import load_deal_file
from chainabs.service.purchases import format_units, percent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purchase", help="check loans bought in a revolving period")
    ps = p.add_subparsers(dest="purchase_command", metavar="ACTION", required=True)
    check = ps.add_parser(
        "check", help="check a purchase tape against eligibility and concentration limits",
        description="Check a purchase tape (TAPE.md format) against the deal file's eligibility criteria "
                    "and its [concentration] limits on the pool after the purchase. Nothing is written "
                    "and nothing is sent.")
    check.add_argument("--tape", required=True, metavar="FILE", help="the purchase tape, CSV or JSON Lines")
    check.add_argument("--deal", required=True, metavar="DEAL.toml",
                       help="the deal file: eligibility criteria and [concentration] limits")
    check.add_argument("--pool", default=None, help="pool name (default: the deal file's pool)")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    dealfile = load_deal_file(args.deal)
    data = DataDir.resolve(args.data_dir, create=False)
    done = service.check_purchase(data, dealfile=dealfile, tape=service.TapeSource.file(args.tape),
                                  pool=args.pool)
    out = done.as_dict()
    if args.json:
        print(json.dumps({**out, "accepted": True}))
    else:
        print(_describe(out, done.decimals))
    return 0


def _describe(s: dict[str, Any], decimals: int) -> str:
    ccy = s["currency"]
    lim = s["limits"]

    def money(units: int) -> str:
        return f"{format_units(units, decimals)} {ccy}"

    ineligible = sum(s["ineligible"].values())
    reasons = ", ".join(f"{k} {v}" for k, v in s["ineligible"].items())
    region, borrower = s["largest_region"], s["largest_borrower"]
    lines = [
        f"purchase {s['source']} for pool {s['pool']!r}: accepted (checked only, nothing minted)",
        f"  loans on tape {s['loans']}, eligible {s['count']}, ineligible {ineligible}"
        + (f" ({reasons})" if reasons else ""),
        f"  buys {money(s['outstanding_units'])} outstanding ({s['outstanding_units']} units), root {s['root']}",
        f"  pool outstanding {money(s['pool_outstanding_units'])} now, {money(s['outstanding_units_after'])} after",
        f"  largest region {region['region']!r}: {percent(region['share_bps'])} "
        f"({region['units']} units), limit {_limit(lim['max_region_share_bps'], percent)}",
        f"  largest borrower {borrower['borrower_hash']}: {money(borrower['units'])}, "
        f"limit {_limit(lim['max_borrower_outstanding_units'], money)}",
        f"  weighted average coupon {percent(s['wac_bps'])}, limit {_limit(lim['min_wac_bps'], percent)}",
    ]
    lines.extend(f"warning: {w}" for w in s["warnings"])
    return "\n".join(lines)


def _limit(value: int | None, show: Any) -> str:
    return "none" if value is None else str(show(value))
