#!/usr/bin/env python3
"""The index benchmark: ingest rate, and holdings over HTTP against the same answer from eth_getLogs.

    scripts/bench.py ingest [--events 100000] [--real-events N] [--requests 3000]

(Every endpoint class of the audit API, alone and under 64 clients, is `scripts/bench.py api`:
scripts/bench_api.py.)

One run, on the embedded chain:
1. A pool of at least `real_events` loans is tokenised (one LoanToken Transfer event per loan) and a few
   hundred settlement-token transfers move cash between 20 investors.
2. The indexer reads all of it into a fresh index: that is the ingest rate (events per second,
   wall clock of `Indexer.sync`, decoding and SQLite included).
3. Synthetic ERC-20 transfers between 10,000 synthetic holders are added straight into the
   store until it holds `events` transfer rows (minting 100,000 real transfers one transaction
   each would take py-evm about 25 minutes; with `--real-events` equal to `--events` every
   row is real instead, and slower to build).
4. uvicorn serves the app on a free loopback port; a keep-alive client asks
   GET /investors/{address}/holdings for a rotating mix of real and synthetic holders:
   p50 and p99 latency.
5. The same holdings of the pool and of one investor are computed straight from the chain
   (eth_getLogs for every Transfer of the indexed tokens since the deployment, folded), timed,
   and checked equal to the API's answer; the ratio is chain scan time / API p50.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
SYNTHETIC_TOKEN = "0x" + "5e" * 20
SYNTHETIC_HOLDERS = 10_000


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _add_synthetic_transfers(store: Any, count: int, first_block: int) -> None:
    """`count` ERC-20 transfers of a synthetic token among synthetic holders, 100 per fake block."""
    from chainabs.store import ContractRow

    store.add_contracts([ContractRow(SYNTHETIC_TOKEN, "PlainERC20", "synthetic/PlainERC20", "erc20", 0, 0)])
    holders = [f"0x{i:040x}" for i in range(1, SYNTHETIC_HOLDERS + 1)]
    zero = "0x" + "0" * 40
    batch = 20_000
    for start in range(0, count, batch):
        events, transfers = [], []
        for i in range(start, min(count, start + batch)):
            block = first_block + i // 100
            block_hash = f"0x{block:064x}"
            tx_hash = f"0x{i + 1:064x}"
            sender = zero if i < SYNTHETIC_HOLDERS else holders[(i * 7919) % SYNTHETIC_HOLDERS]
            receiver = holders[i % SYNTHETIC_HOLDERS]
            amount = 1_000_000 if sender == zero else 1
            args = json.dumps({"from": sender, "to": receiver, "value": amount}, separators=(",", ":"))
            events.append((block_hash, i % 100, block, tx_hash, SYNTHETIC_TOKEN, "synthetic/PlainERC20", "Transfer",
                           args))
            transfers.append((block_hash, i % 100, block, tx_hash, SYNTHETIC_TOKEN, "erc20", sender, receiver,
                              str(amount), None))
        store.ingest(events=events, transfers=transfers, blocks=[], synced_to=0, contracts=[], cursor=None)


def _holdings_from_chain(chain: Any, tokens: list[str], start: int, address: str) -> tuple[dict[str, int], float]:
    """An address's balance of each token, folded from every Transfer log since `start`."""
    from eth_utils import to_checksum_address

    started = time.perf_counter()
    logs = chain.w3.eth.get_logs({"fromBlock": start, "toBlock": "latest",
                                  "address": [to_checksum_address(t) for t in tokens], "topics": [TRANSFER_TOPIC]})
    balances: dict[str, int] = {}
    wanted = address.lower()
    for lg in logs:
        topics = lg["topics"]
        sender, receiver = "0x" + bytes(topics[1])[12:].hex(), "0x" + bytes(topics[2])[12:].hex()
        amount = 1 if len(topics) == 4 else int.from_bytes(bytes(lg["data"]), "big")  # ERC-721: one token
        token = lg["address"].lower()
        if sender == wanted:
            balances[token] = balances.get(token, 0) - amount
        if receiver == wanted:
            balances[token] = balances.get(token, 0) + amount
    return {t: v for t, v in balances.items() if v}, time.perf_counter() - started


