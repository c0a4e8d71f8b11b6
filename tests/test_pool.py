"""Tokenisation: a tape becomes loan tokens in a pool, with commitments, proofs and resumption."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_utils import keccak

from chainabs import merkle
from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.cli import main
from chainabs.context import Context
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, TapeError
from chainabs.pool import OWNERS_SLOT, create_pool, find_pool, verify_proof_on_chain
from chainabs.tape import Eligibility, apply_eligibility, read_tape
from chainabs.tapegen import write_tape

MINTER_ROLE = keccak(text="MINTER_ROLE")
ORIGINATOR_ROLE = keccak(text="ORIGINATOR_ROLE")


@pytest.fixture
def ctx(chain: EmbeddedChain, core: Manifest, tmp_path: Path) -> Context:
    data = tmp_path / "data"
    data.mkdir()
    return Context(data_dir=data, chain=chain, core=core, manifest_path=tmp_path / "deployment.json")


@pytest.fixture(scope="session")
def tape_300(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tapes") / "t300.csv"
    write_tape(path, 300, 7, "csv")
    return path


def test_owners_slot_matches_the_compiled_storage_layout() -> None:
    layout = {e["label"]: int(e["slot"]) for e in load_artifact("LoanToken")["storageLayout"]["storage"]}
    assert layout["_owners"] == OWNERS_SLOT


def test_a_tape_becomes_loan_tokens_in_a_pool(ctx: Context, tape_300: Path) -> None:
    report = create_pool(ctx, tape_path=tape_300, name="Pool One")
    eligible, rejected = apply_eligibility(read_tape(tape_300).loans, Eligibility())
    assert report.eligible == len(eligible) and report.minted_now == len(eligible)
    assert report.loans == 300 and sum(report.ineligible.values()) == len(rejected) > 0
    assert report.outstanding_units == sum(x.outstanding_units for x in eligible)
    assert 24_000 < report.gas_per_loan < 27_000

    chain = ctx.chain
    pool = chain.contract("LoanPool", report.pool)
    token = chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    assert pool.functions.mintedCount().call() == pool.functions.loanCount().call() == len(eligible)
    assert pool.functions.filled().call() is True
    assert pool.functions.outstandingUnits().call() == report.outstanding_units
    assert "0x" + pool.functions.loanRoot().call().hex() == report.root
    assert token.functions.balanceOf(report.pool).call() == len(eligible)
    for loan in eligible[:5] + eligible[-5:]:
        assert token.functions.ownerOf(merkle.token_id(loan.loan_id)).call() == report.pool
    for loan, _ in rejected[:3]:
        with pytest.raises(ContractRevert) as info:
            chain.call(token.functions.ownerOf(merkle.token_id(loan.loan_id)))
        assert info.value.name == "ERC721NonexistentToken"


def test_mint_events_commit_each_token_to_its_loan_hash(ctx: Context, tape_300: Path) -> None:
    report = create_pool(ctx, tape_path=tape_300, name="Events", batch_size=100)
    token = ctx.chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    # this pool's commitments only: other tests' pools may be on the session chain
    logs = [c for c in token.events.LoansCommitted.get_logs(from_block=0) if c["args"]["pool"] == report.pool]
    ids = [i for log in logs for i in log["args"]["tokenIds"]]
    hashes = [h for log in logs for h in log["args"]["loanHashes"]]
    assert len(logs) == report.batches == 3
    files = find_pool(ctx.data_dir, "Events")
    salt = bytes.fromhex((files.folder / "salt").read_text())
    eligible, _ = apply_eligibility(read_tape(tape_300).loans, Eligibility())
    assert ids == [merkle.token_id(x.loan_id) for x in eligible]
    assert hashes == [merkle.loan_hash(x, salt) for x in eligible]
    transfers = [t for t in token.events.Transfer.get_logs(from_block=0) if t["args"]["to"] == report.pool]
    assert [t["args"]["tokenId"] for t in transfers] == ids
    assert {t["args"]["from"] for t in transfers} == {"0x" + "0" * 40}


def test_proofs_verify_on_chain_and_tampering_fails(ctx: Context, tape_300: Path) -> None:
    create_pool(ctx, tape_path=tape_300, name="Proofs")
    files = find_pool(ctx.data_dir)
    for row in files.rows[:3] + files.rows[-2:]:
        proof = files.proof(row.loan_id)
        assert merkle.verify(bytes.fromhex(proof.leaf[2:]), [bytes.fromhex(p[2:]) for p in proof.proof],
                             bytes.fromhex(proof.root[2:]))
        assert verify_proof_on_chain(ctx, files, proof) is True
        assert "borrower_ref" not in json.dumps(proof.as_dict())
    proof.leaf = "0x" + keccak(b"not a loan").hex()
    assert verify_proof_on_chain(ctx, files, proof) is False


def test_interrupted_minting_resumes_without_duplicates(ctx: Context, tape_300: Path) -> None:
    first = create_pool(ctx, tape_path=tape_300, name="Resume", batch_size=40, stop_after_batches=2)
    assert first.minted_now == 80
    pool = ctx.chain.contract("LoanPool", first.pool)
    assert pool.functions.mintedCount().call() == 80 and pool.functions.filled().call() is False
    second = create_pool(ctx, tape_path=tape_300, name="Resume", batch_size=40)
    assert second.pool == first.pool and second.root == first.root
    assert second.minted_now == first.eligible - 80
    assert pool.functions.filled().call() is True
    again = create_pool(ctx, tape_path=tape_300, name="Resume")
    assert again.minted_now == 0 and again.batches == 0
    token = ctx.chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    assert token.functions.balanceOf(first.pool).call() == first.eligible


def test_a_loan_tokenised_in_another_pool_is_a_tape_error(ctx: Context, tape_300: Path, tmp_path: Path) -> None:
    create_pool(ctx, tape_path=tape_300, name="First")
    lines = tape_300.read_text().splitlines()
    other = tmp_path / "other.csv"
    other.write_text("\n".join([lines[0], lines[1].replace("L0000001", "X0000001"), lines[2]]) + "\n")
    dup_id = lines[2].split(",")[0]
    block = ctx.chain.block_number()
    with pytest.raises(TapeError) as info:
        create_pool(ctx, tape_path=other, name="Second")
    errors = [e for e in info.value.errors if e.value == dup_id]
    assert errors and errors[0].line == 3 and errors[0].column == "loan_id"
    assert errors[0].reason == "already tokenised on chain"
    assert ctx.chain.block_number() == block  # nothing reached the chain


def test_a_malformed_tape_changes_nothing(ctx: Context, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("loan_id,borrower_ref\nL1,B1\n")
    block = ctx.chain.block_number()
    with pytest.raises(TapeError):
        create_pool(ctx, tape_path=bad, name="Bad")
    assert ctx.chain.block_number() == block
    assert not (ctx.data_dir / "pools" / "bad" / "pool.json").exists()


def test_the_salt_is_private_and_never_printed(ctx: Context, tape_300: Path, capsys: pytest.CaptureFixture[str]) -> None:
    create_pool(ctx, tape_path=tape_300, name="Salted")
    salt_file = ctx.data_dir / "pools" / "salted" / "salt"
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    salt = salt_file.read_text().strip()
    for name in ("pool.json", "loans.json", "tree.json"):
        assert salt not in (salt_file.parent / name).read_text()
    assert salt not in capsys.readouterr().out


def test_role_checks_on_every_mutating_function(chain: EmbeddedChain, core: Manifest) -> None:
    admin, stranger = chain.accounts[0], chain.accounts[5]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    pool = chain.deploy("LoanPool", token.address, admin, admin, "Roles", "EUR")
    calls = [
        pool.functions.commitTape(b"\x01" * 32, 1, 1, 1),
        pool.functions.mintLoans(b"\x02L1", [b"\x03" * 32]),
        pool.functions.grantRole(ORIGINATOR_ROLE, stranger),
        token.functions.mintBatch(stranger, b"\x02L1", [b"\x03" * 32]),
        token.functions.grantRole(MINTER_ROLE, stranger),
    ]
    for fn in calls:
        with pytest.raises(ContractRevert) as info:
            chain.send(fn, sender=stranger)
        assert info.value.name == "AccessControlUnauthorizedAccount", fn.fn_name


def test_pool_rules_are_enforced(chain: EmbeddedChain, core: Manifest) -> None:
    admin = chain.accounts[0]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    pool = chain.deploy("LoanPool", token.address, admin, admin, "Rules", "EUR")
    chain.send(token.functions.grantRole(MINTER_ROLE, pool.address))

    def revert_name(fn) -> str:
        with pytest.raises(ContractRevert) as info:
            chain.send(fn)
        return info.value.name

    assert revert_name(pool.functions.mintLoans(b"\x02L1", [b"\x03" * 32])) == "TapeNotCommitted"
    assert revert_name(pool.functions.commitTape(b"\x00" * 32, 1, 1, 1)) == "InvalidTapeCommitment"
    chain.send(pool.functions.commitTape(b"\x01" * 32, 2, 10, 20))
    assert revert_name(pool.functions.commitTape(b"\x01" * 32, 2, 10, 20)) == "TapeAlreadyCommitted"
    assert revert_name(pool.functions.mintLoans(b"", [])) == "EmptyBatch"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L2\x02L3", [b"\x03" * 32] * 3)) == "TooManyLoans"
    assert revert_name(pool.functions.mintLoans(b"\x05L1", [b"\x03" * 32])) == "MalformedLoanIds"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L2", [b"\x03" * 32])) == "MalformedLoanIds"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L1", [b"\x03" * 32] * 2)) == "LoanAlreadyTokenised"
    chain.send(pool.functions.mintLoans(b"\x02L1\x02L2", [b"\x03" * 32] * 2))
    assert pool.functions.filled().call() is True


def test_loan_tokens_behave_as_erc721(chain: EmbeddedChain, core: Manifest) -> None:
    admin, alice, bob, carol = chain.accounts[:4]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    chain.send(token.functions.grantRole(MINTER_ROLE, admin))
    chain.send(token.functions.mintBatch(alice, b"\x03ERC\x04ERC2", [b"\x01" * 32, b"\x02" * 32]))
    tid = merkle.token_id("ERC")
    assert token.functions.tokenIdOf("ERC").call() == tid
    assert token.functions.ownerOf(tid).call() == alice and token.functions.balanceOf(alice).call() == 2
    for iface in ("80ac58cd", "01ffc9a7", "5b5e139f", "7965db0b"):
        assert token.functions.supportsInterface(bytes.fromhex(iface)).call() is True
    assert token.functions.supportsInterface(bytes.fromhex("ffffffff")).call() is False
    with pytest.raises(ContractRevert) as info:
        chain.send(token.functions.transferFrom(alice, bob, tid), sender=bob)
    assert info.value.name == "ERC721InsufficientApproval"
    chain.send(token.functions.approve(bob, tid), sender=alice)
    sent = chain.send(token.functions.transferFrom(alice, carol, tid), sender=bob)
    event = token.events.Transfer().process_receipt(sent.receipt)[0]["args"]
    assert (event["from"], event["to"], event["tokenId"]) == (alice, carol, tid)
    assert token.functions.ownerOf(tid).call() == carol
    assert token.functions.balanceOf(alice).call() == 1 and token.functions.balanceOf(carol).call() == 1
    assert token.functions.tokenised([tid, merkle.token_id("nope"), merkle.token_id("ERC2")]).call() == [0, 2]


def test_cli_pool_create_then_proof_across_processes(tmp_path: Path, tape_300: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Each CLI run reopens the embedded chain from its journal in the data dir."""
    data = tmp_path / "cli"
    deal = Path(__file__).resolve().parents[1] / "examples" / "pool.toml"
    assert main(["--data-dir", str(data), "--json", "pool", "create", "--tape", str(tape_300), "--deal", str(deal)]) == 0
    created = json.loads(capsys.readouterr().out)
    loan_id = json.loads((data / "pools" / "consumer-loans-2026-1" / "loans.json").read_text())[0][0]
    assert main(["--data-dir", str(data), "--json", "proof", loan_id]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert proof["verified_on_chain"] is True and proof["root"] == created["root"]
    assert main(["--data-dir", str(data), "proof", "NOT-A-LOAN"]) == 1
    assert "is not in pool" in capsys.readouterr().err


def test_pool_create_killed_with_sigkill_resumes_to_the_same_root(tmp_path: Path) -> None:
    """A real kill -9 of the CLI in the middle of minting; the rerun mints exactly the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tape = tmp_path / "t.csv"
    write_tape(tape, 1500, 11, "csv")
    data = tmp_path / "data"
    deal = Path(__file__).resolve().parents[1] / "examples" / "pool.toml"
    cmd = [sys.executable, "-m", "chainabs.cli", "--data-dir", str(data), "--json", "pool", "create",
           "--tape", str(tape), "--deal", str(deal), "--batch-size", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = data / "chain" / "journal.bin"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or journal.stat().st_size < 60_000):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert 0 < report["minted_now"] < report["eligible"]  # it resumed, it did not start over
    ctx_chain = EmbeddedChain(state_dir=data / "chain")
    pool = ctx_chain.contract("LoanPool", report["pool"])
    assert pool.functions.mintedCount().call() == report["eligible"] and pool.functions.filled().call()
    assert "0x" + pool.functions.loanRoot().call().hex() == report["root"]
    token_addr = json.loads(next(data.glob("deployment-*.json")).read_text())["contracts"]["LoanToken"]
    assert ctx_chain.contract("LoanToken", token_addr).functions.balanceOf(report["pool"]).call() == report["eligible"]
