"""The CLI, the deploy script and clear node errors against a real node: Anvil from npm, started
by the tests. (The chain layer itself is checked on Anvil by tests/chain/test_conformance.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from chainabs import merkle
from chainabs.chain import RpcChain
from chainabs.chain.anvil import DEV_KEYS, Anvil, binary
from chainabs.cli import main
from chainabs.datadir import DataDir
from chainabs.errors import RpcError, WrongChain
from chainabs.tapegen import write_tape

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]


def cast(*args: str) -> str:
    return subprocess.run([str(binary("cast")), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_wrong_chain_and_unreachable_node_are_clear_errors(anvil: Anvil) -> None:
    with pytest.raises(WrongChain, match="expected 1"):
        RpcChain(anvil.url, keys=DEV_KEYS[:1], expected_chain_id=1)
    RpcChain.RETRIES, saved = 2, RpcChain.RETRIES
    try:
        with pytest.raises(RpcError, match="unreachable"):
            RpcChain("http://127.0.0.1:9", keys=DEV_KEYS[:1])
    finally:
        RpcChain.RETRIES = saved


def test_cli_tokenises_a_pool_on_anvil_and_cast_agrees(anvil: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tape = tmp_path / "tape.csv"
    write_tape(tape, 200, 3, "csv")
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[0])
    base = ["--rpc", anvil.url, "--data-dir", str(tmp_path / "data"), "--json"]
    assert main([*base, "pool", "create", "--tape", str(tape), "--deal", str(ROOT / "examples" / "pool.toml")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert DEV_KEYS[0][2:] not in json.dumps(report)
    loans = DataDir(tmp_path / "data").pool("consumer-loans-2026-1").read_loans()
    token = json.loads(next((tmp_path / "data").glob("deployment-*.json")).read_text())["contracts"]["LoanToken"]
    for row in loans[:3]:
        owner = cast("call", token, "ownerOf(uint256)(address)", str(merkle.token_id(report["pool"], row.loan_id)), "--rpc-url", anvil.url)
        assert owner.lower() == report["pool"].lower()
    balance = cast("call", token, "balanceOf(address)(uint256)", report["pool"], "--rpc-url", anvil.url)
    assert int(balance.split()[0]) == report["eligible"] == len(loans)
    assert main([*base, "proof", loans[7][0]]) == 0
    assert json.loads(capsys.readouterr().out)["verified_on_chain"] is True


def test_operator_deploy_script_writes_a_verified_manifest_once(anvil: Anvil, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "scripts" / "deploy.py")
    script = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(script)
    tape = tmp_path / "tape.csv"
    write_tape(tape, 60, 5, "csv")
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[1])
    out = tmp_path / "deployments" / "test.json"
    args = ["--rpc", anvil.url, "--out", str(out), "--tape", str(tape), "--deal", str(ROOT / "examples" / "pool.toml"),
            "--data-dir", str(tmp_path / "pooldata")]
    assert script.main(args) == 0
    manifest = json.loads(out.read_text())
    assert manifest["chain_id"] == 31337 and set(manifest["contracts"]) >= {"LoanToken", "SettlementToken", "LoanPool"}
    assert set(manifest["artifact_hashes"]) >= {"LoanToken", "LoanPool"}
    assert manifest["deployer"].lower() == RpcChain(anvil.url, keys=[DEV_KEYS[1]]).accounts[0].lower()
    assert script.main(args) == 1  # refuses to overwrite