class _Server:
    """uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from chainabs.chain.anvil import free_port

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                   access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _api_holdings(conn: http.client.HTTPConnection, address: str) -> dict[str, int]:
    conn.request("GET", f"/investors/{address}/holdings")
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"holdings of {address}: {response.status} {body}")
    return {h["token"].lower(): int(h["amount"]) for h in body["holdings"]}


def bench_api(events: int = 100_000, *, real_events: int = 100_000, requests: int = 3_000,
              seed: int = 1) -> dict[str, Any]:
    from chainabs.api import Settings, create_app
    from chainabs.chain import EmbeddedChain
    from chainabs.context import Context
    from chainabs.deploy import deploy_core
    from chainabs.indexer import Indexer
    from chainabs.pool import create_pool
    from chainabs.store import Store
    from chainabs.tapegen import write_tape

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        tape = root / "tape.csv"
        write_tape(tape, real_events * 108 // 100, seed, "csv")  # about 7% of a synthetic tape is ineligible
        chain = EmbeddedChain()
        core = deploy_core(chain)
        ctx = Context(data_dir=root / "data", chain=chain, core=core, manifest_path=root / "deployment.json")
        ctx.data_dir.mkdir()
        report = create_pool(ctx, tape_path=tape, name="bench")
        cash = chain.contract("SettlementToken", core.contracts["SettlementToken"])
        investors = chain.accounts[1:]
        for i, investor in enumerate(investors):
            chain.send(cash.functions.mint(investor, 1_000_000 * (i + 1)))
        for i in range(200):
            sender, receiver = investors[i % len(investors)], investors[(i * 7 + 3) % len(investors)]
            if sender != receiver:
                chain.send(cash.functions.transfer(receiver, 1_000 + i), sender=sender)
        seconds["build_chain"] = time.perf_counter() - started

        store = Store.open(ctx.data_dir, chain_id=chain.chain_id)
        stats = Indexer(ctx, store).sync()
        real_transfers = store.counts()["transfers"]

        started = time.perf_counter()
        synthetic = max(0, events - real_transfers)
        _add_synthetic_transfers(store, synthetic, first_block=chain.block_number() + 1_000)
        seconds["synthetic_rows"] = time.perf_counter() - started
        counts = store.counts()

        app = create_app(Settings(data_dir=ctx.data_dir), ctx, store=store)
        real_addresses = [report.pool, *investors]
        mix = [*real_addresses, *(f"0x{i:040x}" for i in range(1, SYNTHETIC_HOLDERS + 1, 97))]
        with _Server(app) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            for i in range(200):  # warm up: connection, caches, code paths
                _api_holdings(conn, mix[i % len(mix)])
            samples = []
            for i in range(requests):
                address = mix[i % len(mix)]
                t0 = time.perf_counter()
                _api_holdings(conn, address)
                samples.append(time.perf_counter() - t0)
            same = []
            for _ in range(200):
                t0 = time.perf_counter()
                api_pool = _api_holdings(conn, report.pool)
                same.append(time.perf_counter() - t0)
            api_investor = _api_holdings(conn, investors[0])
            conn.close()

        tokens = [core.contracts["LoanToken"], core.contracts["SettlementToken"]]
        chain_pool, scan_pool = _holdings_from_chain(chain, tokens, core.deployment_block, report.pool)
        chain_investor, scan_investor = _holdings_from_chain(chain, tokens, core.deployment_block, investors[0])
        store.close()

    p50, p99 = statistics.median(samples), _percentile(samples, 0.99)
    p50_same = statistics.median(same)
    return {
        "bench": "ingest",
        "transfer_events_indexed": counts["transfers"],
        "real_transfer_events": real_transfers,
        "synthetic_transfer_events": synthetic,
        "events_indexed": counts["events"],
        "holders": counts["balances"],
        "ingest_events": stats.events,
        "ingest_seconds": round(stats.seconds, 3),
        "ingest_events_per_s": round(stats.events_per_second, 1),
        "requests": requests,
        "holdings_p50_ms": round(p50 * 1000, 3),
        "holdings_p99_ms": round(p99 * 1000, 3),
        "holdings_p50_ms_pool": round(p50_same * 1000, 3),
        "chain_scan_ms_pool": round(scan_pool * 1000, 1),
        "chain_scan_ms_investor": round(scan_investor * 1000, 1),
        "chain_scan_transfer_logs": real_transfers,
        "speedup_vs_chain_scan": round(scan_pool / p50_same, 1),
        "answers_match": chain_pool == api_pool and chain_investor == api_investor,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "targets": {"p50_ms": 5, "p99_ms": 25, "speedup": 100, "ingest_events_per_s": 5000},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="transfer events in the index (default 100000)")
    parser.add_argument("--real-events", type=int, default=100_000,
                        help="loans minted on the embedded chain, one Transfer event each (default 100000: "
                             "every indexed transfer is real)")
    parser.add_argument("--requests", type=int, default=3_000, help="timed holdings requests (default 3000)")
    args = parser.parse_args()
    print(json.dumps(bench_api(args.events, real_events=args.real_events, requests=args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
