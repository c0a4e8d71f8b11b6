"""Loan commitments and the Merkle tree, checked against eth_abi/eth_utils and against
OpenZeppelin's own @openzeppelin/merkle-tree (tests/js/merkle_check.mjs)."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak as ref_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chainabs import merkle
from chainabs.merkle import (
    LEAF_TYPES,
    MerkleTree,
    Multiproof,
    borrower_hash,
    commitments,
    hash_pair,
    leaf_from_loan_hash,
    loan_hash,
    loan_values,
    new_pool_salt,
    process_multiproof,
    token_id,
    verify,
    verify_multiproof,
)

ROOT = Path(__file__).resolve().parents[1]
NODE_SCRIPT = ROOT / "tests" / "js" / "merkle_check.mjs"
SALT = b"\x11" * 32
POOL = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # the token ids of the vectors are this pool's


@dataclass(frozen=True, slots=True)
class Loan:
    """Stands in for tape.Loan: merkle reads these attributes only."""

    loan_id: str
    borrower_ref: str
    product: int
    currency: str
    principal_units: int
    outstanding_units: int
    rate_bps: int
    origination_day: int
    maturity_day: int
    term_months: int
    repayment_type: int
    status: int
    funded_share_bps: int
    credit_score: int
    region: str
    line: int = 0


def reference_values(loan: Loan, salt: bytes) -> list:
    """The 15 values computed the slow, obviously correct way."""
    bh = ref_keccak(abi_encode(["bytes32", "string"], [salt, loan.borrower_ref]))
    return [
        loan.loan_id, bh, loan.product, loan.currency, loan.principal_units, loan.outstanding_units,
        loan.rate_bps, loan.origination_day, loan.maturity_day, loan.term_months,
        loan.repayment_type, loan.status, loan.funded_share_bps, loan.credit_score, loan.region,
    ]  # fmt: skip


def reference_leaf(loan: Loan, salt: bytes) -> tuple[bytes, bytes]:
    h = ref_keccak(abi_encode(list(LEAF_TYPES), reference_values(loan, salt)))
    return h, ref_keccak(h)


# Characters of 1 to 4 UTF-8 bytes, so strings straddle 32-byte word boundaries.
_CHARS = "abcXYZ019 .-_" + "éüßŁż" + "李小龙€" + "🙂🏦"


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(lo, hi)))


def random_loans(n: int, seed: int) -> list[Loan]:
    rng = random.Random(seed)
    loans = []
    for i in range(n):
        principal = rng.choice([1, rng.randrange(1, 10**13 + 1), 10**13, 2**256 - 1])
        orig = rng.randrange(0, 30000)
        loans.append(
            Loan(
                loan_id=f"L{i}-" + "".join(rng.choice("AZaz09._-") for _ in range(rng.randint(0, 60))),
                borrower_ref=_text(rng, 1, 128),
                product=rng.randrange(3),
                currency=rng.choice(["EUR", "USD", "PLN"]),
                principal_units=principal,
                outstanding_units=rng.randrange(0, principal + 1),
                rate_bps=rng.randrange(0, 3601),
                origination_day=orig,
                maturity_day=rng.choice([orig + rng.randrange(1, 4000), 2**32 - 1]),
                term_months=rng.randint(1, 120),
                repayment_type=rng.randrange(3),
                status=rng.randrange(7),
                funded_share_bps=rng.randint(1, 10000),
                credit_score=rng.choice([0, rng.randint(300, 950)]),
                region=_text(rng, 0, 32),
                line=i + 2,
            )
        )
    return loans


# ---------------------------------------------------------------- fixed vectors
# Derived independently with eth_abi.encode + eth_utils.keccak; each leaf and the root of all
# four also from @openzeppelin/merkle-tree 1.0.8 StandardMerkleTree.of(values, LEAF_TYPES).

VECTOR_LOANS = [
    Loan("LN-0001", "BRW-42", 0, "EUR", 1234560000, 1000000000, 1825, 19000, 20000, 36, 0, 0,
         10000, 720, "Bavaria"),
    Loan("L" + "0123456789" * 6 + "abc", "Zoë Müller-Łukasiewicz 李小龙 🙂", 2, "PLN", 5000000000,
         2500000000, 3600, 19500, 23150, 120, 2, 1, 5000, 0, "Île-de-France"),
    Loan("7", "b", 1, "USD", 10**13, 0, 0, 0, 2**32 - 1, 1, 1, 6, 1, 0, ""),
    Loan("x" * 33, "r" * 128, 0, "GBP", 1, 1, 1, 20000, 20001, 1, 0, 5, 9999, 950, "R" * 32),
]  # fmt: skip

VECTORS = [  # (borrower_hash, loan_hash, leaf, token id in POOL)
    (
        "260f8bb88acfe333749d5c265470d733b70aa229defaf90a2a4818b9a939c0a1",
        "80f6e55e9f28cedf325942e5530b79e431402f9e6b8dc4c71c355d99d585a027",
        "7ed3d5aa8a4b090eaada396b54003cd88ed8987f6758e1dcea843c2a7bbaf5e7",
        0x37219208A826EC5BC67BBE6418761A93BEBA900C37BB4767F15FF099FFD3DEDE,
    ),
    (
        "2e656b5492d111728051af8def72306c1c42a925e67762ef6f6b871c481be1ef",
        "94f894cda274dd55d328f4cff0b0df1f79623a252ba53272e1cc4c2398a607ba",
        "6debadeb70940e2634a1f83d61ed4e1e0d87349953c130accc3e8decadb10bf2",
        0x4718F37D4AB5EB15F1982D2719368D91DC7E546F7D4C565CD64E5B2D3D8C717C,
    ),
    (
        "91dc5c0259aeae6e65768c4a101a2181ffadd37aad011a65d8f2ddbe2891a404",
        "fe19094c1dc5ee92957aeaa206715e5a300d367f7a516ae7b0278046b22b913b",
        "35b3727da23fc2d53c0a4cc959996dc30f6f90e787b7f4a2bd23245e7c33dd04",
        0xDF576967A4B2904C2743BECF2FBB30A52C6BD5CD11C31DB3A4CB47B74AB051BE,
    ),
    (
        "e9ff2ddb75881b72b3838e2f45e06cb4880bf4c56bd67f76c0d7a298656dbc1d",
        "fe67df6533d07df45c43189888e7ac0e0a83ff90bc4708bcd940efe6ac2f9cb0",
        "dad8eb8977b3f837f7271a7993c3c501051ba82f98ab88cea462ed1082903df2",
        0xCE56764738D6034BA6BEAD6753A8652C492FB6A44B70F0B00040CCD974EF18D8,
    ),
]
VECTOR_ROOT = "5ac32cd08205c86532e1a165ef9f7a405c86a23f69ee85bf228f23d37defbde1"


@pytest.mark.parametrize("loan, vector", zip(VECTOR_LOANS, VECTORS, strict=True))
def test_fixed_vectors(loan: Loan, vector: tuple[str, str, str, int]) -> None:
    bh, lh, leaf, tid = vector
    assert borrower_hash(SALT, loan.borrower_ref).hex() == bh
    assert loan_values(loan, SALT)[1].hex() == bh
    assert loan_hash(loan, SALT).hex() == lh
    assert leaf_from_loan_hash(bytes.fromhex(lh)).hex() == leaf
    assert commitments([loan], SALT) == [(bytes.fromhex(lh), bytes.fromhex(leaf))]
    assert token_id(POOL, loan.loan_id) == token_id(bytes.fromhex(POOL[2:]), loan.loan_id) == tid
    assert tid == int.from_bytes(ref_keccak(bytes.fromhex(POOL[2:]) + loan.loan_id.encode()), "big")


def test_token_ids_are_per_pool() -> None:
    other = "0x" + "ab" * 20
    assert token_id(POOL, "LN-0001") != token_id(other, "LN-0001")
    with pytest.raises(ValueError, match="20 bytes"):
        token_id("0x1234", "LN-0001")


def test_fixed_vectors_root() -> None:
    leaves = [leaf for _, leaf in commitments(VECTOR_LOANS, SALT)]
    assert MerkleTree.from_leaves(leaves).root.hex() == VECTOR_ROOT


def test_vectors_match_the_slow_path() -> None:
    """Guards the literals above: they are what eth_abi and eth_utils compute."""
    for loan, (bh, lh, leaf, _) in zip(VECTOR_LOANS, VECTORS, strict=True):
        assert reference_values(loan, SALT)[1].hex() == bh
        assert tuple(x.hex() for x in reference_leaf(loan, SALT)) == (lh, leaf)


# ---------------------------------------------------------------- encoder and keccak


def test_loan_values_order_and_types() -> None:
    loan = VECTOR_LOANS[1]
    values = loan_values(loan, SALT)
    assert len(values) == len(LEAF_TYPES) == 15
    assert list(values) == reference_values(loan, SALT)
    assert abi_encode(list(LEAF_TYPES), list(values))  # eth_abi accepts them as typed


def test_overrides_recommit_status_and_balance() -> None:
    loan = VECTOR_LOANS[0]
    moved = dataclasses.replace(loan, status=3, outstanding_units=17)
    assert loan_values(loan, SALT, status=3, outstanding_units=17) == loan_values(moved, SALT)
    assert loan_hash(loan, SALT, status=3, outstanding_units=17) == reference_leaf(moved, SALT)[0]
    assert loan_hash(loan, SALT, status=None) == loan_hash(loan, SALT)
    assert loan_hash(loan, SALT, outstanding_units=0) != loan_hash(loan, SALT)


def test_commitments_match_eth_abi_on_random_loans() -> None:
    loans = random_loans(1500, seed=7)
    assert commitments(loans, SALT) == [reference_leaf(loan, SALT) for loan in loans]
    salt = bytes(range(32))
    assert [loan_hash(loan, salt) for loan in loans[:200]] == [
        reference_leaf(loan, salt)[0] for loan in loans[:200]
    ]


_uint = {bits: st.integers(0, 2**bits - 1) for bits in (8, 16, 32, 256)}
_values = st.tuples(
    st.text(max_size=80), st.binary(min_size=32, max_size=32), _uint[8], st.text(max_size=40),
    _uint[256], _uint[256], _uint[16], _uint[32], _uint[32], _uint[16], _uint[8], _uint[8],
    _uint[16], _uint[16], st.text(max_size=70),
).filter(lambda v: all(_utf8_ok(v[i]) for i in (0, 3, 14)))  # fmt: skip


def _utf8_ok(s: str) -> bool:
    try:
        s.encode()
    except UnicodeEncodeError:  # lone surrogates: neither encoder takes them
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(_values)
def test_encoder_matches_eth_abi(values: tuple) -> None:
    assert merkle._encode_values(values) == abi_encode(list(LEAF_TYPES), list(values))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.text(max_size=300).filter(_utf8_ok))
def test_borrower_hash_matches_eth_abi(salt: bytes, ref: str) -> None:
    assert borrower_hash(salt, ref) == ref_keccak(abi_encode(["bytes32", "string"], [salt, ref]))


@pytest.mark.parametrize(
    "field, value",
    [
        ("product", 256),
        ("rate_bps", 65536),
        ("origination_day", -1),
        ("maturity_day", 2**32),
        ("principal_units", -5),
        ("outstanding_units", 2**256),
        ("credit_score", 1.5),
        ("region", None),
        ("borrower_ref", b"bytes"),
    ],
)
def test_out_of_range_values_are_refused(field: str, value: object) -> None:
    bad = dataclasses.replace(VECTOR_LOANS[0], **{field: value})
    with pytest.raises(ValueError, match=f"LN-0001.*{field}"):
        commitments([bad], SALT)
    with pytest.raises(ValueError, match=field):
        loan_hash(bad, SALT)


def test_salt_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="pool_salt"):
        borrower_hash(b"\x11" * 31, "x")
    with pytest.raises(ValueError, match="pool_salt"):
        commitments(VECTOR_LOANS, b"")
    assert len(new_pool_salt()) == 32
    assert new_pool_salt() != new_pool_salt()


def _backends() -> dict[str, merkle.Hasher]:
    found = {"pycryptodome": merkle._pycryptodome_hasher(), "pycryptodome-raw": merkle._raw_keccak_hasher()}
    if merkle._pysha3_hasher() is not None:
        found["pysha3"] = merkle._pysha3_hasher()
    return found


@pytest.mark.parametrize("name", sorted(_backends()))
def test_keccak_backends_agree_with_eth_utils(name: str) -> None:
    keccak = _backends()[name]
    rng = random.Random(name)
    # lengths around the 136-byte Keccak-256 rate
    for n in [0, 1, 31, 32, 33, 64, 135, 136, 137, 271, 272, 273, 480, 1000]:
        data = rng.randbytes(n)
        assert keccak(data) == ref_keccak(data), n


def test_commitments_without_pysha3(monkeypatch: pytest.MonkeyPatch) -> None:
    loans = random_loans(300, seed=3)
    expected = commitments(loans, SALT)
    monkeypatch.setattr(merkle, "_PYSHA3", None)
    assert commitments(loans, SALT) == expected
    leaves = [leaf for _, leaf in expected]
    assert MerkleTree.from_leaves(leaves).root == _naive_root(leaves)


# ---------------------------------------------------------------- the tree


def _naive_root(leaves: list[bytes]) -> bytes:
    """OpenZeppelin's layout written out plainly: sorted leaves reversed at the array's end."""
    ordered = sorted(leaves)
    tree: list[bytes] = [b""] * (len(ordered) - 1) + ordered[::-1]
    for i in range(len(ordered) - 2, -1, -1):
        tree[i] = ref_keccak(b"".join(sorted([tree[2 * i + 1], tree[2 * i + 2]])))
    return tree[0]


def _leaves(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


def test_single_leaf_tree() -> None:
    (leaf,) = _leaves(1)
    tree = MerkleTree.from_leaves([leaf])
    assert tree.root == leaf
    assert len(tree) == 1
    assert tree.proof(leaf) == tree.proof_at(0) == []
    assert verify(leaf, [], tree.root)


def test_two_leaves() -> None:
    a, b = _leaves(2)
    tree = MerkleTree.from_leaves([a, b])
    assert tree.root == hash_pair(a, b) == hash_pair(b, a) == ref_keccak(min(a, b) + max(a, b))
    assert tree.proof(a) == [b]
    assert tree.proof(b) == [a]


@pytest.mark.parametrize("n", [3, 4, 5, 7, 8, 9, 33, 100])
def test_every_proof_verifies(n: int) -> None:
    leaves = _leaves(n, seed=n)
    tree = MerkleTree.from_leaves(leaves)
    assert len(tree) == n
    assert tree.root == _naive_root(leaves)
    assert tree.leaves == leaves
    for i, leaf in enumerate(leaves):
        proof = tree.proof_at(i)
        assert proof == tree.proof(leaf)
        assert verify(leaf, proof, tree.root)


def test_tampered_proofs_are_rejected() -> None:
    leaves = _leaves(13, seed=1)
    tree = MerkleTree.from_leaves(leaves)
    leaf, proof = leaves[5], tree.proof_at(5)
    for k in range(len(proof)):
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        assert not verify(leaf, bad, tree.root)
    assert not verify(leaves[6], proof, tree.root)
    assert not verify(leaf, proof[:-1], tree.root)
    assert not verify(leaf, proof, leaves[0])
    with pytest.raises(ValueError):
        verify(leaf, [b"\x00" * 31], tree.root)


def test_duplicate_and_bad_leaves_are_refused() -> None:
    a, b = _leaves(2)
    with pytest.raises(ValueError, match="duplicate"):
        MerkleTree.from_leaves([a, b, a])
    with pytest.raises(ValueError):
        MerkleTree.from_leaves([])
    with pytest.raises(ValueError):
        MerkleTree.from_leaves([a, b"\x01" * 31])


def test_unknown_leaf_and_index() -> None:
    leaves = _leaves(5)
    tree = MerkleTree.from_leaves(leaves)
    with pytest.raises(KeyError, match="not in the tree"):
        tree.proof(b"\x00" * 32)
    with pytest.raises(IndexError):
        tree.proof_at(5)
    assert tree.proof_at(-1) == tree.proof_at(4)
    assert leaves[0] in tree and b"\x00" * 32 not in tree


def test_sorted_indices_are_the_leaves_in_tree_order() -> None:
    leaves = _leaves(17, seed=9)
    tree = MerkleTree.from_leaves(leaves)
    order = tree.sorted_indices()
    assert [leaves[i] for i in order] == sorted(leaves)
    bare = MerkleTree.from_json({k: v for k, v in tree.to_json().items() if k != "order"})
    assert bare.sorted_indices() == list(range(17))


def test_lowest_level_leaves() -> None:
    for n in range(1, 70):
        tree = MerkleTree.from_leaves(_leaves(n, seed=n))
        depth = [(i + 1).bit_length() - 1 for i in range(n - 1, 2 * n - 1)]  # leaf tree indices
        by_rank = depth[::-1]  # rank r sits at tree index 2n - 2 - r
        lowest = tree.lowest_level_leaves()
        assert by_rank == [max(depth)] * lowest + [max(depth) - 1] * (n - lowest), n
    assert MerkleTree.from_leaves(_leaves(1024)).lowest_level_leaves() == 1024


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_run_of_neighbouring_leaves_has_a_multiproof(n: int) -> None:
    """The runs a pool mints in: each verifies, and tampering with any part fails."""
    leaves = _leaves(n, seed=n)
    tree = MerkleTree.from_leaves(leaves)
    order = tree.sorted_indices()
    for first in range(n):
        for end in range(first + 1, n + 1):
            mp = tree.multiproof(order[first:end])
            assert mp.leaves == sorted(leaves)[first:end]
            assert process_multiproof(mp) == tree.root and verify_multiproof(mp, tree.root)
            for k in range(len(mp.proof)):
                bad = list(mp.proof)
                bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
                assert not verify_multiproof(mp._replace(proof=bad), tree.root)
            other = [x for x in leaves if x not in mp.leaves][:1]
            if other:
                assert not verify_multiproof(mp._replace(leaves=[*mp.leaves[:-1], *other]), tree.root)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 40, 64, 65])
def test_run_proof_is_the_runs_multiproof(n: int) -> None:
    """The O(log n) proof a pool's mint batches use equals the general multiproof's, for every
    run on one level; a run across the two leaf levels or out of range is refused."""
    tree = MerkleTree.from_leaves(_leaves(n, seed=n))
    order = tree.sorted_indices()
    lowest = tree.lowest_level_leaves()
    for first in range(n):
        for end in range(first + 1, n + 1):
            if first < lowest < end:
                with pytest.raises(ValueError):
                    tree.run_proof(first, end - first)
            else:
                assert tree.run_proof(first, end - first) == tree.multiproof(order[first:end]).proof
    for first, count in [(0, 0), (-1, 1), (n - 1, 2), (n, 1)]:
        with pytest.raises(IndexError):
            tree.run_proof(first, count)


def test_commit_is_commitments_with_the_borrower_hashes() -> None:
    loans = random_loans(300, seed=11)
    hashes, leaves, borrowers = merkle.commit(loans, SALT)
    assert list(zip(hashes, leaves, strict=True)) == commitments(loans, SALT)
    assert borrowers == [merkle.borrower_hash(SALT, loan.borrower_ref) for loan in loans]


def test_a_run_of_neighbours_needs_few_proof_nodes() -> None:
    """A batch of neighbouring leaves costs at most two siblings per level, whatever its size."""
    n = 10_000
    tree = MerkleTree.from_leaves(_leaves(n, seed=3))
    order = tree.sorted_indices()
    depth = (2 * n - 1).bit_length()
    for first, size in [(0, 500), (500, 500), (4321, 1000), (9000, 1000), (0, n), (777, 1)]:
        mp = tree.multiproof(order[first:first + size])
        assert len(mp.proof) <= 2 * depth
        assert len(mp.proof_flags) == size + len(mp.proof) - 1
        assert verify_multiproof(mp, tree.root)


def test_multiproof_edge_cases() -> None:
    leaves = _leaves(6, seed=2)
    tree = MerkleTree.from_leaves(leaves)
    assert tree.multiproof([]) == Multiproof([], [tree.root], [])
    assert verify_multiproof(tree.multiproof([]), tree.root)
    everything = tree.multiproof(range(6))
    assert everything.proof == [] and all(everything.proof_flags)
    assert tree.multiproof([4, 1]) == tree.multiproof([1, -2])
    assert tree.multiproof([3]).proof == tree.proof_at(3)
    with pytest.raises(ValueError, match="twice"):
        tree.multiproof([1, 1])
    with pytest.raises(IndexError):
        tree.multiproof([6])
    assert not verify_multiproof(Multiproof([leaves[0]], [], [True]), tree.root)  # malformed, not a crash
    with pytest.raises(ValueError):
        process_multiproof(Multiproof([leaves[0], leaves[1]], [], [True, True]))


def test_json_round_trip() -> None:
    leaves = _leaves(21, seed=4)
    tree = MerkleTree.from_leaves(leaves)
    data = json.loads(json.dumps(tree.to_json()))
    assert data["leaves"] == sorted(data["leaves"])
    again = MerkleTree.from_json(data)
    assert again.root == tree.root
    assert again.leaves == leaves
    assert [again.proof_at(i) for i in range(21)] == [tree.proof_at(i) for i in range(21)]

    # without the input order, the sorted order is the input order
    bare = MerkleTree.from_json({k: v for k, v in data.items() if k != "order"})
    assert bare.root == tree.root
    assert bare.leaves == sorted(leaves)
    assert bare.proof(leaves[3]) == tree.proof(leaves[3])


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d.update(root="0x" + "00" * 32),
        lambda d: d["leaves"].reverse(),
        lambda d: d["leaves"].__setitem__(1, d["leaves"][0]),
        lambda d: d["leaves"].__setitem__(0, "0x1234"),
        lambda d: d["order"].__setitem__(0, d["order"][1]),
        lambda d: d.update(format="standard-v1"),
        lambda d: d.pop("root"),
    ],
)
def test_from_json_refuses_a_spoilt_tree(spoil) -> None:
    data = MerkleTree.from_leaves(_leaves(6)).to_json()
    spoil(data)
    with pytest.raises(ValueError):
        MerkleTree.from_json(data)


# ---------------------------------------------------------------- against OpenZeppelin


def _openzeppelin(values: list[list], tmp_path: Path, multiproofs: list[list[int]] | None = None) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.fail("@openzeppelin/merkle-tree is missing from node_modules: run `make setup`")
    as_json = [
        ["0x" + v.hex() if isinstance(v, bytes) else str(v) if isinstance(v, int) else v for v in row]
        for row in values
    ]
    path = tmp_path / "in.json"
    request = {"types": list(LEAF_TYPES), "values": as_json, "multiproofs": multiproofs or []}
    path.write_text(json.dumps(request), encoding="utf-8")
    done = subprocess.run(
        [node, str(NODE_SCRIPT), str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"merkle_check.mjs failed ({done.returncode}); run `make setup`?\n{done.stderr}")
    return json.loads(done.stdout)


@pytest.mark.parametrize("n, seed", [(1, 1), (2, 2), (3, 3), (50, 50), (131, 131), (200, 200)])
def test_tree_matches_openzeppelin(n: int, seed: int, tmp_path: Path) -> None:
    loans = random_loans(n, seed=seed)
    values = [list(loan_values(loan, SALT)) for loan in loans]
    oz = _openzeppelin(values, tmp_path)

    leaves = [leaf for _, leaf in commitments(loans, SALT)]
    tree = MerkleTree.from_leaves(leaves)
    assert ["0x" + leaf.hex() for leaf in leaves] == oz["leaves"]
    assert "0x" + tree.root.hex() == oz["root"]
    for i, leaf in enumerate(leaves):
        proof = tree.proof_at(i)
        assert ["0x" + p.hex() for p in proof] == oz["proofs"][i], i
        assert verify(leaf, proof, tree.root)


@pytest.mark.parametrize("n, seed", [(1, 1), (2, 2), (7, 7), (50, 50), (131, 131)])
def test_multiproofs_match_openzeppelin(n: int, seed: int, tmp_path: Path) -> None:
    """Runs of neighbouring leaves (what a pool mints per batch), scattered sets and the
    whole tree: the same leaves, proof and flags as OpenZeppelin's getMultiProof."""
    loans = random_loans(n, seed=seed)
    leaves = [leaf for _, leaf in commitments(loans, SALT)]
    tree = MerkleTree.from_leaves(leaves)
    order = tree.sorted_indices()
    rng = random.Random(seed)
    sets = [order[:1], order, [order[-1]]]
    for _ in range(6):
        first = rng.randrange(n)
        sets.append(order[first:first + rng.randint(1, n)])
        sets.append(rng.sample(range(n), rng.randint(1, n)))
    oz = _openzeppelin([list(loan_values(loan, SALT)) for loan in loans], tmp_path, sets)
    for indices, expected in zip(sets, oz["multiproofs"], strict=True):
        mp = tree.multiproof(indices)
        assert ["0x" + x.hex() for x in mp.leaves] == expected["leaves"], indices
        assert ["0x" + x.hex() for x in mp.proof] == expected["proof"], indices
        assert mp.proof_flags == expected["proofFlags"], indices
        assert verify_multiproof(mp, tree.root)


def test_fixed_vectors_match_openzeppelin(tmp_path: Path) -> None:
    oz = _openzeppelin([list(loan_values(loan, SALT)) for loan in VECTOR_LOANS], tmp_path)
    assert oz["leaves"] == ["0x" + leaf for _, _, leaf, _ in VECTORS]
    assert oz["root"] == "0x" + VECTOR_ROOT


# ---------------------------------------------------------------- speed
