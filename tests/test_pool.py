"""Tokenisation: a tape becomes loan tokens in a pool, with commitments, proofs and resumption."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.logs import DISCARD

from chainabs import merkle
from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.cli import main
from chainabs.context import Context
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, TapeError
from chainabs.pool import (
    MINT_SELECTOR,
    OWNERS_SLOT,
    committed_rows,
    create_pool,
    find_pool,
    mint_batch,
    run_batch,
    verify_proof_on_chain,
)
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


def _minted_before(token: Any, committed: Any) -> list[int]:
    """The token ids of a LoansCommitted event: the mint Transfers to its pool that its
    transaction emitted before it, one per loan hash, in order."""
    receipt = token.w3.eth.get_transaction_receipt(committed["transactionHash"])
    mints = [lg for lg in token.events.Transfer().process_receipt(receipt, errors=DISCARD)
             if lg["logIndex"] < committed["logIndex"] and lg["args"]["from"] == "0x" + "0" * 40
             and lg["args"]["to"] == committed["args"]["pool"]]
    assert len(mints) == len(committed["args"]["loanHashes"])
    return [lg["args"]["tokenId"] for lg in mints]


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
        tid = merkle.token_id(report.pool, loan.loan_id)
        assert token.functions.ownerOf(tid).call() == report.pool
        assert token.functions.tokenIdOf(report.pool, loan.loan_id).call() == tid
    for loan, _ in rejected[:3]:
        with pytest.raises(ContractRevert) as info:
            chain.call(token.functions.ownerOf(merkle.token_id(report.pool, loan.loan_id)))
        assert info.value.name == "ERC721NonexistentToken"


def test_mint_events_commit_each_token_to_its_loan_hash(ctx: Context, tape_300: Path) -> None:
    report = create_pool(ctx, tape_path=tape_300, name="Events", batch_size=100)
    token = ctx.chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    # this pool's commitments only: other tests' pools may be on the session chain
    logs = [c for c in token.events.LoansCommitted.get_logs(from_block=0) if c["args"]["pool"] == report.pool]
    hashes = [h for log in logs for h in log["args"]["loanHashes"]]
    assert len(logs) == report.batches >= 3  # batches of 100, split where the tree's lowest level ends
    assert all(len(log["args"]["loanHashes"]) <= 100 for log in logs)
    # the token ids are in the batch's mint Transfers, just before its LoansCommitted, in order
    ids = [i for log in logs for i in _minted_before(token, log)]
    assert {log["args"]["pool"] for log in logs} == {report.pool}
    files = find_pool(ctx.data_dir, "Events")
    salt = bytes.fromhex((files.folder / "salt").read_text())
    eligible, _ = apply_eligibility(read_tape(tape_300).loans, Eligibility())
    loan_hashes = [merkle.loan_hash(x, salt) for x in eligible]
    order = sorted(range(len(eligible)), key=lambda i: keccak(loan_hashes[i]))  # minted by ascending leaf
    assert ids == [merkle.token_id(report.pool, eligible[i].loan_id) for i in order]
    assert hashes == [loan_hashes[i] for i in order]
    assert order == files.mint_order()
    assert [row.loan_id for row in files.rows] == [x.loan_id for x in eligible]  # the rows keep the tape's order
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
    proof.loan_hash = "0x" + keccak(b"not a loan").hex()
    assert verify_proof_on_chain(ctx, files, proof) is False


def test_an_inner_node_of_the_tree_does_not_verify_as_a_loan(ctx: Context, tape_300: Path) -> None:
    """Finding 9: verifyLoan took the leaf, so the inner node at the top of the tree's left half
    passed with its one-node proof. It takes the loan hash now and hashes the leaf itself."""
    create_pool(ctx, tape_path=tape_300, name="Inner")
    files = find_pool(ctx.data_dir)
    pool = ctx.chain.contract("LoanPool", files.record.address)
    nodes = files.tree.to_json()  # the inner nodes come from rebuilding the tree from its leaves
    tree = merkle.MerkleTree.from_json(nodes)
    inner, sibling = tree._nodes[1], tree._nodes[2]
    assert merkle.verify(inner, [sibling], tree.root)  # what the old verifyLoan(leaf, proof) computed
    assert pool.functions.verifyLoan(inner, [sibling]).call() is False
    row = files.rows[0]
    assert pool.functions.verifyLoan(row.loan_hash(), files.tree.proof(row.leaf())).call() is True
    assert pool.functions.verifyLoan(row.leaf(), files.tree.proof(row.leaf())).call() is False  # a leaf is no loan hash


def test_interrupted_minting_resumes_without_duplicates(ctx: Context, tape_300: Path) -> None:
    first = create_pool(ctx, tape_path=tape_300, name="Resume", batch_size=40, stop_after_batches=3)
    assert first.minted_now == 98  # 40, then 18 to where the tree's lowest level of leaves ends, 40
    pool = ctx.chain.contract("LoanPool", first.pool)
    assert pool.functions.mintedCount().call() == 98 and pool.functions.filled().call() is False
    second = create_pool(ctx, tape_path=tape_300, name="Resume", batch_size=40)
    assert second.pool == first.pool and second.root == first.root
    assert second.minted_now == first.eligible - 98
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
        pool.functions.mintLoans(b"\x02L1", [b"\x03" * 32], []),
        pool.functions.grantRole(ORIGINATOR_ROLE, stranger),
        token.functions.mintBatch(b"\x02L1", [b"\x03" * 32]),
        token.functions.grantRole(MINTER_ROLE, stranger),
    ]
    for fn in calls:
        with pytest.raises(ContractRevert) as info:
            chain.send(fn, sender=stranger)
        assert info.value.name == "AccessControlUnauthorizedAccount", fn.fn_name


def _committed_pool(chain: EmbeddedChain, core: Manifest, hashes: list[bytes], name: str,
                    originator: str | None = None) -> tuple[Any, merkle.MerkleTree]:
    """A LoanPool that may mint, committed to the tree over `hashes`."""
    admin = chain.accounts[0]
    originator = originator or admin
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    pool = chain.deploy("LoanPool", token.address, admin, originator, name, "EUR")
    chain.send(token.functions.grantRole(MINTER_ROLE, pool.address))
    tree = merkle.MerkleTree.from_leaves([merkle.leaf_from_loan_hash(h) for h in hashes])
    chain.send(pool.functions.commitTape(tree.root, len(hashes), 10, 20), sender=originator)
    return pool, tree


def _hashes(n: int, tag: bytes = b"") -> list[bytes]:
    return [keccak(tag + b"loan %d" % i) for i in range(n)]


def _revert(chain: EmbeddedChain, fn: Any, sender: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """The decoded custom error: (name, its arguments)."""
    with pytest.raises(ContractRevert) as info:
        chain.send(fn, sender=sender or chain.accounts[0])
    args = info.value.args_
    return info.value.name, tuple(args.values()) if isinstance(args, dict) else tuple(args)


def test_pool_rules_are_enforced(chain: EmbeddedChain, core: Manifest) -> None:
    admin = chain.accounts[0]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    pool = chain.deploy("LoanPool", token.address, admin, admin, "Rules", "EUR")
    chain.send(token.functions.grantRole(MINTER_ROLE, pool.address))

    def revert_name(fn) -> str:
        return _revert(chain, fn)[0]

    hashes = _hashes(2)
    tree = merkle.MerkleTree.from_leaves([merkle.leaf_from_loan_hash(h) for h in hashes])
    both = mint_batch(tree, ["L1", "L2"], hashes, tree.sorted_indices())
    assert revert_name(pool.functions.mintLoans(both.packed_ids, both.loan_hashes, both.proof)) == "TapeNotCommitted"
    assert revert_name(pool.functions.commitTape(b"\x00" * 32, 1, 1, 1)) == "InvalidTapeCommitment"
    chain.send(pool.functions.commitTape(tree.root, 2, 10, 20))
    assert revert_name(pool.functions.commitTape(tree.root, 2, 10, 20)) == "TapeAlreadyCommitted"
    assert revert_name(pool.functions.mintLoans(b"", [], [])) == "EmptyBatch"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L2\x02L3", [*both.loan_hashes, hashes[0]], [])) == "TooManyLoans"
    assert revert_name(pool.functions.mintLoans(b"\x05L1\x02L2", both.loan_hashes, [])) == "MalformedLoanIds"
    assert revert_name(pool.functions.mintLoans(b"\x02L1", both.loan_hashes, [])) == "MalformedLoanIds"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L1", both.loan_hashes, [])) == "LoanAlreadyTokenised"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L2", both.loan_hashes[::-1], [])) == "LoanOutOfOrder"
    assert revert_name(pool.functions.mintLoans(b"\x02L1\x02L2", both.loan_hashes, [tree.root])) == "BatchNotCommitted"
    chain.send(pool.functions.mintLoans(both.packed_ids, both.loan_hashes, both.proof))
    assert pool.functions.filled().call() is True
    assert pool.functions.lastMintedLeaf().call() == max(merkle.leaf_from_loan_hash(h) for h in hashes)


def test_mint_batch_errors_name_the_first_offending_id(chain: EmbeddedChain, core: Manifest) -> None:
    """mintBatch checks lengths for the whole batch after its loop; a failed batch still reverts
    with the error of its first offending id, in order, as a check of each id in turn would."""
    minter = chain.accounts[7]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    chain.send(token.functions.grantRole(MINTER_ROLE, minter))
    h = [keccak(b"err %d" % i) for i in range(4)]
    chain.send(token.functions.mintBatch(b"\x02E1", h[:1]), sender=minter)
    e1, e2 = merkle.token_id(minter, "E1"), merkle.token_id(minter, "E2")
    cases = [
        (b"\x02E2\x02E1\x00", h[:3], ("LoanAlreadyTokenised", (e1,))),   # owned before a bad length
        (b"\x02E2\x00\x02E1", h[:3], ("MalformedLoanIds", (3,))),        # a zero length before owned
        (b"\x02E2\x41" + b"x" * 65, h[:2], ("MalformedLoanIds", (3,))),   # 65 bytes
        (b"\x02E2\x02E2", h[:2], ("LoanAlreadyTokenised", (e2,))),        # twice in one batch
        (b"\x02E2\x05E3", h[:2], ("MalformedLoanIds", (3,))),             # runs past the end
        (b"\x02E2", h[:2], ("MalformedLoanIds", (3,))),                    # fewer ids than hashes
        (b"\x02E2\x02E3\x02E4", h[:2], ("MalformedLoanIds", (6,))),      # more ids than hashes
    ]
    for packed, hashes, expected in cases:
        assert _revert(chain, token.functions.mintBatch(packed, hashes), sender=minter) == expected, packed
    assert token.functions.balanceOf(minter).call() == 1
    chain.send(token.functions.mintBatch(b"\x02E2\x40" + b"y" * 64, h[1:3]), sender=minter)
    assert token.functions.balanceOf(minter).call() == 3
    assert token.functions.ownerOf(merkle.token_id(minter, "y" * 64)).call() == minter


def test_run_batches_are_mint_batches_and_encode_as_eth_abi(tape_300: Path) -> None:
    """The mint path's batch builder (run_batch, its calldata packed by hand) gives the same
    batch and the same bytes as mint_batch with eth_abi; the committed rows from merkle.commit's
    borrower hashes equal CommittedLoan.of's."""
    loans = read_tape(tape_300).loans
    salt = bytes(range(32))
    hashes, leaves, borrowers = merkle.commit(loans, salt)
    assert committed_rows(loans, salt, borrowers) == committed_rows(loans, salt)
    tree = merkle.MerkleTree.from_leaves(leaves)
    order = tree.sorted_indices()
    ids = [x.loan_id for x in loans]
    lowest = tree.lowest_level_leaves()
    for first, end in [(0, 1), (0, lowest), (lowest, len(loans)), (lowest + 3, lowest + 50), (17, 18)]:
        fast, slow = run_batch(tree, ids, hashes, order, first, end), mint_batch(tree, ids, hashes, order[first:end])
        assert fast == slow
        expected = MINT_SELECTOR + abi_encode(["bytes", "bytes32[]", "bytes32[]"],
                                              [slow.packed_ids, slow.loan_hashes, slow.proof])
        assert fast.calldata() == expected


