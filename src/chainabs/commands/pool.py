"""`chainabs pool create` and `chainabs proof`: tokenise a tape; prove a loan is in a pool."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from chainabs import service
from chainabs.commands import args as argtypes
from chainabs.context import open_context
from chainabs.dealfile import load_deal_file
from chainabs.pool import find_pool, verify_proof_on_chain


def register(sub: argparse._SubParsersAction) -> None:
    pool = sub.add_parser("pool", help="create and inspect loan pools")
    pool_sub = pool.add_subparsers(dest="pool_command", metavar="ACTION", required=True)
    create = pool_sub.add_parser("create", help="tokenise a loan tape into a new pool (resumable)")
    create.add_argument("--tape", required=True, metavar="FILE", help="loan tape, CSV or JSON Lines")
    create.add_argument("--deal", required=True, metavar="DEAL.toml", help="deal file: pool name, currency, cut-off")
    create.add_argument("--batch-size", type=argtypes.whole(1, what="must be 1 or more loans"), default=None,
                        metavar="N",
                        help="loans per mint transaction (default: half the block gas limit's worth)")
    create.add_argument("--no-progress", action="store_true", help="no progress bar")
    create.set_defaults(func=run_create)

    proof = sub.add_parser("proof", help="a loan's commitment and Merkle proof, checked on chain")
    proof.add_argument("loan_id")
    proof.add_argument("--pool", default=None, help="pool name (default: the only pool)")
    proof.set_defaults(func=run_proof)


class ProgressBar:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        width = 30
        filled = width * done // total
        rate = done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:,.0f}/s)")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_create(args: argparse.Namespace) -> int:
    deal = load_deal_file(args.deal)
    tape = service.TapeSource.file(args.tape)
    service.check_tape(tape, deal)  # before the chain is opened: on a new data dir that deploys
    ctx = open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment)
    bar = ProgressBar("minting", enabled=not args.no_progress and not args.json and sys.stderr.isatty())
    report = service.create_pool(ctx, tape=tape, dealfile=deal, batch_size=args.batch_size, progress=bar).report
    out: dict[str, Any] = {**asdict(report), "gas_per_loan": round(report.gas_per_loan, 1),
                           "data_dir": str(ctx.data_dir)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"pool {report.name!r} at {report.pool}")
        print(f"  loans on tape {report.loans}, eligible {report.eligible}, "
              f"ineligible {sum(report.ineligible.values())}"
              + (f" ({', '.join(f'{k} {v}' for k, v in report.ineligible.items())})" if report.ineligible else ""))
        print(f"  outstanding {report.outstanding_units} units, root {report.root}")
        print(f"  minted now {report.minted_now} in {report.batches} batches, {report.gas_per_loan:,.0f} gas per loan")
    return 0


def run_proof(args: argparse.Namespace) -> int:
    ctx = open_context(rpc=args.rpc, data_dir=args.data_dir, deployment=args.deployment, create=False)
    files = find_pool(ctx.data_dir, args.pool)
    proof = files.proof(args.loan_id)
    proof.verified_on_chain = verify_proof_on_chain(ctx, files, proof)
    if args.json:
        print(json.dumps(proof.as_dict()))
    else:
        print(f"loan       {proof.loan_id} (token id {proof.token_id})")
        print(f"loan_hash  {proof.loan_hash}")
        print(f"leaf       {proof.leaf}")
        print(f"root       {proof.root}")
        print("proof      " + ("\n           ".join(proof.proof) or "(empty: the only loan)"))
        print(f"verifyLoan {'true' if proof.verified_on_chain else 'FALSE'}")
    return 0 if proof.verified_on_chain else 1
