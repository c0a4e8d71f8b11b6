"""Issue 15's operator sequence: `chainabs serve` holds a data dir's embedded chain, and the CLI,
scripts/deploy.py and the operator API used beside it all write through the service; after a
restart every acknowledged write is there exactly once and `audit verify` passes. And a
newcomer's first steps: deploy then serve on an empty data dir; serve alone on an empty one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from chainabs import deal as deals
from chainabs.chain.anvil import free_port
from chainabs.chain.lock import read_node
from chainabs.cli import main
from chainabs.context import open_context
from chainabs.demo import run_demo
from chainabs.service import fund, open_deal
from support import Process, chainabs_env, cli

KEY = "routing test operator key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPO = Path(__file__).resolve().parents[2]


def serve(data: Path, log: Path, port: int) -> Process:
    service = Process(data, log, "serve", "--port", str(port), "--api-key-env", "ROUTING_KEY",
                      ROUTING_KEY=KEY, CHAINABS_INDEX_INTERVAL="0.2")
    service.wait_for(f"http://127.0.0.1:{port}/rpc")
    return service


def test_serve_cli_and_operator_api_on_one_data_dir(tmp_path: Path) -> None:
    data, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    run_demo(data_dir=data, loans=120, periods=2, seed=4, say=lambda _: None)
    ctx = open_context(data_dir=data, create=False)
    handle, files = open_deal(ctx)
    slug, a, b = files.folder.name, ctx.chain.accounts[1], ctx.chain.accounts[2]
    fund(ctx, to=handle.roles.servicer, amount=10**15)
    balance = deals.read_state(handle).pool_balance
    units_before = [ctx.chain.call(t.functions.balanceOf(x)) for t in handle.tokens[:1] for x in (a, b)]
    ctx.chain.close()  # type: ignore[attr-defined]
    del ctx, handle
    api = f"http://127.0.0.1:{port}"

    with serve(data, log, port) as service:
        # the CLI beside the service: both writes go through it, and it says so
        moved = cli(data, "--json", "transfer", "--from", a, "--to", b, "--tranche", "0", "--units", "1000")
        assert moved.returncode == 0, moved.stderr
        assert f"held by the service at {api}/rpc; sending through it" in moved.stderr
        reported = cli(data, "report", "--interest", str(balance // 150), "--principal", str(balance // 60),
                       "--recoveries", "1000", "--defaults", str(balance // 500))
        assert reported.returncode == 0, reported.stderr
        assert "period 3 posted; model agrees" in reported.stdout
        # the operator API after them: the next period is 4, not a second 3
        posted = httpx.post(f"{api}/operator/pools/{slug}/periods", headers=AUTH, timeout=120,
                            json={"interest": balance // 140, "principal": balance // 55, "recoveries": 2000,
                                  "defaults": balance // 450})
        assert posted.status_code == 200, posted.text
        assert posted.json()["period"] == 4
        # scripts/deploy.py without --rpc: the data dir's chain, through the service
        script = subprocess.run([sys.executable, str(REPO / "scripts" / "deploy.py"), "--data-dir", str(data),
                                 "--name", "routed", "--out", str(tmp_path / "routed.json")],
                                capture_output=True, text=True, timeout=300, env=chainabs_env())
        assert script.returncode == 0, script.stderr
        assert "sending through it" in script.stderr
        assert json.loads(script.stdout)["code_verified"] is True
        assert service.stop() == 0
    assert read_node(data / "chain") is None

    with serve(data, log, port) as service:  # restarted: the same chain, replayed from the journal
        periods = httpx.get(f"{api}/pools/{slug}/periods?limit=1000", timeout=60).json()
        numbers = [p["period"] for p in (periods["items"] if isinstance(periods, dict) else periods)]
        assert sorted(numbers) == [1, 2, 3, 4]  # every period once
        assert service.stop() == 0

    ctx = open_context(data_dir=data, create=False)
    handle, _ = open_deal(ctx)
    units_after = [ctx.chain.call(t.functions.balanceOf(x)) for t in handle.tokens[:1] for x in (a, b)]
    assert units_after == [units_before[0] - 1000, units_before[1] + 1000]  # the transfer, once
    assert deals.read_state(handle).period == 4
    ctx.chain.close()  # type: ignore[attr-defined]
    assert main(["--data-dir", str(data), "audit", "verify"]) == 0


def test_deploy_then_serve_and_serve_on_an_empty_data_dir(tmp_path: Path) -> None:
    first = tmp_path / "first"
    deployed = cli(first, "--json", "deploy")
    assert deployed.returncode == 0, deployed.stderr
    summary = json.loads(deployed.stdout)
    assert summary["already_deployed"] is False and Path(summary["manifest"]).parent == first
    again = cli(first, "--json", "deploy")
    assert json.loads(again.stdout)["already_deployed"] is True
    assert json.loads(again.stdout)["SettlementToken"] == summary["SettlementToken"]  # the same, kept in D
    port = free_port()
    with serve(first, tmp_path / "first.log", port) as service:
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30)
        assert health.status_code == 200
        assert service.stop() == 0
    assert "deployed the core contracts" not in (tmp_path / "first.log").read_text()

    empty, port = tmp_path / "empty", free_port()
    with serve(empty, tmp_path / "empty.log", port) as service:
        said = (tmp_path / "empty.log").read_text()
        assert "deployed the core contracts" in said and "no pools yet" in said and "pool create" in said
        routed = cli(empty, "--json", "deploy")  # while it runs: through it, the deployment it made
        assert routed.returncode == 0 and json.loads(routed.stdout)["already_deployed"] is True
        assert "sending through it" in routed.stderr
        assert service.stop() == 0
