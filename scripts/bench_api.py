#!/usr/bin/env python3
"""The audit API benchmark: every public endpoint class of a real `chainabs serve`, one client
and many at once.

    scripts/bench.py api [--loans 2000] [--data-dir DIR] [--clients 64] [--profile flame.svg]

1. A data dir made by `chainabs demo --loans N --no-serve` (12 periods, five investors, trades)
   in a temporary folder, or the one given with --data-dir.
2. `chainabs --data-dir DIR serve` in a subprocess: one uvicorn worker, with its indexer
   thread, its access log and its request guard, exactly as an operator runs it; the figures
   wait until /health says the index is at the chain's head.
3. Each endpoint class is asked in turn, from this process, over keep-alive HTTP/1.1
   connections (a small asyncio client on raw streams, so the load generator costs as little
   CPU as possible on a machine it shares with the server):
   - first ask: every path of the class once, one client: p50, p99 of answers built for the
     first time at this index generation (the service keeps answers until the next block);
   - single client: `--single` requests one after another: p50, p99;
   - `--clients` clients at once, `--per-client` requests each: requests/s (all requests over
     the wall clock from the first sent to the last answered), p50, p99 and errors (any
     status but 200, or a broken connection).
   The paths rotate over the holders, periods and loans of their class, and the output names
   which holder type and path each figure measured; `server_cpu_ms_per_request` is the
   server process's CPU time over the concurrent round per request, which the machine's load
   does not inflate as it does the latencies.
4. With --profile, py-spy (when installed) samples the server during a second concurrent
   round of the tranche-holder class and writes a flame graph.

Targets (issue 16): p50 <= 5 ms single-client for each class; >= 500 requests/s per class at
64 clients with one worker; p99 <= 250 ms at 64 clients; 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS = {"single_p50_ms": 5.0, "concurrent_rps": 500.0, "concurrent_p99_ms": 250.0, "errors": 0}


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- a minimal keep-alive HTTP/1.1 client --------------------------------------------------------

class Connection:
    """One keep-alive connection; `get` returns (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


@dataclass
class Round:
    latencies: list[float]
    errors: int
    seconds: float

    def figures(self) -> dict[str, float]:
        ok = self.latencies or [float("nan")]
        return {"requests": len(self.latencies) + self.errors,
                "requests_per_s": round((len(self.latencies) + self.errors) / self.seconds, 1),
                "p50_ms": round(statistics.median(ok) * 1000, 2), "p99_ms": round(_percentile(ok, 0.99) * 1000, 2),
                "errors": self.errors}


async def _client(port: int, paths: Sequence[str], start: int, count: int, latencies: list[float],
                  errors: list[str]) -> None:
    conn = await Connection.open(port)
    try:
        for i in range(count):
            path = paths[(start + i) % len(paths)]
            t0 = time.perf_counter()
            try:
                status, body = await conn.get(path)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"{path}: {exc.__class__.__name__}")
                conn.close()
                conn = await Connection.open(port)
                continue
            if status != 200:
                errors.append(f"{path}: HTTP {status} {body[:120]!r}")
                continue
            latencies.append(time.perf_counter() - t0)
    finally:
        conn.close()


async def _round(port: int, paths: Sequence[str], clients: int, per_client: int) -> tuple[Round, list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, paths, k * per_client, per_client, latencies, errors)
                           for k in range(clients)))
    return Round(latencies, len(errors), time.perf_counter() - started), errors


def measure(port: int, paths: Sequence[str], *, clients: int, per_client: int) -> tuple[Round, list[str]]:
    return asyncio.run(_round(port, paths, clients, per_client))


# -- the server ------------------------------------------------------------------------------------

