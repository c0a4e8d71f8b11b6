#!/usr/bin/env python3
"""chainabs benchmarks: each subcommand prints one JSON line of figures.

    scripts/bench.py mint --loans N [--rpc URL | --anvil]
    scripts/bench.py transfer
    scripts/bench.py distribute
    scripts/bench.py api [--loans 2000] [--data-dir DIR] [--clients 64]
    scripts/bench.py ingest [--events 100000] [--requests 3000]
    scripts/bench.py merkle [--loans 100000]
    scripts/bench.py nesting [--sizes 32768,1048576,67108864] [--old-up-to 32768]
    scripts/bench.py waterfall2
    scripts/bench.py analytics [--loans 100000] [--periods 36] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chainabs.chain import Chain
    from chainabs.datadir import CommittedLoan



def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def naive_gas_per_loan(chain: Chain, loans: int = 50) -> float:
    """The baseline: one OpenZeppelin ERC721 mint per loan, commitment in a mapping."""
    from chainabs.merkle import keccak256

    owner = chain.accounts[0]
    nft = chain.deploy("NaiveLoanNFT", owner, sender=owner)
    total = 0
    for i in range(loans):
        sent = chain.send(nft.functions.mint(owner, f"N{i:07d}", keccak256(b"%d" % i)), sender=owner, gas=200_000)
        total += sent.gas_used
    return total / loans


def gas_floor_per_loan(rows: list[CommittedLoan]) -> dict[str, float]:
    """What a minted loan cannot cost less than, part by part, averaged over the pool's loans:
    its one fresh storage slot, its Transfer event (which carries its token id), its loan hash
    in LoansCommitted, its calldata (id with its length byte, loan hash) and the keccaks it
    needs (token id, owner slot, its leaf, and one pair hash of the batch's multiproof)."""
    calldata = keccaks = 0
    for row in rows:
        data = bytes([len(row.loan_id.encode())]) + row.loan_id.encode() + row.loan_hash()
        calldata += sum(16 if b else 4 for b in data)
        keccaks += 30 + 6 * ((20 + len(row.loan_id.encode()) + 31) // 32) + 42 + 36 + 42
    n = len(rows)
    parts = {
        "owner slot, cold SLOAD + SSTORE": 22_100.0,
        "Transfer LOG4": 1_875.0,
        "LoansCommitted data (loan hash)": 256.0,
        "calldata (id, loan hash)": round(calldata / n, 1),
        "keccak (token id, owner slot, leaf, proof pair)": round(keccaks / n, 1),
    }
    return {**parts, "total": round(sum(parts.values()), 1)}


def bench_mint(args: argparse.Namespace) -> dict:
    from chainabs.chain import EmbeddedChain, RpcChain, fastpath
    from chainabs.chain.anvil import ANVIL_GAS_LIMIT, DEV_KEYS, PRUNE_HISTORY_STATES, Anvil
    from chainabs.context import Context
    from chainabs.deploy import deploy_core
    from chainabs.pool import create_pool, find_pool
    from chainabs.tape import Eligibility
    from chainabs.tapegen import write_tape

    anvil = None
    with tempfile.TemporaryDirectory() as tmp:
        tape = Path(tmp) / "tape.csv"
        write_tape(tape, args.loans, args.seed, "csv")
        if args.anvil:
            anvil = Anvil().start()
            args.rpc = anvil.url
        try:
            chain: Chain
            if args.rpc:
                chain = RpcChain(args.rpc, keys=[os.environ.get("CHAINABS_PRIVATE_KEY") or DEV_KEYS[0]])
            else:
                chain = EmbeddedChain()
            core = deploy_core(chain)
            ctx = Context(data_dir=Path(tmp) / "data", chain=chain, core=core, manifest_path=Path(tmp) / "m.json")
            ctx.data_dir.mkdir()
            node_pid = anvil.proc.pid if anvil is not None and anvil.proc is not None else None
            node_cpu = _process_cpu_s(node_pid) if node_pid else None
            started = time.perf_counter()
            cpu = time.process_time()
            report = create_pool(ctx, tape_path=tape, name="bench", eligibility=Eligibility())
            total = time.perf_counter() - started
            cpu = time.process_time() - cpu
            node_after = _process_cpu_s(node_pid) if node_pid else None
            node_cpu = None if node_cpu is None or node_after is None else node_after - node_cpu
            block_limit = int(chain.w3.eth.get_block("latest")["gasLimit"])
            floor = gas_floor_per_loan(find_pool(ctx.data_dir, "bench").rows)
            naive = naive_gas_per_loan(chain)
        finally:
            if anvil is not None:
                anvil.stop()
    if args.rpc and not args.anvil:
        path = f"JSON-RPC node at {args.rpc}: pipelined batches (chainabs.chain.base.Chain.send_many)"
    elif args.anvil:
        path = (f"Anvil --gas-limit {ANVIL_GAS_LIMIT} --prune-history {PRUNE_HISTORY_STATES}: pipelined batches "
                "(Chain.send_many), receipts collected after sending")
    else:
        path = ("embedded py-evm, fast path (chainabs.chain.fastpath): signed bytes applied straight to py-evm, "
                f"keccak {fastpath.keccak_backend}, RLP {fastpath.rlp_backend()}")
    return {
        "bench": "mint",
        "chain": "anvil" if args.anvil else (args.rpc or "embedded"),
        "path": path,
        "block_gas_limit": block_limit,
        "client_cpu_s": round(cpu, 2),
        "node_cpu_s": None if node_cpu is None else round(node_cpu, 2),
        "loans": report.loans,
        "minted": report.minted_now,
        "batches": report.batches,
        "seconds": {**report.seconds, "total": round(total, 2)},
        "loans_per_s": round(report.minted_now / total, 1),
        "gas_per_loan": round(report.gas_per_loan, 1),
        "gas_floor_per_loan": floor,
        "gas_above_floor_per_loan": round(report.gas_per_loan - floor["total"], 1),
        "naive_gas_per_loan": round(naive, 1),
        "peak_memory_mib": _peak_mib(),
    }


def bench_transfer(args: argparse.Namespace) -> dict:
    from bench_deal import bench_transfer as run

    return {"bench": "transfer", **run()}


def simulate_seconds(loans: int, periods: int = 12) -> dict:
    """Seconds to simulate and post `periods` periods of a `loans`-loan pool on the embedded chain
    (the pool is tokenised first; that part is the mint benchmark and is not counted)."""
    from chainabs import deal as deals
    from chainabs.chain import EmbeddedChain
    from chainabs.context import Context
    from chainabs.dealfile import parse_deal_file
    from chainabs.demo import DEMO_DEAL
    from chainabs.deploy import deploy_core
    from chainabs.pool import create_pool
    from chainabs.service import create_deal, fund, simulate
    from chainabs.tapegen import write_tape

    with tempfile.TemporaryDirectory() as tmp:
        tape = Path(tmp) / "tape.csv"
        write_tape(tape, loans, 1, "csv")
        chain = EmbeddedChain()
        ctx = Context(data_dir=Path(tmp) / "data", chain=chain, core=deploy_core(chain), manifest_path=Path(tmp) / "m")
        ctx.data_dir.mkdir()
        dealfile = parse_deal_file(DEMO_DEAL)
        create_pool(ctx, tape_path=tape, name=dealfile.pool.name, eligibility=dealfile.eligibility())
        handle = create_deal(ctx, dealfile=dealfile)
        fund(ctx, to=handle.roles.originator, amount=handle.params.initial_reserve)
        deals.close(handle)
        started = time.perf_counter()
        posted = simulate(ctx, periods=periods, cdr=0.05, cpr=0.1, recovery=0.35, lag=3, seed=1,
                          cutoff_day=dealfile.pool.cutoff_day)
        seconds = time.perf_counter() - started
    return {"simulate_loans": loans, "simulate_periods": len(posted), "simulate_seconds": round(seconds, 1),
            "simulate_matches_model": all(p.matches_model for p in posted)}


def bench_distribute(args: argparse.Namespace) -> dict:
    from bench_deal import bench_distribute as run

    out = {"bench": "distribute", **run(holders_large=args.holders)}
    if args.simulate_loans:
        out.update(simulate_seconds(args.simulate_loans))
    out["peak_memory_mib"] = _peak_mib()
    return out


def bench_ingest(args: argparse.Namespace) -> dict:
    import bench_ingest as ingest

    real = args.events if args.real_events is None else args.real_events
    return ingest.bench_api(args.events, real_events=real, requests=args.requests)


def bench_api(args: argparse.Namespace) -> dict:
    import bench_api as api

    return api.bench_api(args)


def bench_merkle(args: argparse.Namespace) -> dict:
    """Commitments (loan hash and leaf per loan) and the OpenZeppelin-layout tree of a synthetic
    tape: the parsing and hashing half of `pool create`, without the chain. Targets for 100,000
    loans: parse about 2 s, commitments 1.5 s, tree 0.5 s."""
    from chainabs.merkle import KECCAK_BACKEND, MerkleTree, commitments, new_pool_salt
    from chainabs.tape import read_tape
    from chainabs.tapegen import write_tape

    with tempfile.TemporaryDirectory() as tmp:
        tape = Path(tmp) / "tape.csv"
        write_tape(tape, args.loans, args.seed, "csv")
        started = time.perf_counter()
        loans = read_tape(tape, decimals=2).loans
        parsed = time.perf_counter() - started
    salt = new_pool_salt()
    started = time.perf_counter()
    pairs = commitments(loans, salt)
    hashed = time.perf_counter() - started
    started = time.perf_counter()
    tree = MerkleTree.from_leaves([leaf for _, leaf in pairs])
    built = time.perf_counter() - started
    return {"bench": "merkle", "loans": len(tree), "keccak": KECCAK_BACKEND, "parse_s": round(parsed, 3),
            "commitments_s": round(hashed, 3),
            "tree_s": round(built, 3), "peak_mib": _peak_mib()}


def bench_waterfall2(args: argparse.Namespace) -> dict:
    from bench_waterfall import bench_waterfall2 as run

    return run()


def nesting_bodies(size: int) -> dict[str, bytes]:
    """Adversarial bodies for the API's nesting check, each about `size` bytes."""
    block = b"[" * 100 + b"]" * 100
    return {
        "escaped_quotes": b"[" * 65 + b'"' + b'\\"' * ((size - 66) // 2),  # issue 14, finding 2
        "brackets": b"[" * size,  # finding 1's body
        "pairs": b"[" + b"[]," * ((size - 2) // 3) + b"]",
        "strings_with_brackets": b"[" + b'"[[[[",' * ((size - 2) // 7) + b"]",
        "deep_blocks_after_a_close": b"]" + block * (size // len(block)),  # the most the final walk gets
    }


def bench_guard(args: argparse.Namespace) -> dict:
    from bench_guard import bench_guard as run

    return run(args)


def bench_nesting(args: argparse.Namespace) -> dict:
    """Seconds the API's nesting check (chainabs.jsondepth) takes on adversarial bodies, and the
    regex it replaced on the sizes up to --old-up-to (it is quadratic: 16 s at 32 kB)."""
    import re

    from chainabs.jsondepth import nested_deeper_than

    old_string = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)  # api/main.py before issue 14
    not_brackets = bytes(sorted(set(range(256)) - set(b"[]{}")))

    def old(body: bytes, limit: int = 64) -> bool:
        if body.count(b"[") + body.count(b"{") <= limit:
            return False
        depth = 0
        for c in old_string.sub(b"", body).translate(None, not_brackets):
            depth += 1 if c in b"[{" else -1
            if depth > limit:
                return True
        return False

    figures: dict[str, dict[str, float | bool]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        for name, body in nesting_bodies(size).items():
            started = time.perf_counter()
            deep = nested_deeper_than(body, 64)
            row = {"bytes": len(body), "deep": deep, "seconds": round(time.perf_counter() - started, 4)}
            if size <= args.old_up_to:
                started = time.perf_counter()
                row["old_deep"] = old(body)  # it counted past the end of the first value, where decoders stop
                row["old_seconds"] = round(time.perf_counter() - started, 4)
            figures[f"{name}_{size}"] = row
    return {"bench": "nesting", "limit": 64, "figures": figures, "peak_mib": _peak_mib()}


def _plain_python_pool(outstanding: list[int], rate_bps: list[int], remaining: list[int], *, cdr: float,
                       cpr: float, periods: int) -> list[tuple[float, float, float]]:
    """The projection's loan arithmetic loan by loan in plain Python (the ratio's baseline)."""
    mdr, smm = 1 - (1 - cdr) ** (1 / 12), 1 - (1 - cpr) ** (1 / 12)
    bal = [float(x) for x in outstanding]
    rate = [r / 10_000 / 12 for r in rate_bps]
    rem = list(remaining)
    out = []
    for _ in range(periods):
        i_sum = p_sum = d_sum = 0.0
        for k in range(len(bal)):
            b, r, n = bal[k], rate[k], max(rem[k], 1)
            d = b * mdr
            perf = b - d
            i = perf * r
            if n <= 1:
                sched = perf
            else:
                level = perf * r / (1 - (1 + r) ** -n) if r > 0 else perf / n
                sched = min(max(level - i, 0.0), perf)
            p = perf if n <= 1 else sched + (perf - sched) * smm
            bal[k] = 0.0 if n <= 1 else perf - p
            rem[k] = max(n - 1, 1)
            i_sum, p_sum, d_sum = i_sum + i, p_sum + p, d_sum + d
        out.append((i_sum, p_sum, d_sum))
    return out


def bench_analytics(args: argparse.Namespace) -> dict:
    """Issue 20's figures on a generated pool under examples/deal.toml: one projection of
    `--periods` periods (loan level, numpy, then through run_period_v2; target <= 2 s for
    100,000 loans and 36 periods), a breakeven for the mezzanine (<= 40 projections, <= 20 s),
    a 16 x 9 CDR x CPR stress grid on `--workers` processes (<= 120 s on 2 cores), and the
    same projection's loan arithmetic done loan by loan in plain Python beside it."""
    from chainabs.analytics.breakeven import breakeven
    from chainabs.analytics.inputs import from_files
    from chainabs.analytics.pool import Assumptions
    from chainabs.analytics.run import project_deal
    from chainabs.analytics.stress import bps_range, stress_grid
    from chainabs.tapegen import write_tape

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tape = Path(tmp) / "tape.csv"
        write_tape(tape, args.loans, args.seed, "csv")
        src = from_files(root / "examples" / "deal.toml", tape)
    a = Assumptions(cdr_bps=800, cpr_bps=1000, recovery_bps=4000, lag=3)
    started = time.perf_counter()
    run = project_deal(src.deal, src.loans.projection(a), periods=args.periods, average_loan=src.loans.average)
    projected = time.perf_counter() - started
    started = time.perf_counter()
    pool = src.loans.projection(a)
    for _ in range(args.periods):
        pool.collect()
    pool_only = time.perf_counter() - started
    started = time.perf_counter()
    _plain_python_pool(src.loans.outstanding, src.loans.rate_bps, src.loans.remaining, cdr=0.08, cpr=0.10,
                       periods=args.periods)
    plain = time.perf_counter() - started
    started = time.perf_counter()
    be = breakeven(src.deal, src.loans, a, tranche=src.deal.tranches[1].name, periods=args.periods)
    be_s = time.perf_counter() - started
    started = time.perf_counter()
    cells = stress_grid(src.deal, src.loans, a, cdrs=bps_range("--cdr", "0:30:2"), cprs=bps_range("--cpr", "0:40:5"),
                        periods=args.periods, workers=args.workers)
    grid_s = time.perf_counter() - started
    return {"bench": "analytics", "loans": len(src.loans.outstanding), "periods": len(run.periods),
            "projection_s": round(projected, 3), "pool_numpy_s": round(pool_only, 3),
            "pool_plain_python_s": round(plain, 3), "plain_over_numpy": round(plain / pool_only, 1),
            "breakeven_cdr_bps": be.cdr_bps, "breakeven_projections": be.projections,
            "breakeven_s": round(be_s, 3), "stress_cells": len(cells), "stress_workers": args.workers,
            "stress_s": round(grid_s, 3), "peak_mib": _peak_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", required=True)
    mint = sub.add_parser("mint", help="tape to tokenised pool")
    mint.add_argument("--loans", type=int, default=100_000)
    mint.add_argument("--seed", type=int, default=1)
    mint.add_argument("--rpc", default=None, help="a node URL (default: the embedded chain)")
    mint.add_argument("--anvil", action="store_true", help="start a local Anvil from node_modules and use it")
    mint.set_defaults(func=bench_mint)
    transfer = sub.add_parser("transfer", help="restricted tranche transfer vs plain ERC-20")
    transfer.set_defaults(func=bench_transfer)
    distribute = sub.add_parser("distribute", help="period gas with 10 vs many holders; claim gas")
    distribute.add_argument("--holders", type=int, default=10_000)
    distribute.add_argument("--simulate-loans", type=int, default=100_000,
                            help="also time 12 simulated periods of a pool this size (0: skip)")
    distribute.set_defaults(func=bench_distribute)
    api = sub.add_parser("api", help="every endpoint class of `chainabs serve`, one client and 64 at once")
    api.add_argument("--loans", type=int, default=2_000, help="loans of the `chainabs demo` data dir")
    api.add_argument("--data-dir", type=Path, default=None,
                     help="an existing demo data dir to serve (default: run `chainabs demo` in a temporary one)")
    api.add_argument("--single", type=int, default=1_000, help="timed requests per endpoint, one client")
    api.add_argument("--clients", type=int, default=64, help="concurrent clients")
    api.add_argument("--per-client", type=int, default=40, help="requests per client per endpoint, concurrent")
    api.add_argument("--profile", type=Path, default=None,
                     help="also sample the server with py-spy (if installed) into this SVG flame graph")
    api.set_defaults(func=bench_api)
    ingest = sub.add_parser("ingest", help="indexer ingest rate; holdings over HTTP vs an eth_getLogs scan")
    ingest.add_argument("--events", type=int, default=100_000, help="transfer events in the index")
    ingest.add_argument("--real-events", type=int, default=None,
                        help="of those, minted on chain (default: all of them, one loan token each)")
    ingest.add_argument("--requests", type=int, default=3_000, help="timed holdings requests")
    ingest.set_defaults(func=bench_ingest)
    merkle = sub.add_parser("merkle", help="tape parsing, loan commitments and the Merkle tree, off chain")
    merkle.add_argument("--loans", type=int, default=100_000)
    merkle.add_argument("--seed", type=int, default=1)
    merkle.set_defaults(func=bench_merkle)
    nesting = sub.add_parser("nesting", help="the API's JSON nesting check on adversarial bodies, before and after")
    nesting.add_argument("--sizes", default="32768,1048576,67108864", help="body sizes in bytes, comma-separated")
    nesting.add_argument("--old-up-to", type=int, default=32768, help="time the old regex up to this size")
    nesting.set_defaults(func=bench_nesting)
    guard = sub.add_parser("guard", help="/health's latency after and during each hostile request of issue 14")
    guard.add_argument("--rounds", type=int, default=5, help="times each attack is sent")
    guard.set_defaults(func=bench_guard)
    waterfall2 = sub.add_parser("waterfall2", help="WaterfallV2's gas: the library alone, through the engine, "
                                                  "as a transaction; 5 tranches and 8 triggers, and v1's example")
    waterfall2.set_defaults(func=bench_waterfall2)
    analytics = sub.add_parser("analytics", help="projection, breakeven and stress grid; numpy vs plain Python")
    analytics.add_argument("--loans", type=int, default=100_000)
    analytics.add_argument("--periods", type=int, default=36)
    analytics.add_argument("--workers", type=int, default=2)
    analytics.add_argument("--seed", type=int, default=1)
    analytics.set_defaults(func=bench_analytics)
    args = parser.parse_args()
    print(json.dumps(args.func(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