def test_a_pool_mints_only_loans_it_committed(chain: EmbeddedChain, core: Manifest) -> None:
    """Finding 5: mintLoans checked the count only, so a pool could mint any loan hash under any
    id. Each batch now proves its leaves against the committed root, in ascending leaf order."""
    hashes = _hashes(8, b"committed ")
    pool, tree = _committed_pool(chain, core, hashes, "Members")
    ids = [f"M{i}" for i in range(8)]
    order = tree.sorted_indices()
    stranger = keccak(b"never committed")
    first = mint_batch(tree, ids, hashes, order[:2])

    # an uncommitted loan, with no proof or with a committed loan's proof
    assert _revert(chain, pool.functions.mintLoans(b"\x02X1", [stranger], [])) == ("BatchNotCommitted", ())
    one = mint_batch(tree, ids, hashes, order[:1])
    assert _revert(chain, pool.functions.mintLoans(b"\x02X1", [stranger], one.proof)) == ("BatchNotCommitted", ())
    # an uncommitted loan beside a committed one, in leaf order, with the committed pair's proof
    mixed = sorted([first.loan_hashes[0], stranger], key=merkle.leaf_from_loan_hash)
    assert _revert(chain, pool.functions.mintLoans(b"\x02X1\x02X2", mixed, first.proof)) == ("BatchNotCommitted", ())
    # an inner node of the tree posing as a loan hash: the pool hashes every leaf itself
    assert _revert(chain, pool.functions.mintLoans(b"\x02X1", [tree._nodes[1]], [tree._nodes[2]])) == (
        "BatchNotCommitted", ())
    # committed loans, but not the next ones in the tree's order (a run that is the sibling
    # subtree of the next one would pass here: see the test below)
    later = mint_batch(tree, ids, hashes, order[3:5])
    assert _revert(chain, pool.functions.mintLoans(later.packed_ids, later.loan_hashes, later.proof))[0] == "BatchNotCommitted"

    chain.send(pool.functions.mintLoans(first.packed_ids, first.loan_hashes, first.proof))
    # the same committed loans again, under fresh ids: out of order, never twice
    again = mint_batch(tree, [f"Z{i}" for i in range(8)], hashes, order[:2])
    assert _revert(chain, pool.functions.mintLoans(again.packed_ids, again.loan_hashes, later.proof)) == (
        "LoanOutOfOrder", (0,))
    rest = mint_batch(tree, ids, hashes, order[2:])
    chain.send(pool.functions.mintLoans(rest.packed_ids, rest.loan_hashes, rest.proof))
    assert pool.functions.filled().call() is True
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    assert token.functions.balanceOf(pool.address).call() == 8