def _get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as reply:
        return json.loads(reply.read())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """`chainabs --data-dir DIR serve --port P` in a subprocess, until the index is at the head."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = _free_port()
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "chainabs.cli", "--data-dir", str(data_dir), "serve",
                                      "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chainabs serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                health = _get_json(self.port, "/health")
                if health.get("lag") == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("chainabs serve did not catch up with the chain in 300 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- what to ask -----------------------------------------------------------------------------------

def endpoint_classes(port: int, data_dir: Path) -> dict[str, dict[str, Any]]:
    """{class: {"paths": [...], "measured": what the paths are}} of every public endpoint class."""
    from chainabs.store import Store

    pools = _get_json(port, "/pools?limit=1")["items"]
    if not pools:
        raise RuntimeError(f"no pool in {data_dir}")
    pool = pools[0]
    slug, address = pool["slug"], pool["address"]
    tranches = _get_json(port, f"/pools/{slug}/tranches")["items"]
    periods = _get_json(port, f"/pools/{slug}/periods?limit=1000")["items"]
    loans = [item["loan_id"] for item in _get_json(port, f"/pools/{slug}/loans?limit=1000")["items"]]
    store = Store.open(data_dir, read_only=True)
    try:
        holders = sorted({h for t in tranches for h in store.balances_of_token(t["address"].lower())})
        loan_holders = sorted({h for h, b in ((h, store.holdings(h)) for h in [address.lower()])
                               if any(x.artifact == "LoanToken" for x in b)})
    finally:
        store.close()
    if not holders or not loan_holders or not periods:
        raise RuntimeError("the data dir has no tranche holders, loan-token holder or period: run the full demo")
    return {
        "loan-token holder holdings": {
            "paths": [f"/investors/{h}/holdings" for h in loan_holders],
            "measured": f"GET /investors/{{a}}/holdings for the pool contract {address}, which holds every loan "
                        f"token ({pool['loan_count']}) and no tranche unit"},
        "tranche holder holdings": {
            "paths": [f"/investors/{h}/holdings" for h in holders],
            "measured": f"GET /investors/{{a}}/holdings rotating over the {len(holders)} tranche holders "
                        "(investors and the originator): units, principal, claimable, claimed, eligibility"},
        "pool": {"paths": [f"/pools/{slug}"], "measured": f"GET /pools/{slug} (loan figures and deal figures)"},
        "period": {"paths": [f"/pools/{slug}/periods/{p['period']}" for p in periods],
                   "measured": f"GET /pools/{slug}/periods/{{n}} rotating over its {len(periods)} periods"},
        "loan": {"paths": [f"/pools/{slug}/loans/{lid}" for lid in loans],
                 "measured": f"GET /pools/{slug}/loans/{{id}} rotating over {len(loans)} loans"},
        "proof": {"paths": [f"/pools/{slug}/loans/{lid}/proof" for lid in loans],
                  "measured": f"GET /pools/{slug}/loans/{{id}}/proof rotating over {len(loans)} loans"},
        "tranches": {"paths": [f"/pools/{slug}/tranches"], "measured": f"GET /pools/{slug}/tranches"},
        "deal listing": {"paths": ["/pools"], "measured": "GET /pools (every pool with its deal figures)"},
    }


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _demo(data_dir: Path, loans: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "chainabs.cli", "--data-dir", str(data_dir), "demo", "--loans", str(loans),
                    "--no-serve"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds) + 1), "--rate", "200",
                             "--output", str(out), "--format", "speedscope" if out.suffix == ".json" else "flamegraph",
                             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_api(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chainabs-bench-api-") as tmp:
        data_dir = args.data_dir
        demo_seconds = None
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            demo_seconds = round(_demo(data_dir, args.loans), 1)
        results: dict[str, Any] = {}
        with Served(data_dir, Path(tmp) / "serve.log") as server:
            classes = endpoint_classes(server.port, data_dir)
            for name, spec in classes.items():
                paths = spec["paths"]
                # first asks: every path of the class once, one client (the answer is built)
                first, first_errors = measure(server.port, paths, clients=1, per_client=len(paths))
                single, single_errors = measure(server.port, paths, clients=1, per_client=args.single)
                cpu = _cpu_seconds(server.proc.pid)
                many, many_errors = measure(server.port, paths, clients=args.clients, per_client=args.per_client)
                after = _cpu_seconds(server.proc.pid)
                s, m = single.figures(), many.figures()
                if cpu is not None and after is not None:  # what one request costs the server, load aside
                    m["server_cpu_ms_per_request"] = round((after - cpu) * 1000 / m["requests"], 3)
                f = first.figures()
                results[name] = {
                    "measured": spec["measured"],
                    "first_ask": {k: f[k] for k in ("requests", "p50_ms", "p99_ms", "errors")},
                    "single": {k: s[k] for k in ("requests", "p50_ms", "p99_ms", "errors")},
                    f"clients_{args.clients}": m,
                    "meets_targets": (s["p50_ms"] <= TARGETS["single_p50_ms"]
                                      and m["requests_per_s"] >= TARGETS["concurrent_rps"]
                                      and m["p99_ms"] <= TARGETS["concurrent_p99_ms"]
                                      and f["errors"] == s["errors"] == m["errors"] == 0),
                }
                if first_errors or single_errors or many_errors:
                    results[name]["first_errors"] = (first_errors + single_errors + many_errors)[:3]
            if args.profile is not None:
                spec = classes["tranche holder holdings"]
                spy = _profile(server.proc.pid, args.profile, 10)
                if spy is None:
                    results["profile"] = "py-spy is not installed: no profile"
                else:
                    time.sleep(0.5)
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        measure(server.port, spec["paths"], clients=args.clients, per_client=args.per_client)
                    spy.wait(timeout=60)
                    results["profile"] = f"py-spy flame graph of the server: {args.profile}"
    return {"bench": "api", "data_dir": f"chainabs demo --loans {args.loans} (temporary)"
            if args.data_dir is None else str(args.data_dir), "demo_seconds": demo_seconds,
            "server": "chainabs serve: one uvicorn worker, indexer thread running, access log on",
            "clients": args.clients, "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(), "endpoints": results,
            "all_meet_targets": all(r["meets_targets"] for k, r in results.items() if k != "profile"),
            "targets": TARGETS}
