"""A deal's whole life on a real Anvil node through the `chainabs` CLI, each party signing with
its own key in CHAINABS_PRIVATE_KEY; then the audit API over the same data dir and node, its
answers checked against the chain read by `cast`, a client that shares no code with chainabs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from chainabs import merkle
from chainabs.api.main import create_app
from chainabs.api.settings import Settings
from chainabs.chain.anvil import DEV_KEYS, Anvil, binary
from chainabs.cli import main
from chainabs.tapegen import write_tape

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]
DEAL = ROOT / "examples" / "deal.toml"
OPERATOR, ALICE, BOB, CAROL = (Account.from_key(k).address for k in DEV_KEYS[:4])
KEYS = dict(zip((OPERATOR, ALICE, BOB, CAROL), DEV_KEYS[:4], strict=True))


def cast_call(url: str, to: str, signature: str, *args: str) -> int | str:
    """One view call through `cast`; a number (cast may append a "[1e18]" hint) or an address."""
    out = subprocess.run([str(binary("cast")), "call", to, signature, *args, "--rpc-url", url],
                         capture_output=True, text=True, check=True).stdout.strip()
    first = out.split()[0]
    return first if first.startswith("0x") else int(first)


class Cli:
    def __init__(self, url: str, data: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.base = ["--rpc", url, "--data-dir", str(data), "--json"]
        self.monkeypatch, self.capsys = monkeypatch, capsys

    def __call__(self, *args: str, signers: tuple[str, ...] = (OPERATOR,), status: int = 0) -> Any:
        self.monkeypatch.setenv("CHAINABS_PRIVATE_KEY", ",".join(KEYS[s] for s in signers))
        code = main([*self.base, *args])
        captured = self.capsys.readouterr()
        assert code == status, captured.err
        assert not any(k[2:] in captured.out + captured.err for k in DEV_KEYS)
        return json.loads(captured.out.strip().splitlines()[-1])


def test_a_deal_lives_on_anvil_and_the_api_agrees_with_cast(anvil: Anvil, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CHAINABS_DATA_DIR", raising=False)
    tape = tmp_path / "tape.csv"
    write_tape(tape, 200, 7, "csv")
    data = tmp_path / "data"
    run = Cli(anvil.url, data, monkeypatch, capsys)
    url = anvil.url

    pool = run("pool", "create", "--tape", str(tape), "--deal", str(DEAL))
    assert pool["minted_now"] == pool["eligible"] > 150
    deal = run("deal", "create", "--deal", str(DEAL))
    contracts = deal["contracts"]
    tranche = {s: contracts[f"TrancheToken:{s}"] for s in ("CABS-A", "CABS-B", "CABS-C")}
    face_a, face_b = deal["faces"]["CABS-A"], deal["faces"]["CABS-B"]
    run("investors", "add", ALICE, BOB, CAROL)
    for who in (ALICE, BOB):
        run("fund", who, str(face_a))
    run("subscribe", "--investor", ALICE, "--tranche", "CABS-A", "--units", str(face_a // 2), signers=(ALICE,))
    run("subscribe", "--investor", ALICE, "--tranche", "1", "--units", str(face_b // 4), signers=(ALICE,))
    run("subscribe", "--investor", BOB, "--tranche", "CABS-A", "--units", str(face_a // 4), signers=(BOB,))
    # an investor cannot sign for another: the node would need the other's key
    refused = run("subscribe", "--investor", BOB, "--tranche", "0", "--units", "1", signers=(ALICE,), status=1)
    assert refused["error"] == f"no signing key for account {BOB}"
    run("close")
    run("transfer", "--from", ALICE, "--to", CAROL, "--tranche", "0", "--units", str(face_a // 10), signers=(ALICE,))
    # a trade needs the seller's signed order and the buyer's payment: both keys, seller's first
    run("trade", "--seller", ALICE, "--buyer", BOB, "--tranche", "CABS-A", "--units", "5000000", "--price", "4950000",
        signers=(ALICE, BOB))
    sim = run("simulate", "--periods", "3", "--cdr", "0.08", "--cpr", "0.1", "--seed", "5", "--lag", "1")
    assert [p["period"] for p in sim["periods"]] == [1, 2, 3] and all(p["matches_model"] for p in sim["periods"])
    period = run("period", "show", "2")
    assert period["period"] == 2 and period["pool_balance_end"] == sim["periods"][1]["pool_balance_end"]
    claimable_a = [int(cast_call(url, t, "claimableOf(address)(uint256)", ALICE)) for t in tranche.values()]
    assert claimable_a[0] > 0
    claimed = run("claim", "--holder", ALICE, signers=(ALICE,))
    assert claimed["claimed"] == sum(claimable_a)
    loans = json.loads((data / "pools" / "consumer-loans-2026-1" / "loans.json").read_text())
    loan_id = loans[42][0]
    proof = run("proof", loan_id)
    assert proof["verified_on_chain"] is True
    indexed = run("index", "--once")
    assert indexed["indexed_head"] == indexed["chain_head"] and indexed["events"] > pool["eligible"]
    verdict = run("audit", "verify")
    assert verdict["verify"] == "PASS", [c for c in verdict["checks"] if c["ok"] is False]

    # the audit API over the same data dir and node, against the chain as cast reads it
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[0])
    app = create_app(Settings(data_dir=data, rpc=url))
    with TestClient(app) as client:
        assert client.get("/health").json()["lag"] == 0
        for holder in (OPERATOR, ALICE, BOB, CAROL):
            body = client.get(f"/investors/{holder}/holdings").json()
            held = {h["token"]: h for h in body["holdings"]}
            for k, (symbol, token) in enumerate(tranche.items()):
                units = cast_call(url, token, "balanceOf(address)(uint256)", holder)
                entry = held.get(token)
                assert (int(entry["units"]) if entry else 0) == units, (holder, symbol)
                if entry:
                    assert entry["claimable"] == cast_call(url, token, "claimableOf(address)(uint256)", holder)
                    assert entry["outstanding_principal"] == cast_call(
                        url, contracts["Deal"], "principalOf(uint256,address)(uint256)", str(k), holder)
            cash = held.get(contracts["SettlementToken"])
            assert (int(cash["amount"]) if cash else 0) == cast_call(
                url, contracts["SettlementToken"], "balanceOf(address)(uint256)", holder)
        alice = {h["token"]: h for h in client.get(f"/investors/{ALICE}/holdings").json()["holdings"]}
        assert int(alice[tranche["CABS-A"]]["units"]) == face_a // 2 - face_a // 10 - 5_000_000
        assert alice[tranche["CABS-A"]]["claimed"] == claimable_a[0] and alice[tranche["CABS-A"]]["claimable"] == 0

        # the loan: its proof, and the token's owner and the pool's count as the chain has them
        pool_address, loan_token = pool["pool"], json.loads(
            next(data.glob("deployment-*.json")).read_text())["contracts"]["LoanToken"]
        api_proof = client.get(f"/pools/{pool_address}/loans/{loan_id}/proof").json()
        assert api_proof["verified_on_chain"] is True and api_proof["root"] == proof["root"]
        assert int(api_proof["token_id"], 16) == merkle.token_id(pool_address, loan_id)
        assert cast_call(url, pool_address, "loanRoot()(bytes32)") == api_proof["root"]
        owner = cast_call(url, loan_token, "ownerOf(uint256)(address)", str(int(api_proof["token_id"], 16)))
        assert str(owner).lower() == pool_address.lower()
        pool_holdings = {h["token"]: h for h in client.get(f"/investors/{pool_address}/holdings").json()["holdings"]}
        assert int(pool_holdings[loan_token]["amount"]) == len(loans) == cast_call(
            url, loan_token, "balanceOf(address)(uint256)", pool_address)
        received = client.get(f"/investors/{pool_address}/transfers",
                              params={"token": loan_token, "limit": 500}).json()
        assert [t["token_id"] for t in received["items"] if t["direction"] == "in"].count(
            str(merkle.token_id(pool_address, loan_id))) == 1