def test_a_subtree_claimed_at_its_siblings_place_cannot_be_minted_twice(chain: EmbeddedChain, core: Manifest) -> None:
    """Pairs hash in sorted order, so in an 8-leaf tree the right half's leaves with the left
    half's root as proof rebuild the root at the left half's ranks. The ascending order across
    batches makes that worthless: the left half can no longer follow, and the right half can
    never be minted a second time under other ids."""
    hashes = _hashes(8, b"halves ")
    pool, tree = _committed_pool(chain, core, hashes, "Halves")
    order = tree.sorted_indices()
    left_root = tree._nodes[2]  # ranks 0-3 sit under node 2, ranks 4-7 under node 1
    right = mint_batch(tree, [f"R{i}" for i in range(8)], hashes, order[4:])
    assert right.proof == [left_root]
    chain.send(pool.functions.mintLoans(right.packed_ids, right.loan_hashes, [left_root]))  # ranks 4-7 at 0-3
    assert pool.functions.mintedCount().call() == 4
    twice = mint_batch(tree, [f"T{i}" for i in range(8)], hashes, order[4:])
    assert _revert(chain, pool.functions.mintLoans(twice.packed_ids, twice.loan_hashes, [left_root])) == (
        "LoanOutOfOrder", (0,))
    left = mint_batch(tree, [f"L{i}" for i in range(8)], hashes, order[:4])
    assert _revert(chain, pool.functions.mintLoans(left.packed_ids, left.loan_hashes, left.proof)) == (
        "LoanOutOfOrder", (0,))


