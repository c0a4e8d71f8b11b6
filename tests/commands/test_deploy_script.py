"""scripts/deploy.py against a real Anvil node: a whole deal from a tape and a deal file, the
key from the environment or an encrypted keystore, a manifest written once and checked
against the code on chain, and a data dir the `chainabs` CLI can carry on with."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from eth_account import Account

from chainabs.chain import RawCall, RpcChain
from chainabs.chain.anvil import DEV_KEYS, Anvil
from chainabs.cli import main as cli
from chainabs.dealfile import ROLE_KEYS
from chainabs.deploy import artifact_code_hash, verify_code
from chainabs.errors import DeploymentError
from support import tape_file

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]
DEAL = ROOT / "examples" / "deal.toml"


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, with its repository root (deployments/, .chainabs/) in tmp_path."""
    spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "scripts" / "deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    for name in ("CHAINABS_PRIVATE_KEY", "CHAINABS_KEYSTORE_PASSWORD", "CHAINABS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return module


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tape_file(tmp_path_factory, 80, 11)


def test_a_whole_deal_is_deployed_recorded_and_usable_by_the_cli(
        anvil: Anvil, script: ModuleType, tape: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[1])
    chain = RpcChain(anvil.url, keys=[DEV_KEYS[1]])
    first_block = chain.block_number() + 1
    assert script.main(["--rpc", anvil.url, "--name", "deal-1", "--tape", str(tape), "--deal", str(DEAL)]) == 0
    captured = capsys.readouterr()
    assert DEV_KEYS[1][2:] not in captured.out + captured.err
    summary = json.loads(captured.out)
    out = tmp_path / "deployments" / "deal-1.json"
    assert summary["manifest"] == str(out)

    manifest = json.loads(out.read_text())
    contracts = manifest["contracts"]
    assert manifest["chain_id"] == 31337 == chain.chain_id
    assert manifest["deployer"] == chain.accounts[0]
    assert manifest["deployment_block"] == first_block
    assert set(contracts) == {"LoanToken", "SettlementToken", "LoanPool", "Deal", "InvestorRegistry",
                              "TrancheExchange", "TrancheToken:CABS-A", "TrancheToken:CABS-B", "TrancheToken:CABS-C",
                              "AdminTimelock:deal", "AdminTimelock:tokens", "AdminTimelock:registry"}
    assert manifest["artifact_hashes"] == {name.split(":")[0]: artifact_code_hash(name.split(":")[0])
                                           for name in contracts}
    # no [roles] in the deal file: the deploying account holds every role, and the manifest says so
    assert manifest["roles"] == dict.fromkeys(ROLE_KEYS, chain.accounts[0])

    # what the manifest names is what is on chain, wired together
    from chainabs.deploy import Manifest

    assert verify_code(chain, Manifest(**manifest)) == []
    deal = chain.contract("Deal", contracts["Deal"])
    assert chain.call(deal.functions.loanPool()) == contracts["LoanPool"]
    assert chain.call(deal.functions.registry()) == contracts["InvestorRegistry"]
    assert chain.call(deal.functions.tokens()) == [contracts[f"TrancheToken:CABS-{x}"] for x in "ABC"]
    # each admin seat is its own timelock; the pool is pledged to this deal
    token = chain.contract("TrancheToken", contracts["TrancheToken:CABS-A"])
    registry = chain.contract("InvestorRegistry", contracts["InvestorRegistry"])
    for seat, contract in (("deal", deal), ("tokens", token), ("registry", registry)):
        assert chain.call(contract.functions.defaultAdmin()) == contracts[f"AdminTimelock:{seat}"]
    assert chain.call(chain.contract("LoanPool", contracts["LoanPool"]).functions.deal()) == contracts["Deal"]
    pool = chain.contract("LoanPool", contracts["LoanPool"])
    assert chain.call(pool.functions.mintedCount()) == summary["pool"]["loans"] > 0
    exchange = chain.contract("TrancheExchange", contracts["TrancheExchange"])
    assert chain.call(exchange.functions.deal()) == contracts["Deal"]
    assert sum(summary["tranches"].values()) == summary["pool"]["outstanding_units"]

    # the data dir carries on with the CLI: the deal's offering is open, proofs verify on chain
    data = tmp_path / ".chainabs" / "deal-1"
    assert summary["data_dir"] == str(data)
    loans = json.loads((data / "pools" / "consumer-loans-2026-1" / "loans.json").read_text())
    base = ["--rpc", anvil.url, "--data-dir", str(data), "--json"]
    assert cli([*base, "proof", loans[3][0]]) == 0
    assert json.loads(capsys.readouterr().out)["verified_on_chain"] is True
    assert cli([*base, "fund", chain.accounts[0], "1000"]) == 0
    assert cli([*base, "subscribe", "--investor", chain.accounts[0], "--tranche", "CABS-A", "--units", "1000"]) == 0
    capsys.readouterr()
    token_a = chain.contract("TrancheToken", contracts["TrancheToken:CABS-A"])
    assert chain.call(token_a.functions.balanceOf(chain.accounts[0])) == 1000

    # never twice: the manifest stays as it was and nothing is sent
    before, head = out.read_text(), chain.block_number()
    assert script.main(["--rpc", anvil.url, "--name", "deal-1", "--tape", str(tape), "--deal", str(DEAL)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_text() == before and chain.block_number() == head


def test_a_second_run_over_the_same_data_dir_resumes_without_deploying_again(
        anvil: Anvil, script: ModuleType, tape: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[2])
    data = tmp_path / "ops"
    args = ["--rpc", anvil.url, "--data-dir", str(data), "--tape", str(tape), "--deal", str(DEAL)]
    assert script.main([*args, "--name", "first"]) == 0
    first = json.loads(capsys.readouterr().out)
    chain = RpcChain(anvil.url, keys=[DEV_KEYS[2]])
    nonce = chain.w3.eth.get_transaction_count(chain.accounts[0])
    assert script.main([*args, "--name", "again"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["contracts"] == first["contracts"]
    assert again["pool"]["minted_now"] == 0
    assert chain.w3.eth.get_transaction_count(chain.accounts[0]) == nonce  # not one transaction sent

    # a data dir whose recorded code is not what the chain holds is refused, and no manifest written
    core_path = data / "deployment-31337.json"
    core = json.loads(core_path.read_text())
    core["contracts"]["LoanToken"], core["contracts"]["SettlementToken"] = (core["contracts"]["SettlementToken"],
                                                                            core["contracts"]["LoanToken"])
    core_path.write_text(json.dumps(core))
    assert script.main([*args, "--name", "tampered"]) == 1
    err = capsys.readouterr().err
    assert "code on chain does not match the artifact" in err and err.count("\n") == 1
    assert not (tmp_path / "deployments" / "tampered.json").exists()


def test_the_key_comes_from_an_encrypted_keystore(anvil: Anvil, script: ModuleType, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(DEV_KEYS[3], "s3cret pass", kdf="pbkdf2", iterations=1000)))
    args = ["--rpc", anvil.url, "--name", "core-only", "--keystore", str(keystore)]

    monkeypatch.setenv("CHAINABS_KEYSTORE_PASSWORD", "wrong")
    assert script.main(args) == 1
    err = capsys.readouterr().err
    assert err == f"error: {keystore}: wrong password or not a keystore file\n"

    monkeypatch.setenv("CHAINABS_KEYSTORE_PASSWORD", "s3cret pass")
    assert script.main(args) == 0
    captured = capsys.readouterr()
    assert DEV_KEYS[3][2:] not in captured.out + captured.err and "s3cret" not in captured.out + captured.err
    manifest = json.loads((tmp_path / "deployments" / "core-only.json").read_text())
    assert manifest["deployer"] == Account.from_key(DEV_KEYS[3]).address
    assert set(manifest["contracts"]) == {"LoanToken", "SettlementToken"}
    chain = RpcChain(anvil.url, keys=[DEV_KEYS[3]])
    token = chain.contract("LoanToken", manifest["contracts"]["LoanToken"])
    assert chain.call(token.functions.hasRole(bytes(32), manifest["deployer"])) is True


def test_the_first_of_several_keys_deploys(script: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """CHAINABS_PRIVATE_KEY as the CLI reads it: one key, or several separated by commas (the
    first deploys; the others can sign as roles the deal file's [roles] gives them)."""
    args = argparse.Namespace(keystore=None)
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", f" {DEV_KEYS[2]} , {DEV_KEYS[3]}")
    assert script.load_keys(args) == [DEV_KEYS[2], DEV_KEYS[3]]
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", " , ")
    with pytest.raises(DeploymentError, match="no key: set CHAINABS_PRIVATE_KEY"):
        script.load_keys(args)


def test_a_deal_files_roles_are_deployed_and_named_in_the_manifest(
        anvil: Anvil, script: ModuleType, tape: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """[roles] gives each seat and role its own account; deploy.py signs as compliance and
    operator with the extra keys it is given, and the manifest names who holds what."""
    deployer = Account.from_key(DEV_KEYS[0]).address
    signers = [Account.create() for _ in range(2)]  # compliance and operator, funded for gas below
    funder = RpcChain(anvil.url, keys=[DEV_KEYS[0]])
    for acct in signers:
        funder.send(RawCall(to=acct.address, data=b""), sender=funder.accounts[0], value=10**18, gas=21_000)
    compliance, operator = (a.address for a in signers)
    others = [Account.create().address for _ in range(7)]  # no key needed: deal create never signs as them
    chosen = {"compliance": compliance, "operator": operator,
              **dict(zip([k for k in ROLE_KEYS if k not in ("compliance", "operator")], others, strict=True))}
    deal = tmp_path / "deal.toml"
    deal.write_text(DEAL.read_text() + "\n[roles]\n" + "".join(f'{k} = "{v}"\n' for k, v in chosen.items()))
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", ",".join([DEV_KEYS[0], *("0x" + a.key.hex().removeprefix("0x")
                                                                      for a in signers)]))
    assert script.main(["--rpc", anvil.url, "--name", "roles", "--tape", str(tape), "--deal", str(deal)]) == 0
    summary = json.loads(capsys.readouterr().out)
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert manifest["deployer"] == deployer
    assert manifest["roles"] == chosen
    chain = RpcChain(anvil.url, keys=[])
    contracts = manifest["contracts"]
    deal_c = chain.contract("Deal", contracts["Deal"])
    registry = chain.contract("InvestorRegistry", contracts["InvestorRegistry"])
    token = chain.contract("TrancheToken", contracts["TrancheToken:CABS-A"])
    roles = manifest["roles"]
    for seat, key in (("deal", "admin"), ("tokens", "token_admin"), ("registry", "registry_admin")):
        timelock = chain.contract("AdminTimelock", contracts[f"AdminTimelock:{seat}"])
        proposer = chain.call(timelock.functions.PROPOSER_ROLE())
        assert chain.call(timelock.functions.hasRole(proposer, roles[key]))
        assert not chain.call(timelock.functions.hasRole(proposer, deployer))
    for contract, role, key in ((deal_c, "OPERATOR_ROLE", "operator"), (deal_c, "SERVICER_ROLE", "servicer"),
                                (registry, "COMPLIANCE_ROLE", "compliance"), (token, "AGENT_ROLE", "agent")):
        name = chain.call(getattr(contract.functions, role)())
        assert chain.call(contract.functions.hasRole(name, roles[key]))
        assert not chain.call(contract.functions.hasRole(name, deployer))
    assert chain.call(deal_c.functions.feeRecipient()) == roles["fee_recipient"]
    assert chain.call(deal_c.functions.originator()) == roles["originator"]


@pytest.mark.parametrize(("extra", "env", "message"), [
    ([], {}, "no key: set CHAINABS_PRIVATE_KEY or pass --keystore FILE"),
    (["--tape", "t.csv"], {"CHAINABS_PRIVATE_KEY": DEV_KEYS[4]}, "--tape and --deal go together"),
    (["--chain-id", "1"], {"CHAINABS_PRIVATE_KEY": DEV_KEYS[4]}, "is chain 31337, expected 1"),
    ([], {"CHAINABS_PRIVATE_KEY": "0x1234"}, "the private key is malformed"),
    (["--keystore", "missing.json"], {}, "missing.json: cannot read the keystore"),
])
def test_bad_input_is_one_sentence_and_deploys_nothing(anvil: Anvil, script: ModuleType, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], extra: list[str],
                                                       env: dict[str, str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    head = RpcChain(anvil.url, keys=[]).block_number()
    assert script.main(["--rpc", anvil.url, "--name", "bad", *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert RpcChain(anvil.url, keys=[]).block_number() == head
    assert not (tmp_path / "deployments").exists()
