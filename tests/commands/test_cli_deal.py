"""A three-tranche deal issued to several investors through the CLI, as an operator would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainabs import deal as D
from chainabs.cli import main
from chainabs.context import open_context
from chainabs.service import open_deal
from chainabs.tapegen import write_tape

ROOT = Path(__file__).resolve().parents[2]
A1 = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
A2 = "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"
STRANGER = "0xe1AB8145F7E55DC933d51a18c793F901A3A0b276"


def test_deal_life_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tape = tmp_path / "tape.csv"
    write_tape(tape, 300, 5, "csv")
    base = ["--data-dir", str(tmp_path / "data")]

    def run(*args: str) -> tuple[int, str, str]:
        status = main([*base, *args])
        out = capsys.readouterr()
        return status, out.out, out.err

    deal = str(ROOT / "examples" / "deal.toml")
    assert run("pool", "create", "--tape", str(tape), "--deal", deal)[0] == 0
    status, out, _ = run("--json", "deal", "create", "--deal", deal)
    assert status == 0
    faces = json.loads(out)["faces"]
    assert run("investors", "add", A1, A2)[0] == 0
    for who in (A1, A2):
        assert run("fund", who, str(faces["CABS-A"]))[0] == 0
    assert run("subscribe", "--investor", A1, "--tranche", "CABS-A", "--units", str(faces["CABS-A"] // 2))[0] == 0
    assert run("subscribe", "--investor", A2, "--tranche", "1", "--units", str(faces["CABS-B"]))[0] == 0
    status, _, err = run("subscribe", "--investor", A2, "--tranche", "1", "--units", "1")
    assert status == 1 and "ExceedsFace" in err
    assert run("close")[0] == 0
    assert run("transfer", "--from", A1, "--to", A2, "--tranche", "0", "--units", "1000")[0] == 0
    status, _, err = run("transfer", "--from", A1, "--to", STRANGER, "--tranche", "0", "--units", "1")
    assert status == 1 and "TransferRestricted(code=3)" in err
    assert run("trade", "--seller", A1, "--buyer", A2, "--tranche", "CABS-A", "--units", "500", "--price", "495")[0] == 0
    status, out, _ = run("--json", "simulate", "--periods", "3", "--seed", "2")
    periods = json.loads(out)["periods"]
    assert [p["period"] for p in periods] == [1, 2, 3] and all(p["matches_model"] for p in periods)
    status, out, _ = run("--json", "claim", "--holder", A2)
    assert status == 0 and json.loads(out)["claimed"] > 0
    assert run("investors", "freeze", A2)[0] == 0
    status, _, err = run("transfer", "--from", A2, "--to", A1, "--tranche", "0", "--units", "1")
    assert status == 1 and "TransferRestricted(code=4)" in err
    status, out, _ = run("--json", "audit", "verify")
    assert status == 0 and json.loads(out)["verify"] == "PASS"


def test_a_deal_settles_in_the_token_its_deal_file_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pool.settlement_token`: the deal pays and is paid in that ERC-20, once it is checked to be
    one on this chain with the pool's decimals; a wrong address deploys nothing."""
    tape = tmp_path / "tape.csv"
    write_tape(tape, 60, 5, "csv")
    data = tmp_path / "data"
    deal_text = (ROOT / "examples" / "deal.toml").read_text()
    assert main(["--data-dir", str(data), "pool", "create", "--tape", str(tape), "--deal",
                 str(ROOT / "examples" / "deal.toml")]) == 0
    ctx = open_context(data_dir=data, create=False)
    admin = ctx.chain.accounts[0]
    euro = ctx.chain.deploy("SettlementToken", "Euro Coin", "EURC", 6, admin, sender=admin)
    odd = ctx.chain.deploy("SettlementToken", "Odd Coin", "ODD", 2, admin, sender=admin)
    ctx.chain.send(euro.functions.mint(A1, 10**15), sender=admin)
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    capsys.readouterr()

    def deal_file(token: str) -> str:
        path = tmp_path / f"deal-{token[:8]}.toml"
        path.write_text(deal_text.replace('# settlement_token = "0x..."', f'settlement_token = "{token}"'))
        assert f'settlement_token = "{token}"' in path.read_text()
        return str(path)

    for token, words in ((A2, f"pool.settlement_token {A2}: no contract at that address"),
                         (odd.address, "has 2 decimals; the deal file's pool.decimals is 6")):
        assert main(["--data-dir", str(data), "deal", "create", "--deal", deal_file(token)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err and err.count("\n") == 1
        assert not (data / "deals").exists() or not list((data / "deals").glob("*.json"))

    assert main(["--data-dir", str(data), "deal", "create", "--deal", deal_file(euro.address)]) == 0
    assert main(["--data-dir", str(data), "investors", "add", A1]) == 0
    assert main(["--data-dir", str(data), "subscribe", "--investor", A1, "--tranche", "0", "--units", "1000"]) == 0
    ctx = open_context(data_dir=data, create=False)
    handle, _ = open_deal(ctx)
    assert handle.settlement.address == euro.address
    assert ctx.chain.call(handle.deal.functions.settlement()) == euro.address
    assert ctx.chain.call(handle.settlement.functions.balanceOf(A1)) == 10**15 - 1000
    assert ctx.chain.call(handle.token(0).functions.balanceOf(A1)) == 1000
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main(["--data-dir", str(data), "--json", "audit", "verify"]) == 0  # its cash checks follow EURC
    assert json.loads(capsys.readouterr().out)["verify"] == "PASS"


def test_an_interrupted_deal_creation_is_finished_not_repeated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the contracts are deployed: the next `deal create` finishes that deal (tokens
    attached, originator registered, offering open) instead of deploying a second one."""
    tape = tmp_path / "tape.csv"
    write_tape(tape, 40, 6, "csv")
    data = tmp_path / "data"
    deal_file = str(ROOT / "examples" / "deal.toml")
    assert main(["--data-dir", str(data), "pool", "create", "--tape", str(tape), "--deal", deal_file]) == 0

    def killed(handle: D.DealHandle, **_: object) -> None:
        raise KeyboardInterrupt  # as if the process died before opening the offering

    monkeypatch.setattr(D, "open_offering", killed)
    assert main(["--data-dir", str(data), "deal", "create", "--deal", deal_file]) == 130
    monkeypatch.undo()
    (partial,) = (data / "deals").glob("*.partial")
    first = json.loads(partial.read_text())["contracts"]
    assert not list((data / "deals").glob("*.json"))  # not a deal yet for the API, the indexer or the CLI
    other = tmp_path / "other.toml"
    other.write_text((ROOT / "examples" / "deal.toml").read_text().replace("servicer_fee_bps = 100",
                                                                           "servicer_fee_bps = 90"))
    assert "servicer_fee_bps = 90" in other.read_text()
    capsys.readouterr()
    assert main(["--data-dir", str(data), "deal", "create", "--deal", str(other)]) == 1
    assert "half-created deal with other terms" in capsys.readouterr().err and partial.exists()
    assert main(["--data-dir", str(data), "--json", "deal", "create", "--deal", deal_file]) == 0
    assert json.loads(capsys.readouterr().out)["contracts"]["Deal"] == first["Deal"]
    assert not partial.exists()
    ctx = open_context(data_dir=data, create=False)
    handle, _ = open_deal(ctx)
    assert handle.deal.address == first["Deal"] and D.phase(handle) == "open"
    assert {t.lower() for t in ctx.chain.call(handle.registry.functions.tokens())} == \
        {t.address.lower() for t in handle.tokens}
    assert D.is_eligible(handle, investor=handle.roles.originator)
    ctx.chain.journal.close()  # type: ignore[attr-defined]
