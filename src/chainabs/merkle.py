"""Loan commitments and the pool's Merkle tree (TAPE.md, "The loan commitment").

    borrower_hash = keccak256(abi.encode(bytes32 pool_salt, string borrower_ref))
    loan_hash     = keccak256(abi.encode(<the 15 values of LEAF_TYPES>))
    leaf          = keccak256(bytes.concat(loan_hash))

The leaf equals OpenZeppelin StandardMerkleTree.of(values, LEAF_TYPES)'s leaf hash, and
MerkleTree lays nodes out exactly as @openzeppelin/merkle-tree 1.0.8 does (leaves sorted,
pairs hashed in sorted order), so its roots and proofs are the ones OpenZeppelin's library
and MerkleProof.verify produce and accept.

Hashing a 100,000-loan tape is on the tokenisation path, so abi.encode is specialised for
this fixed layout (one cached struct format per combination of string lengths; the
eth_abi + eth_utils path is ~10x slower) and keccak comes from the fastest backend
installed: safe-pysha3 if present, otherwise pycryptodome's C core called directly.
tests/test_merkle.py checks the encoder and every backend against eth_abi and eth_utils.
"""

from __future__ import annotations

import ctypes
import importlib.util
import secrets
import struct
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple, Protocol

__all__ = [
    "KECCAK_BACKEND",
    "LEAF_TYPES",
    "LoanLike",
    "MerkleTree",
    "Multiproof",
    "borrower_hash",
    "commit",
    "commitments",
    "hash_pair",
    "keccak256",
    "hash_values",
    "leaf_from_loan_hash",
    "loan_hash",
    "loan_values",
    "new_pool_salt",
    "process_multiproof",
    "token_id",
    "verify",
    "verify_multiproof",
]

LEAF_TYPES: tuple[str, ...] = (
    "string",   # loan_id
    "bytes32",  # borrower_hash
    "uint8",    # product
    "string",   # currency
    "uint256",  # principal_units
    "uint256",  # outstanding_units
    "uint16",   # rate_bps
    "uint32",   # origination_day
    "uint32",   # maturity_day
    "uint16",   # term_months
    "uint8",    # repayment_type
    "uint8",    # status
    "uint16",   # funded_share_bps
    "uint16",   # credit_score
    "string",   # region
)

_FIELDS = (
    "loan_id", "borrower_hash", "product", "currency", "principal_units", "outstanding_units",
    "rate_bps", "origination_day", "maturity_day", "term_months", "repayment_type", "status",
    "funded_share_bps", "credit_score", "region",
)  # fmt: skip


