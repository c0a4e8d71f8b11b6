"""What every backend of `Chain` promises, one suite run against each: the embedded chain
always, an Anvil node where the tests marked `anvil` run (web3.py runs its `module_testing`
suites once per provider the same way). Deploy, call, send, reverts decoded into
`ContractRevert`, nonces under concurrency, snapshots, mining, the log source and the storage
reads; where a backend has a faster path of its own, it answers exactly as the generic one.

Each backend is deployed once per module and reverted to that state after every test."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_utils import keccak
from web3.contract import Contract

from chainabs import merkle
from chainabs.build import load_artifact
from chainabs.chain import Chain, RpcChain, SetProbe
from chainabs.chain.anvil import DEV_KEYS
from chainabs.context import Context
from chainabs.deploy import Manifest, deploy_core, verify_code
from chainabs.errors import ChainError, ContractRevert
from chainabs.pool import CHECK_CHUNK, OWNERS_SLOT, create_pool, find_pool
from chainabs.tape import Eligibility, apply_eligibility, read_tape
from chainabs.tapegen import write_tape

MINTER_ROLE = keccak(text="MINTER_ROLE")


@dataclass(frozen=True)
class Backend:
    """A chain with the core contracts deployed."""

    chain: Chain
    core: Manifest


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def deployed(request: pytest.FixtureRequest) -> Backend:
    if request.param == "embedded":
        return Backend(request.getfixturevalue("session_chain"), request.getfixturevalue("core"))
    chain = RpcChain(request.getfixturevalue("anvil").url, keys=DEV_KEYS[:3])
    return Backend(chain, deploy_core(chain))


@pytest.fixture
def backend(deployed: Backend) -> Iterator[Backend]:
    snap = deployed.chain.snapshot()
    yield deployed
    deployed.chain.revert(snap)


def cash(backend: Backend) -> Contract:
    return backend.chain.contract("SettlementToken", backend.core.contracts["SettlementToken"])


def slot_of(artifact: str, label: str) -> int:
    return next(int(e["slot"]) for e in load_artifact(artifact)["storageLayout"]["storage"] if e["label"] == label)


def mapping_slot(key: int, slot: int) -> int:
    return int.from_bytes(keccak(key.to_bytes(32, "big") + slot.to_bytes(32, "big")), "big")


def test_accounts_sign_and_the_chain_id_is_the_nodes(backend: Backend) -> None:
    chain = backend.chain
    assert chain.chain_id == chain.w3.eth.chain_id
    assert chain.signer().address == chain.accounts[0]
    assert chain.signer(chain.accounts[1].lower()).address == chain.accounts[1]
    with pytest.raises(ChainError, match="no signing key"):
        chain.signer("0x" + "ab" * 20)


def test_deploy_and_call(backend: Backend) -> None:
    chain = backend.chain
    assert verify_code(chain, backend.core) == []
    token = chain.deploy("SettlementToken", "Cash", "C", 6, chain.accounts[0])
    assert bytes(chain.w3.eth.get_code(token.address))
    assert chain.call(token.functions.name()) == "Cash" and chain.call(token.functions.decimals()) == 6


def test_send_mines_and_reports_the_receipt(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    who = chain.accounts[2]
    before = chain.block_number()
    sent = chain.send(token.functions.mint(who, 42))
    assert sent.receipt["status"] == 1 and sent.gas_used > 0
    assert sent.block_number == chain.block_number() == before + 1 == chain.w3.eth.block_number
    assert chain.wait(bytes.fromhex(sent.tx_hash[2:]))["blockNumber"] == sent.block_number
    assert chain.call(token.functions.balanceOf(who)) == 42
    assert chain.call(token.functions.balanceOf(who), block=before) == 0


def test_a_light_receipt_agrees_with_the_full_one(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    light = chain.send(token.functions.mint(chain.accounts[1], 5), logs=False)
    full = chain.w3.eth.get_transaction_receipt(light.tx_hash)
    assert (light.receipt["status"], light.gas_used, light.block_number) == (
        full["status"], full["gasUsed"], full["blockNumber"])


def test_a_revert_found_before_sending_is_decoded(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    stranger = chain.accounts[1]
    nonce = chain.w3.eth.get_transaction_count(stranger)
    with pytest.raises(ContractRevert) as info:
        chain.send(token.functions.mint(stranger, 1), sender=stranger)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    assert info.value.args_["account"].lower() == stranger.lower() and info.value.args_["neededRole"] == MINTER_ROLE
    assert info.value.tx is None and chain.w3.eth.get_transaction_count(stranger) == nonce  # nothing was sent


def test_a_call_revert_is_decoded(backend: Backend) -> None:
    """(A call names no sender: eth-tester makes it its first account, a node the zero address;
    this revert is the same for either.)"""
    chain, token = backend.chain, cash(backend)
    with pytest.raises(ContractRevert) as info:
        chain.call(token.functions.transferFrom(chain.accounts[2], chain.accounts[1], 1))
    assert info.value.name == "ERC20InsufficientAllowance"
    assert info.value.args_["needed"] == 1 and info.value.args_["allowance"] == 0


def test_a_mined_revert_is_decoded_from_the_receipt(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    holder = chain.accounts[2]
    nonce = chain.w3.eth.get_transaction_count(holder)
    with pytest.raises(ContractRevert) as info:
        chain.send(token.functions.transfer(chain.accounts[0], 10), sender=holder, gas=100_000)
    assert info.value.name == "ERC20InsufficientBalance"
    assert info.value.args_["needed"] == 10 and info.value.args_["balance"] == 0
    assert info.value.tx is not None and info.value.tx.startswith("0x")
    assert chain.w3.eth.get_transaction_count(holder) == nonce + 1  # it was mined, and failed


def test_concurrent_sends_from_one_account_take_consecutive_nonces(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    who, n = chain.accounts[1], 8
    nonce = chain.w3.eth.get_transaction_count(chain.accounts[0])
    with ThreadPoolExecutor(max_workers=n) as pool:
        sent = list(pool.map(lambda _: chain.send(token.functions.mint(who, 1)), range(n)))
    assert all(s.receipt["status"] == 1 for s in sent)
    assert sorted(chain.w3.eth.get_transaction(s.tx_hash)["nonce"] for s in sent) == list(range(nonce, nonce + n))
    assert chain.call(token.functions.balanceOf(who)) == n


def test_snapshot_and_revert_restore_state_and_height(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    who = chain.accounts[2]
    height = chain.block_number()
    snap = chain.snapshot()
    chain.send(token.functions.mint(who, 7))
    chain.mine(2)
    assert chain.call(token.functions.balanceOf(who)) == 7 and chain.block_number() == height + 3
    chain.revert(snap)
    assert chain.call(token.functions.balanceOf(who)) == 0 and chain.block_number() == height


def test_mine_adds_empty_blocks(backend: Backend) -> None:
    chain = backend.chain
    height = chain.block_number()
    chain.mine(3)
    assert chain.block_number() == chain.w3.eth.block_number == height + 3
    assert chain.w3.eth.get_block(height + 3)["transactions"] == []


def test_the_log_source_reads_what_get_logs_returns(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    a, b = chain.accounts[1:3]
    start = chain.block_number() + 1
    chain.send(token.functions.mint(a, 100))
    chain.mine(1)
    chain.send(token.functions.transfer(b, 30), sender=a)
    source = chain.log_source()
    head = source.head()
    assert head == chain.block_number()
    addresses = [token.address.lower()]
    raw = source.get_logs(start, head, addresses)
    expected = [(lg["blockNumber"], "0x" + bytes(lg["blockHash"]).hex(), "0x" + bytes(lg["transactionHash"]).hex(),
                 lg["logIndex"], lg["address"].lower(), [bytes(t) for t in lg["topics"]], bytes(lg["data"]))
                for lg in chain.w3.eth.get_logs({"fromBlock": start, "toBlock": head, "address": token.address})]
    assert len(expected) == 2 and [(*r[:5], list(r[5]), r[6]) for r in raw] == expected
    latest = chain.w3.eth.get_block("latest")
    assert source.block(head) == ("0x" + bytes(latest["hash"]).hex(), "0x" + bytes(latest["parentHash"]).hex())
    assert source.block(head + 5) is None


def test_the_storage_reader_reads_what_the_views_return(backend: Backend) -> None:
    chain, token = backend.chain, cash(backend)
    who = chain.accounts[1]
    chain.send(token.functions.mint(who, 1_234))
    balances, supply = slot_of("SettlementToken", "_balances"), slot_of("SettlementToken", "_totalSupply")
    for read in (chain.storage_reader(token.address), Chain.storage_reader(chain, token.address)):
        assert read(mapping_slot(int(who, 16), balances)) == 1_234
        assert read(supply) == chain.call(token.functions.totalSupply())
        assert read(mapping_slot(int(chain.accounts[2], 16), balances)) == 0


def test_set_membership_agrees_with_the_contracts_view(backend: Backend, tmp_path: Path) -> None:
    """The check that stops a loan being tokenised twice, on the backend's own path and on the
    generic one (the view call, chunked)."""
    chain = backend.chain
    tape = tmp_path / "tape.csv"
    write_tape(tape, 12, 5, "csv")
    (tmp_path / "data").mkdir()
    ctx = Context(data_dir=tmp_path / "data", chain=chain, core=backend.core, manifest_path=tmp_path / "m.json")
    report = create_pool(ctx, tape_path=tape, name="Members", batch_size=4, stop_after_batches=1)
    eligible, _ = apply_eligibility(read_tape(tape).loans, Eligibility())
    assert report.minted_now == 4 < len(eligible)
    files = find_pool(ctx.data_dir, "Members")
    minted = {merkle.token_id(report.pool, eligible[i].loan_id) for i in files.mint_order()[:4]}
    keys = [merkle.token_id(report.pool, "never"), *(merkle.token_id(report.pool, x.loan_id) for x in reversed(eligible))]
    expected = [i for i, k in enumerate(keys) if k in minted]
    for chunk in (CHECK_CHUNK, 3):
        probe = SetProbe(backend.core.contracts["LoanToken"], OWNERS_SLOT, "tokenised(uint256[])", chunk)
        assert chain.members(probe, keys) == expected
        assert Chain.members(chain, probe, keys) == expected
        assert chain.members(probe, []) == []
