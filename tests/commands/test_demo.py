"""The main job end to end through the CLI, and audit verify failing on tampered data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainabs.cli import build_parser, main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("demo")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        status = main(["--data-dir", str(data), "demo", "--no-serve", "--loans", "400", "--periods", "6", "--json"])
    assert status == 0
    return data, json.loads(buf.getvalue())


def test_demo_runs_the_whole_deal_life_and_verifies(demo_run: tuple[Path, dict]) -> None:
    data, out = demo_run
    assert out["verify"] == "PASS" and out["periods"] == 6 and out["loans"] > 300
    assert out["data_dir"] == str(data)
    assert sum(t["balance"] for t in out["tranches"]) == out["pool_balance"] or out["trigger_breached"]
    assert all(c["result"] == "PASS" for c in out["checks"]) and len(out["checks"]) >= 6
    assert all(v > 0 for v in out["claimed"].values())


def test_cli_period_show_and_audit_verify(demo_run: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = demo_run
    capsys.readouterr()
    assert main(["--data-dir", str(data), "--json", "period", "show", "3"]) == 0
    period = json.loads(capsys.readouterr().out)
    for key in ("period", "interest_collected", "principal_collected", "recoveries", "defaulted_principal",
                "pool_balance_start", "pool_balance_end", "fee_due", "fee_paid", "reserve_start", "reserve_drawn",
                "reserve_released", "reserve_added", "reserve_end", "trigger_breached", "residual_paid"):
        assert key in period
    assert set(period["tranches"][0]) == {"balance_start", "interest_due", "interest_paid", "interest_unpaid",
                                          "principal_paid", "loss", "balance_end", "cash_paid"}
    assert main(["--data-dir", str(data), "period", "show", "99"]) == 1
    assert "no period 99" in capsys.readouterr().err
    assert main(["--data-dir", str(data), "--json", "audit", "verify"]) == 0
    assert json.loads(capsys.readouterr().out)["verify"] == "PASS"


def test_audit_verify_fails_on_a_tampered_period_tape(demo_run: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = demo_run
    tape = next((data / "pools").glob("*/periods/2.json"))
    original = tape.read_text()
    doctored = json.loads(original)
    doctored["outstanding"][0] += 1
    tape.write_text(json.dumps(doctored))
    try:
        capsys.readouterr()
        assert main(["--data-dir", str(data), "audit", "verify"]) == 1
        assert "FAIL  periods" in capsys.readouterr().out
    finally:
        tape.write_text(original)


def test_a_refused_report_changes_nothing(demo_run: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    data, out = demo_run
    capsys.readouterr()
    status = main(["--data-dir", str(data), "report", "--interest", "1", "--principal", str(out["pool_balance"]),
                   "--recoveries", "0", "--defaults", "1"])
    assert status == 1
    assert "refused" in capsys.readouterr().err
    assert main(["--data-dir", str(data), "--json", "audit", "verify"]) == 0


def test_demo_serves_the_deal_it_ran_until_interrupted(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from chainabs.chain.anvil import free_port

    data, port = tmp_path / "served-demo", free_port()
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINABS_")}
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "chainabs.cli", "--data-dir", str(data), "--json", "demo",
                                 "--loans", "150", "--periods", "3", "--port", str(port)],
                                stdout=out, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert health is not None and health.status_code == 200, err_path.read_text()
        assert health.json()["lag"] == 0  # indexed before it served
        summary = json.loads(out_path.read_text())  # stdout holds the summary's JSON alone
        assert summary["verify"] == "PASS" and summary["periods"] == 3 and summary["api"] == url
        assert summary["data_dir"] == str(data)
        notes = err_path.read_text()
        assert f"{url}/docs" in notes and f"{url}/pools/demo-consumer-loans-2026-1" in notes
        pools = httpx.get(f"{url}/pools")
        assert pools.status_code == 200
        (pool,) = pools.json()["items"]
        assert pool["address"] == summary["pool"] and pool["loan_count"] == summary["loans"]
        deal = httpx.get(f"{url}/pools/{pool['slug']}").json()["deal"]
        assert deal["periods"] == 3 and deal["pool_balance"] == summary["pool_balance"]
        assert deal["reserve"] == summary["reserve"]
        investor, claimed = next(iter(summary["claimed"].items()))
        holdings = httpx.get(f"{url}/investors/{investor}/holdings")
        assert holdings.status_code == 200
        tranches = [h for h in holdings.json()["holdings"] if h.get("contract") == "TrancheToken"]
        assert tranches and all(int(h["units"]) > 0 for h in tranches)
        assert sum(h["claimed"] for h in tranches) == claimed > 0  # what the demo's investor claimed
        assert httpx.get(f"{url}/docs").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err_path.read_text()
    assert "Application shutdown complete" in err_path.read_text()
    assert "Traceback" not in err_path.read_text()


def test_demo_on_a_busy_port_stops_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["--data-dir", str(tmp_path / "d"), "demo", "--loans", "50", "--port", str(port)]) == 1
    assert capsys.readouterr().err.strip() == (f"error: cannot listen on 127.0.0.1:{port}: something else is "
                                               "listening there (choose another --port)")
    assert not (tmp_path / "d" / "chain").exists()  # nothing ran


@pytest.mark.parametrize(("argv", "expected"), [
    (["demo"], {"json": False, "debug": False, "data_dir": None, "rpc": None}),
    (["--json", "demo"], {"json": True, "data_dir": None}),
    (["demo", "--no-serve", "--json", "--data-dir", "d"], {"json": True, "data_dir": "d", "no_serve": True}),
    (["--data-dir", "a", "--rpc", "http://x", "tape", "check", "t.csv", "--data-dir", "b"],
     {"data_dir": "b", "rpc": "http://x", "json": False}),
    (["investors", "add", "0x" + "1" * 40, "--debug"], {"debug": True, "json": False}),
])
def test_global_options_go_before_or_after_the_command(argv: list[str], expected: dict[str, object]) -> None:
    args = build_parser().parse_args(argv)
    assert {k: getattr(args, k) for k in expected} == expected
