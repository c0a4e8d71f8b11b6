"""`chainabs serve` on the embedded chain keeps its state in the data dir: killed with -9 in the
middle of operator work and started again, it still has every transaction it acknowledged (its
journal is fsynced before it answers) and every block it said it had indexed, and it answers
the same figures.

The embedded chain's journal has a single writer, the process that holds the chain, so the
service itself does the work here, through its operator endpoints; the test only reads the
data dir while no service runs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_utils import to_checksum_address

from chainabs import deal as deals
from chainabs.chain.anvil import free_port
from chainabs.cli import main
from chainabs.context import open_context
from chainabs.demo import run_demo
from chainabs.service import fund, open_deal

KEY = "restart test operator key"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Service:
    """`chainabs serve` in a subprocess over a data dir."""

    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CHAINABS_")},
               "RESTART_KEY": KEY, "CHAINABS_INDEX_INTERVAL": "0.2"}
        with log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chainabs.cli", "--data-dir", str(data), "serve", "--port", str(self.port),
                 "--api-key-env", "RESTART_KEY"], stdout=out, stderr=subprocess.STDOUT, env=env)
        self.log = log
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def health(self, timeout: float = 90) -> dict[str, Any]:
        """Wait until the service answers and its index has caught up with the chain."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                body = self.client.get("/health", timeout=5).json()
                if body.get("lag") == 0:
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no caught-up /health within {timeout} s: {body}\n{self.log.read_text()}")

    def post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.post(path, headers=AUTH, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@contextmanager
def running(data: Path, log: Path) -> Iterator[Service]:
    service = Service(data, log)
    try:
        yield service
    finally:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait(timeout=30)
        service.client.close()


def figures(service: Service, slug: str, investor: str) -> dict[str, Any]:
    """What the service answers about the deal: pools, deal figures, tranches, every period,
    the latest investor report, an investor's holdings and transfers, and some loans."""
    paths = ["/pools", f"/pools/{slug}", f"/pools/{slug}/tranches", f"/pools/{slug}/periods?limit=1000",
             f"/pools/{slug}/report", f"/investors/{investor}/holdings", f"/investors/{investor}/transfers",
             f"/pools/{slug}/loans?limit=20"]
    return {path: service.get(path) for path in paths}


def index_file(data: Path) -> tuple[int, set[str]]:
    """The index's cursor and the transactions its events came from, read with no service running."""
    with sqlite3.connect(f"file:{data / 'index.sqlite'}?mode=ro", uri=True) as conn:
        (cursor,) = conn.execute("SELECT block_number FROM cursor WHERE name = 'head'").fetchone()
        txs = {row[0] for row in conn.execute("SELECT DISTINCT tx_hash FROM events")}
    return int(cursor), txs


def a_report(pool_balance: int, k: int) -> dict[str, int]:
    return {"interest": pool_balance // 150 + k, "principal": pool_balance // 60, "recoveries": k * 1_000,
            "defaults": pool_balance // 500}


def test_serve_survives_kill_9_mid_work(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "serve.log"
    run_demo(data_dir=data, loans=120, periods=2, seed=4, say=lambda _: None)
    ctx = open_context(data_dir=data, create=False)
    handle, files = open_deal(ctx)
    slug, investor = files.folder.name, ctx.chain.accounts[1]
    fund(ctx, to=handle.roles.servicer, amount=10**15)
    balance = deals.read_state(handle).pool_balance
    ctx.chain.journal.close()  # type: ignore[attr-defined]  # the service is the chain's only writer now
    del ctx, handle

    periods: dict[int, dict[str, Any]] = {}      # acknowledged period reports, as answered
    investor_txs: dict[str, tuple[str, int]] = {}  # tx hash -> (action, block) of acknowledged registry changes
    added: dict[str, bool] = {}                   # acknowledged investor -> frozen?
    unsure: set[str] = set()                      # sent a freeze the kill may have cut short
    indexed_acks: list[int] = []                  # heads the service said it had indexed

    def add(service: Service, address: str, frozen: bool = False) -> None:
        body = service.post("/operator/investors", json={"action": "add", "addresses": [address]})
        investor_txs.update({t["tx_hash"]: ("add", t["block_number"]) for t in body["transactions"]})
        added[address] = False
        if frozen:
            unsure.add(address)
            body = service.post("/operator/investors", json={"action": "freeze", "addresses": [address]})
            investor_txs.update({t["tx_hash"]: ("freeze", t["block_number"]) for t in body["transactions"]})
            added[address] = True
            unsure.discard(address)

    def post_period(service: Service) -> None:
        nonlocal balance
        body = service.post(f"/operator/pools/{slug}/periods", json=a_report(balance, len(periods)))
        assert body["matches_model"] is True
        periods[body["period"]] = body
        balance = body["pool_balance_end"]

    # 1. work, acknowledged; then everything indexed and the figures noted
    with running(data, log) as service:
        service.health()
        post_period(service)
        add(service, to_checksum_address("0x" + "b1" * 20), frozen=True)
        add(service, to_checksum_address("0x" + "b2" * 20))
        post_period(service)
        indexed_acks.append(service.post("/operator/index")["indexed_head"])
        service.health()
        before = figures(service, slug, investor)
        assert before[f"/pools/{slug}"]["deal"]["periods"] == 4

        # 2. more work, requests back to back from another thread, and kill -9 in the middle of it
        cut_short: list[httpx.TransportError] = []
        errors: list[BaseException] = []

        def work() -> None:
            k = 0
            try:
                while True:
                    k += 1
                    add(service, to_checksum_address(f"0x{0xC0 + k:040x}"), frozen=k % 2 == 0)
                    post_period(service)
                    indexed_acks.append(service.post("/operator/index")["indexed_head"])
            except httpx.TransportError as exc:
                cut_short.append(exc)  # the request the kill cut short: never acknowledged
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=work)
        worker.start()
        deadline = time.monotonic() + 60
        while len(periods) < 7 and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.01)
        service.kill()
        worker.join(timeout=60)
        assert len(periods) >= 7 and cut_short and not errors, (errors, service.log.read_text())
    acked_periods = max(periods)

    # the index on disk, as the killed service left it: nothing it acknowledged is lost
    cursor, indexed_txs = index_file(data)
    assert cursor >= max(indexed_acks)
    assert {tx for tx, (_, block) in investor_txs.items() if block <= max(indexed_acks)} <= indexed_txs

    # 3. restarted: every acknowledged transaction is there, the index caught up without a rollback
    with running(data, log) as service:
        health = service.health()
        assert health["chain_head"] >= max(block for _, block in investor_txs.values())
        stats = service.post("/operator/index")
        assert stats["reorgs"] == 0 and stats["rolled_back_to"] == []
        deal = service.get(f"/pools/{slug}")["deal"]
        assert deal["periods"] in (acked_periods, acked_periods + 1)  # + the cut-short one, if it was mined
        for n, answered in periods.items():
            served = service.get(f"/pools/{slug}/periods/{n}")
            for key, value in answered.items():
                if key == "tranches":
                    assert [{k: t[k] for k in a} for t, a in zip(served[key], value, strict=True)] == value
                elif key not in ("pool", "matches_model"):
                    assert served[key] == value, (n, key)
        for n in range(1, 5):
            assert service.get(f"/pools/{slug}/periods/{n}") == before[f"/pools/{slug}/periods?limit=1000"]["items"][n - 1]
        assert service.get(f"/investors/{investor}/transfers") == before[f"/investors/{investor}/transfers"]
        units = {h["token"]: h["amount"] for h in service.get(f"/investors/{investor}/holdings")["holdings"]}
        assert units == {h["token"]: h["amount"] for h in before[f"/investors/{investor}/holdings"]["holdings"]}
        after = figures(service, slug, investor)
        _, indexed_txs = index_file(data)  # read-only, beside the running service
        assert set(investor_txs) <= indexed_txs
        service.kill()  # again, idle this time

    # 4. restarted again with no work in between: the very same answers
    with running(data, log) as service:
        service.health()
        assert figures(service, slug, investor) == after
        assert service.stop() == 0  # SIGTERM: a clean shutdown

    # 5. the chain replayed from the journal, read directly: every acknowledged change is there
    ctx = open_context(data_dir=data, create=False)
    handle, _ = open_deal(ctx)
    for tx, (_, block) in investor_txs.items():
        receipt = ctx.chain.w3.eth.get_transaction_receipt(tx)
        assert receipt["status"] == 1 and receipt["blockNumber"] == block
    for address, frozen in added.items():
        until, _, is_frozen = ctx.chain.call(handle.registry.functions.investor(address))
        assert until == 2**39 and (is_frozen == frozen or address in unsure)
    for n, answered in periods.items():
        assert deals.read_period(handle, n=n).as_dict().items() <= answered.items()
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    assert main(["--data-dir", str(data), "--json", "audit", "verify"]) == 0  # index, API and chain agree