class LoanLike(Protocol):
    """The attributes of tape.Loan that the commitment reads.

    principal_units and outstanding_units are committed as they are: the pool share
    (funded_share_bps) must already be applied by whoever built the record.
    """

    @property
    def loan_id(self) -> str: ...
    @property
    def borrower_ref(self) -> str: ...
    @property
    def product(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def principal_units(self) -> int: ...
    @property
    def outstanding_units(self) -> int: ...
    @property
    def rate_bps(self) -> int: ...
    @property
    def origination_day(self) -> int: ...
    @property
    def maturity_day(self) -> int: ...
    @property
    def term_months(self) -> int: ...
    @property
    def repayment_type(self) -> int: ...
    @property
    def status(self) -> int: ...
    @property
    def funded_share_bps(self) -> int: ...
    @property
    def credit_score(self) -> int: ...
    @property
    def region(self) -> str: ...


# --------------------------------------------------------------------------- keccak256

Hasher = Callable[[bytes], bytes]


def _pysha3_hasher() -> Hasher | None:
    try:
        # _pysha3 rather than sha3: the sha3 wrapper monkey-patches hashlib on import.
        from _pysha3 import keccak_256  # type: ignore[import-not-found]
    except ImportError:
        return None

    def keccak(data: bytes) -> bytes:
        return keccak_256(data).digest()

    return keccak


def _pycryptodome_hasher() -> Hasher:
    from Crypto.Hash import keccak as _keccak

    new = _keccak.new

    def keccak(data: bytes) -> bytes:
        return new(data=data, digest_bits=256).digest()

    return keccak


_raw_keccak_lib: Any = None


def _load_raw_keccak_lib() -> Any:
    global _raw_keccak_lib
    if _raw_keccak_lib is None:
        spec = importlib.util.find_spec("Crypto.Hash._keccak")
        if spec is None or not spec.origin:
            raise ImportError("pycryptodome's _keccak library not found")
        lib = ctypes.CDLL(spec.origin)  # our own handle: pycryptodome's argtypes stay untouched
        c_vp, c_sz, c_u8 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint8
        for name, argtypes in (
            ("keccak_init", [ctypes.POINTER(c_vp), c_sz, c_u8]),
            ("keccak_destroy", [c_vp]),
            ("keccak_absorb", [c_vp, ctypes.c_char_p, c_sz]),
            ("keccak_digest", [c_vp, ctypes.c_char_p, c_sz, c_u8]),
            ("keccak_reset", [c_vp]),
        ):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, ctypes.c_int
        _raw_keccak_lib = lib
    return _raw_keccak_lib


def _raw_keccak_hasher() -> Hasher:
    """pycryptodome's Keccak C core driven directly through one reusable state.

    Three C calls per hash instead of a Python hash object per hash: ~2x faster than
    Crypto.Hash.keccak.new. Not thread-safe: batch functions make one each. The state is
    freed when the returned function is garbage-collected.
    """
    lib = _load_raw_keccak_lib()
    state = ctypes.c_void_p()
    if lib.keccak_init(ctypes.byref(state), 64, 24):  # capacity 2*32 bytes, 24 rounds
        raise OSError("pycryptodome keccak_init failed")
    absorb, digest, reset = lib.keccak_absorb, lib.keccak_digest, lib.keccak_reset
    out = ctypes.create_string_buffer(32)

    def keccak(data: bytes) -> bytes:
        absorb(state, data, len(data))
        digest(state, out, 32, 1)  # padding 0x01: original Keccak, not SHA-3
        reset(state)
        return out.raw

    weakref.finalize(keccak, lib.keccak_destroy, state)
    return keccak


_PYSHA3 = _pysha3_hasher()

#: keccak256(data) -> 32 bytes; thread-safe. KECCAK_BACKEND names the implementation.
keccak256: Hasher = _PYSHA3 or _pycryptodome_hasher()
KECCAK_BACKEND = "pysha3" if _PYSHA3 else "pycryptodome"


def _batch_hasher() -> Hasher:
    """The fastest keccak256 for one batch on one thread."""
    if _PYSHA3 is not None:
        return _PYSHA3
    try:
        return _raw_keccak_hasher()
    except (ImportError, OSError, AttributeError):
        return keccak256


# --------------------------------------------------------------------------- encoding

@lru_cache(maxsize=256)
def _loan_packer(p1: int, p2: int, p3: int) -> tuple[Callable[..., bytes], int, int]:
    """struct packer for abi.encode(LEAF_TYPES) given the padded byte length of each string.

    Head: 15 words, strings as offsets; tails: length word + bytes zero-padded to p.
    Struct's B/H/I/Q codes range-check uint8/16/32 for free.
    Returns (pack, offset of currency's tail, offset of region's tail).
    """
    fmt = (
        ">24xQ32s31xB24xQ32s32s30xH28xI28xI30xH31xB31xB30xH30xH24xQ"
        f"24xQ{p1}s24xQ{p2}s24xQ{p3}s"
    )
    off2 = 15 * 32 + 32 + p1
    return struct.Struct(fmt).pack, off2, off2 + 32 + p2


@lru_cache(maxsize=64)
def _string_tail_packer(p: int) -> Callable[..., bytes]:
    return struct.Struct(f">24xQ{p}s").pack


def _borrower_encoding(prefix: bytes, borrower_ref: str) -> bytes:
    """abi.encode(bytes32 pool_salt, string borrower_ref) given _borrower_prefix(pool_salt)."""
    if not isinstance(borrower_ref, str):
        raise ValueError(f"borrower_ref must be a str, not {type(borrower_ref).__name__}")
    ref = borrower_ref.encode()
    return prefix + _string_tail_packer((len(ref) + 31) & -32)(len(ref), ref)


def _encode_values(values: Sequence[Any]) -> bytes:
    """abi.encode(LEAF_TYPES, values) for the 15 loan values (strings as str)."""
    (lid, bh, product, cur, principal, outstanding, rate, orig, mat,
     term, rtype, status, share, score, region) = values  # fmt: skip
    try:
        lid_b, cur_b, reg_b = lid.encode(), cur.encode(), region.encode()
        n1, n2, n3 = len(lid_b), len(cur_b), len(reg_b)
        if len(bh) != 32:
            raise ValueError("borrower_hash must be 32 bytes")
        pack, off2, off3 = _loan_packer((n1 + 31) & -32, (n2 + 31) & -32, (n3 + 31) & -32)
        return pack(
            480, bh, product, off2, principal.to_bytes(32, "big"), outstanding.to_bytes(32, "big"),
            rate, orig, mat, term, rtype, status, share, score, off3,
            n1, lid_b, n2, cur_b, n3, reg_b,
        )  # fmt: skip
    except (struct.error, OverflowError, TypeError, AttributeError, ValueError) as exc:
        raise _explain(values) from exc


def _explain(values: Sequence[Any]) -> ValueError:
    """Name the first value that does not fit its ABI type (the slow path, errors only)."""
    for name, typ, value in zip(_FIELDS, LEAF_TYPES, values, strict=True):
        if typ == "string":
            ok = isinstance(value, str)
        elif typ == "bytes32":
            ok = isinstance(value, (bytes, bytearray)) and len(value) == 32
        else:
            bits = int(typ[4:])
            ok = type(value) is int and 0 <= value < 1 << bits
        if not ok:
            return ValueError(f"loan {values[0]!r}: {name}={value!r} does not fit {typ}")
    return ValueError(f"loan {values[0]!r}: values cannot be ABI-encoded")


def _check_salt(pool_salt: bytes) -> bytes:
    if not isinstance(pool_salt, (bytes, bytearray)) or len(pool_salt) != 32:
        raise ValueError("pool_salt must be 32 bytes")
    return bytes(pool_salt)


def _borrower_prefix(pool_salt: bytes) -> bytes:
    return _check_salt(pool_salt) + (64).to_bytes(32, "big")  # salt word, string offset


# --------------------------------------------------------------------------- commitments


def new_pool_salt() -> bytes:
    """A fresh random 32-byte pool salt."""
    return secrets.token_bytes(32)


def borrower_hash(pool_salt: bytes, borrower_ref: str) -> bytes:
    """keccak256(abi.encode(bytes32 pool_salt, string borrower_ref))."""
    return keccak256(_borrower_encoding(_borrower_prefix(pool_salt), borrower_ref))


def loan_values(
    loan: LoanLike,
    pool_salt: bytes,
    *,
    status: int | None = None,
    outstanding_units: int | None = None,
) -> tuple[Any, ...]:
    """The 15 committed values in LEAF_TYPES order; status and outstanding may be overridden
    (a period tape re-commits a loan with its new status and balance)."""
    return (
        loan.loan_id,
        borrower_hash(pool_salt, loan.borrower_ref),
        loan.product,
        loan.currency,
        loan.principal_units,
        loan.outstanding_units if outstanding_units is None else outstanding_units,
        loan.rate_bps,
        loan.origination_day,
        loan.maturity_day,
        loan.term_months,
        loan.repayment_type,
        loan.status if status is None else status,
        loan.funded_share_bps,
        loan.credit_score,
        loan.region,
    )


def loan_hash(loan: LoanLike, pool_salt: bytes, **overrides: int | None) -> bytes:
    """keccak256(abi.encode(loan_values(...))); overrides as for loan_values."""
    return keccak256(_encode_values(loan_values(loan, pool_salt, **overrides)))


def hash_values(values: Sequence[Any]) -> bytes:
    """loan_hash from the 15 committed values themselves (borrower hash as 32 bytes): what a
    verifier holding a pool's published rows, but not the salt, can recompute."""
    return keccak256(_encode_values(values))


def leaf_from_loan_hash(h: bytes) -> bytes:
    """The Merkle leaf for a loan hash: keccak256(bytes.concat(loan_hash))."""
    if len(h) != 32:
        raise ValueError("a loan hash is 32 bytes")
    return keccak256(bytes(h))


def token_id(pool: str | bytes, loan_id: str) -> int:
    """The loan token's id of `loan_id` minted by the pool at `pool` (a 0x-hex address or its
    20 bytes): uint256(keccak256(abi.encodePacked(address pool, bytes(loan_id)))). Ids are unique
    per pool, so no pool can take another pool's loan ids (LoanToken.tokenIdOf)."""
    if isinstance(pool, str):
        raw = bytes.fromhex(pool.removeprefix("0x").removeprefix("0X"))
    else:
        raw = bytes(pool)
    if len(raw) != 20:
        raise ValueError(f"a pool address is 20 bytes, not {len(raw)}")
    return int.from_bytes(keccak256(raw + loan_id.encode()), "big")


def commitments(loans: Iterable[LoanLike], pool_salt: bytes) -> list[tuple[bytes, bytes]]:
    """[(loan_hash, leaf)] for each loan in order: loan_hash(loan, pool_salt) in bulk."""
    hashes, leaves, _ = commit(loans, pool_salt)
    return list(zip(hashes, leaves, strict=True))


def commit(loans: Iterable[LoanLike], pool_salt: bytes) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(loan hashes, leaves, borrower hashes), each a list in the loans' order: everything a
    pool commits to, computed once per loan (loan_hash, leaf_from_loan_hash, borrower_hash)."""
    k = _batch_hasher()
    prefix = _borrower_prefix(pool_salt)
    encode_borrower, encode_values = _borrower_encoding, _encode_values
    hashes: list[bytes] = []
    leaves: list[bytes] = []
    borrowers: list[bytes] = []
    for loan in loans:
        try:
            bh = k(encode_borrower(prefix, loan.borrower_ref))
        except ValueError as exc:
            raise ValueError(f"loan {loan.loan_id!r}: {exc}") from None
        h = k(encode_values((
            loan.loan_id, bh, loan.product, loan.currency, loan.principal_units,
            loan.outstanding_units, loan.rate_bps, loan.origination_day, loan.maturity_day,
            loan.term_months, loan.repayment_type, loan.status, loan.funded_share_bps,
            loan.credit_score, loan.region,
        )))  # fmt: skip
        borrowers.append(bh)
        hashes.append(h)
        leaves.append(k(h))
    return hashes, leaves, borrowers


# --------------------------------------------------------------------------- the tree


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak256 of the two nodes in ascending byte order (OpenZeppelin's commutative hash)."""
    return keccak256(a + b if a < b else b + a)


def verify(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """OpenZeppelin MerkleProof.verify: fold the proof over the leaf with hash_pair.

    Raises ValueError if the leaf, a proof node or the root is not 32 bytes.
    """
    if len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        raise ValueError("leaf, proof nodes and root must be 32 bytes each")
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == root


class Multiproof(NamedTuple):
    """OpenZeppelin's multiproof: `leaves` in the order the verifier consumes them (descending
    tree index, i.e. ascending leaf hash), the sibling hashes it needs and one flag per hash
    (true: hash two nodes of the queue; false: a node of the queue with the next proof hash)."""

    leaves: list[bytes]
    proof: list[bytes]
    proof_flags: list[bool]


def process_multiproof(multiproof: Multiproof) -> bytes:
    """OpenZeppelin MerkleProof.processMultiProof: the root the multiproof rebuilds.

    Raises ValueError when the multiproof is malformed (its parts do not add up)."""
    leaves, proof, flags = multiproof
    if any(len(x) != 32 for x in (*leaves, *proof)):
        raise ValueError("multiproof leaves and proof nodes must be 32 bytes each")
    if len(leaves) + len(proof) != len(flags) + 1:
        raise ValueError("invalid multiproof: leaves + proof must be flags + 1")
    queue: deque[bytes] = deque(bytes(x) for x in leaves)
    siblings = iter(bytes(x) for x in proof)
    for flag in flags:
        try:
            a = queue.popleft()
            b = queue.popleft() if flag else next(siblings)
        except (IndexError, StopIteration):
            raise ValueError("invalid multiproof: it runs out of nodes") from None
        queue.append(hash_pair(a, b))
    rest = list(siblings)
    if len(queue) + len(rest) != 1:
        raise ValueError("invalid multiproof: nodes left over")
    return queue[0] if queue else rest[0]


def verify_multiproof(multiproof: Multiproof, root: bytes) -> bool:
    """OpenZeppelin MerkleProof.multiProofVerify; False for a malformed multiproof."""
    try:
        return process_multiproof(multiproof) == root
    except ValueError:
        return False


class MerkleTree:
    """OpenZeppelin StandardMerkleTree's layout over precomputed leaf hashes.

    The 2n-1 nodes live in one array: the sorted leaves at its end in reverse order, node i's
    children at 2i+1 and 2i+2. Leaves must be distinct (a pool's loans are): from_leaves
    raises ValueError on a duplicate, where StandardMerkleTree would accept it.
    """

    __slots__ = ("_nodes", "_n", "_position", "_order")

    def __init__(self, nodes: list[bytes], n_leaves: int, order: Sequence[int] | None) -> None:
        self._nodes = nodes
        self._n = n_leaves
        first = len(nodes) - n_leaves
        # tree index of each leaf hash
        self._position = {nodes[i]: i for i in range(first, len(nodes))}
        # input index -> tree index; None when the input order was the sorted order
        self._order = order

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Build the tree over 32-byte leaf hashes given in input order."""
        n = len(leaves)
        if n == 0:
            raise ValueError("a Merkle tree needs at least one leaf")
        if any(len(leaf) != 32 for leaf in leaves):
            raise ValueError("leaves must be 32-byte hashes")
        leaves = [bytes(leaf) for leaf in leaves]
        ranked = sorted(range(n), key=leaves.__getitem__)
        sorted_leaves = [leaves[i] for i in ranked]
        for a, b in pairwise(sorted_leaves):
            if a == b:
                raise ValueError(f"duplicate leaf 0x{a.hex()}: a pool's leaves must be distinct")
        size = 2 * n - 1
        order = [0] * n
        for rank, i in enumerate(ranked):
            order[i] = size - 1 - rank
        return cls(_build(sorted_leaves), n, order)

    @property
    def root(self) -> bytes:
        return self._nodes[0]

    def __len__(self) -> int:
        return self._n

    def __contains__(self, leaf: object) -> bool:
        return leaf in self._position

    @property
    def leaves(self) -> list[bytes]:
        """The leaves in input order."""
        nodes = self._nodes
        if self._order is None:
            return nodes[len(nodes) - self._n :][::-1]
        return [nodes[i] for i in self._order]

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from the leaf up to the root. KeyError if the leaf is not in the tree."""
        try:
            index = self._position[leaf]
        except KeyError:
            shown = "0x" + bytes(leaf).hex() if isinstance(leaf, (bytes, bytearray)) else repr(leaf)
            raise KeyError(f"leaf {shown} is not in the tree") from None
        return self._path(index)

    def proof_at(self, index: int) -> list[bytes]:
        """The proof of the index-th leaf passed to from_leaves."""
        if not -self._n <= index < self._n:
            raise IndexError(f"leaf index {index} out of range for {self._n} leaves")
        index %= self._n
        tree_index = len(self._nodes) - 1 - index if self._order is None else self._order[index]
        return self._path(tree_index)

    def lowest_level_leaves(self) -> int:
        """How many leaves sit on the tree's lowest level: the ranks below this number (in
        sorted_indices order) are one level deeper than the rest; all of them when the leaf
        count is a power of two. A pool's mint batch keeps to one side (LoanBatchProof)."""
        n = self._n
        return 2 * n - (1 << ((2 * n - 1).bit_length() - 1))

    def sorted_indices(self) -> list[int]:
        """The input indices in the order the tree lays out their leaves (ascending leaf hash).

        A pool mints its loans in this order, so that each batch is a run of neighbouring
        leaves: its multiproof is short and the pool can check that no leaf comes twice."""
        if self._order is None:
            return list(range(self._n))
        last = len(self._nodes) - 1
        out = [0] * self._n
        for i, tree_index in enumerate(self._order):
            out[last - tree_index] = i
        return out

    def multiproof(self, indices: Sequence[int]) -> Multiproof:
        """OpenZeppelin's multiproof (merkle-tree's getMultiProof) of the leaves passed to
        from_leaves at `indices`, in any order. Its leaves come back in the verifier's order:
        ascending leaf hash. ValueError on a repeated index, IndexError on one out of range."""
        nodes, n = self._nodes, self._n
        last = len(nodes) - 1
        positions = []
        for index in indices:
            if not -n <= index < n:
                raise IndexError(f"leaf index {index} out of range for {n} leaves")
            index %= n
            positions.append(last - index if self._order is None else self._order[index])
        positions.sort(reverse=True)
        if any(a == b for a, b in pairwise(positions)):
            raise ValueError("cannot prove the same leaf twice in one multiproof")
        queue = deque(positions)
        proof: list[bytes] = []
        flags: list[bool] = []
        while queue and queue[0] > 0:
            j = queue.popleft()
            sibling = j + 1 if j % 2 else j - 1
            if queue and queue[0] == sibling:
                flags.append(True)
                queue.popleft()
            else:
                flags.append(False)
                proof.append(nodes[sibling])
            queue.append((j - 1) // 2)
        if not positions:
            proof.append(nodes[0])
        return Multiproof([nodes[i] for i in positions], proof, flags)

    def run_proof(self, first: int, count: int) -> list[bytes]:
        """`multiproof(...).proof` of the leaves of ranks first .. first+count-1 (a run of
        `sorted_indices()`, all on one level of the tree, as a pool's mint batch is), in
        O(log n): a run's nodes pair among themselves except at its two ends, so each level
        needs at most the sibling of its top node (a left child) and then that of its bottom
        node (a right child), the order in which the multiproof's queue meets them."""
        n, size = self._n, len(self._nodes)
        if count < 1 or first < 0 or first + count > n:
            raise IndexError(f"ranks {first} .. {first + count - 1} out of range for {n} leaves")
        lowest = self.lowest_level_leaves()
        if first < lowest < first + count:
            raise ValueError(f"ranks {first} .. {first + count - 1} cross the tree's two leaf levels at {lowest}")
        nodes = self._nodes
        hi = size - 1 - first
        lo = hi - count + 1
        proof: list[bytes] = []
        while hi > 0:
            if hi % 2:
                proof.append(nodes[hi + 1])
            if not lo % 2:
                proof.append(nodes[lo - 1])
            hi, lo = (hi - 1) // 2, (lo - 1) // 2
        return proof

    def _path(self, i: int) -> list[bytes]:
        nodes = self._nodes
        proof = []
        while i > 0:
            proof.append(nodes[i + 1 if i % 2 else i - 1])
            i = (i - 1) // 2
        return proof

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the root, the sorted leaves and each input leaf's rank."""
        nodes, n = self._nodes, self._n
        size = len(nodes)
        data: dict[str, Any] = {
            "format": "chainabs-merkle-v1",
            "root": "0x" + self.root.hex(),
            "leaves": ["0x" + leaf.hex() for leaf in reversed(nodes[size - n :])],
        }
        if self._order is not None:
            data["order"] = [size - 1 - i for i in self._order]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MerkleTree:
        """Rebuild a tree from to_json's output; ValueError if it is malformed or its root
        does not match its leaves."""
        if data.get("format") != "chainabs-merkle-v1":
            raise ValueError(f"unknown Merkle tree format {data.get('format')!r}")
        try:
            sorted_leaves = [bytes.fromhex(h.removeprefix("0x")) for h in data["leaves"]]
            root = bytes.fromhex(data["root"].removeprefix("0x"))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed Merkle tree: {exc}") from None
        n = len(sorted_leaves)
        if n == 0 or any(len(leaf) != 32 for leaf in sorted_leaves):
            raise ValueError("malformed Merkle tree: leaves must be one or more 32-byte hashes")
        if any(a >= b for a, b in pairwise(sorted_leaves)):
            raise ValueError("malformed Merkle tree: leaves are not sorted and distinct")
        order = None
        if "order" in data:
            ranks = data["order"]
            valid = isinstance(ranks, list) and all(type(r) is int for r in ranks)
            if not valid or sorted(ranks) != list(range(n)):
                raise ValueError("malformed Merkle tree: order is not a permutation of the leaves")
            order = [2 * n - 2 - rank for rank in ranks]
        tree = cls(_build(sorted_leaves), n, order)
        if tree.root != root:
            raise ValueError("Merkle tree root does not match its leaves")
        return tree


def _build(sorted_leaves: list[bytes]) -> list[bytes]:
    """OpenZeppelin makeMerkleTree over already sorted leaves."""
    k = _batch_hasher()
    n = len(sorted_leaves)
    nodes: list[bytes] = [b""] * (n - 1) + sorted_leaves[::-1]
    for i in range(n - 2, -1, -1):
        a, b = nodes[2 * i + 1], nodes[2 * i + 2]
        nodes[i] = k(a + b if a < b else b + a)
    return nodes
