"""`scripts/bench.py guard`: how long `/health` waits after, and during, each hostile request of
the outside review (issue 14, findings 1 and 2), against a real `chainabs serve`.

The suite asserts what the guard does (the status, the sentence, the server alive); this prints
the times: `/health`'s latency on a new connection right after each attack is answered, and the
slowest `/health` while a 32 kB (no key) and a 2 MB (with the key) adversarial body are scanned.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_api import _free_port, _get_json

KEY = "bench guard operator key"
ESCAPED_QUOTES = b"[" * 65 + b'"' + b'\\"' * 16_000
BRACKETS = b"[" * 200_000
STRINGS = b"[" + b'"[[[[",' * 300_000 + b"[" * 65


def _raw(path: str, body: bytes, *headers: tuple[str, str]) -> bytes:
    head = [("Host", "127.0.0.1"), *headers, ("Content-Length", str(len(body)))]
    return (f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head) + "\r\n").encode() + body


def _send(port: int, raw: bytes) -> int:
    """The status of the answer to `raw` (0 for none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        try:
            sock.sendall(raw)
        except OSError:
            pass
        data = sock.recv(64)
    return int(data.split()[1]) if data.startswith(b"HTTP/") else 0


def _health_seconds(port: int) -> float:
    started = time.perf_counter()
    if _get_json(port, "/health").get("status") != "ok":
        raise RuntimeError("/health is not ok")
    return time.perf_counter() - started


def bench_guard(args: argparse.Namespace) -> dict[str, Any]:
    bearer = ("Authorization", f"Bearer {KEY}")
    json_type = ("Content-Type", "application/json")
    attacks = {
        "two_content_types_200kB_brackets": _raw("/operator/investors", BRACKETS, json_type,
                                                 ("Content-Type", "multipart/form-data")),
        "escaped_quotes_32kB_no_key": _raw("/pools", ESCAPED_QUOTES, json_type),
        "escaped_quotes_32kB_operator_route_no_key": _raw("/operator/investors", ESCAPED_QUOTES, json_type),
        "strings_2MB_with_key": _raw("/operator/investors", STRINGS, json_type, bearer),
    }
    with tempfile.TemporaryDirectory(prefix="chainabs-bench-guard-") as tmp:
        port = _free_port()
        env = {**os.environ, "BENCH_GUARD_KEY": KEY, "CHAINABS_INDEX_INTERVAL": "3600"}
        with (Path(tmp) / "serve.log").open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "chainabs.cli", "--data-dir", str(Path(tmp) / "data"),
                                     "serve", "--port", str(port), "--api-key-env", "BENCH_GUARD_KEY"],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    _health_seconds(port)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("chainabs serve did not start") from None
                    time.sleep(0.2)
            after: dict[str, Any] = {}
            for name, raw in attacks.items():
                samples = []
                for _ in range(args.rounds):
                    status = _send(port, raw)
                    samples.append(_health_seconds(port))
                after[name] = {"status": status, "health_after_ms_max": round(max(samples) * 1000, 1),
                               "health_after_ms_median": round(sorted(samples)[len(samples) // 2] * 1000, 1)}
            senders = [threading.Thread(target=_send, args=(port, attacks[n]))
                       for n in ("escaped_quotes_32kB_no_key", "strings_2MB_with_key")]
            for sender in senders:
                sender.start()
            during = []
            while any(s.is_alive() for s in senders):
                during.append(_health_seconds(port))
            for sender in senders:
                sender.join()
        finally:
            proc.kill()
            proc.wait()
    return {"path": "chainabs serve subprocess (embedded chain, empty data dir), raw sockets, /health on a new "
                    "connection after each attack's answer and in a loop during two scans",
            "after_each_attack": after, "during_scans": {"health_answers": len(during),
                                                         "slowest_ms": round(max(during, default=0) * 1000, 1)},
            "load_average": os.getloadavg()[0]}