def test_no_pool_can_take_another_pools_loan_ids(chain: EmbeddedChain, core: Manifest) -> None:
    """Finding 5: token ids were keccak256(loan id) across all pools, so a rogue pool that
    minted an id first made an honest pool's tape fail ("already tokenised"). Ids are per pool:
    both mint "L1", each its own token; a minter mints only to itself."""
    rogue_originator = chain.accounts[6]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    honest_hashes, rogue_hashes = _hashes(4, b"honest "), _hashes(1, b"rogue ")
    honest, honest_tree = _committed_pool(chain, core, honest_hashes, "Honest")
    rogue, rogue_tree = _committed_pool(chain, core, rogue_hashes, "Rogue", originator=rogue_originator)
    squat = mint_batch(rogue_tree, ["L1"], rogue_hashes, [0])
    chain.send(rogue.functions.mintLoans(squat.packed_ids, squat.loan_hashes, squat.proof), sender=rogue_originator)
    batch = mint_batch(honest_tree, ["L0", "L1", "L2", "L3"], honest_hashes, honest_tree.sorted_indices())
    chain.send(honest.functions.mintLoans(batch.packed_ids, batch.loan_hashes, batch.proof))
    mine, theirs = merkle.token_id(honest.address, "L1"), merkle.token_id(rogue.address, "L1")
    assert mine != theirs
    assert token.functions.ownerOf(mine).call() == honest.address
    assert token.functions.ownerOf(theirs).call() == rogue.address
    # a minter (here an EOA the admin made one) mints only to itself, in its own namespace
    chain.send(token.functions.grantRole(MINTER_ROLE, rogue_originator))
    chain.send(token.functions.mintBatch(b"\x02L0", [rogue_hashes[0]]), sender=rogue_originator)
    assert token.functions.ownerOf(merkle.token_id(rogue_originator, "L0")).call() == rogue_originator
    assert token.functions.balanceOf(honest.address).call() == 4
    logs = token.events.LoansCommitted.get_logs(from_block=0)
    assert {log["args"]["pool"] for log in logs if merkle.token_id(honest.address, "L1") in _minted_before(token, log)} == {
        honest.address}


def test_loan_tokens_behave_as_erc721(chain: EmbeddedChain, core: Manifest) -> None:
    admin, alice, bob, carol = chain.accounts[:4]
    token = chain.contract("LoanToken", core.contracts["LoanToken"])
    chain.send(token.functions.grantRole(MINTER_ROLE, admin))
    chain.send(token.functions.grantRole(MINTER_ROLE, alice))
    chain.send(token.functions.mintBatch(b"\x03ERC\x04ERC2", [b"\x01" * 32, b"\x02" * 32]), sender=alice)
    tid = merkle.token_id(alice, "ERC")
    assert token.functions.tokenIdOf(alice, "ERC").call() == tid
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
    nope, erc2 = merkle.token_id(alice, "nope"), merkle.token_id(alice, "ERC2")
    assert token.functions.tokenised([tid, nope, erc2, merkle.token_id(admin, "ERC2")]).call() == [0, 2]


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
