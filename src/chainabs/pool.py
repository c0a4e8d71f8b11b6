"""Tokenise a loan tape: validate, apply eligibility, commit, mint in batches, resume.

A pool's off-chain state lives in its own folder of the data dir: the secret salt (mode 0600,
never printed), `pool.json` (address, root, progress), `loans.json` (each pooled loan's
committed values, with the borrower hash instead of the reference) and `tree.json` (the
Merkle tree), so that proofs can be served later without the tape. loans.json keeps the
tape's order; the loans are minted in the tree's order (ascending leaf), each batch a run of
neighbouring leaves with its multiproof, which the pool checks against its root. Minting is
resumable at any point: the chain's `mintedCount` says how far it got, and the loans are
always minted in the same order, so a second run mints exactly the missing ones.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from chainabs import merkle
from chainabs.chain import RawCall, Sent, SetProbe
from chainabs.context import Context
from chainabs.datadir import CommittedLoan, DataDir, PoolDir, PoolRecord
from chainabs.errors import CellError, Conflict, NotFound, TapeError
from chainabs.tape import Eligibility, Loan, apply_eligibility, read_tape

MINTER_ROLE = keccak(text="MINTER_ROLE")
GAS_PER_LOAN = 27_500           # upper bound per loan in a batch, calldata and proof included
BATCH_OVERHEAD_GAS = 250_000
CHECK_CHUNK = 2_000             # token ids per `tokenised` view call
OWNERS_SLOT = 2                 # LoanToken's ERC721 `_owners` mapping (asserted by the tests)

MINT_SELECTOR = keccak(text="mintLoans(bytes,bytes32[],bytes32[])")[:4]
PROOF_NODE_GAS = 1_000          # upper bound per multiproof node: calldata and one hash

Progress = Callable[[int, int], None]


@dataclass
class MintReport:
    pool: str
    name: str
    root: str
    loans: int
    eligible: int
    ineligible: dict[str, int]
    outstanding_units: int
    minted_now: int
    batches: int
    gas_used: int
    seconds: dict[str, float]

    @property
    def gas_per_loan(self) -> float:
        return self.gas_used / self.minted_now if self.minted_now else 0.0


def committed_rows(loans: Sequence[Loan], salt: bytes,
                   borrower_hashes: Sequence[bytes] | None = None) -> list[CommittedLoan]:
    """Each loan's 15 committed values (borrower hash, never the reference); `borrower_hashes`
    when the caller already has them (merkle.commit), in the loans' order."""
    if borrower_hashes is None:
        return [CommittedLoan.of(loan, salt) for loan in loans]
    make = CommittedLoan._make
    return [make((x.loan_id, "0x" + bh.hex(), x.product, x.currency, x.principal_units, x.outstanding_units,
                  x.rate_bps, x.origination_day, x.maturity_day, x.term_months, x.repayment_type, x.status,
                  x.funded_share_bps, x.credit_score, x.region))
            for x, bh in zip(loans, borrower_hashes, strict=True)]


@dataclass(frozen=True)
class Commitment:
    """A set of loans committed under a pool's salt: each loan's hash, in the loans' order, and
    the Merkle tree over their leaves (the root the pool records). The initial pool and every
    purchase are committed this way."""

    loan_hashes: list[bytes]
    tree: merkle.MerkleTree
    borrower_hashes: list[bytes]

    @property
    def root(self) -> str:
        return "0x" + self.tree.root.hex()


def commit(loans: Sequence[Loan], salt: bytes) -> Commitment:
    """The loans' commitment under the pool's salt (TAPE.md: loan hash, leaf, sorted tree)."""
    loan_hashes, leaves, borrower_hashes = merkle.commit(loans, salt)
    return Commitment(loan_hashes, merkle.MerkleTree.from_leaves(leaves), borrower_hashes)


@dataclass(frozen=True)
class MintBatch:
    """One `mintLoans` call: the loans at `indices` (input indices of the tree, a run of
    `tree.sorted_indices()`), in ascending leaf order, with their multiproof's sibling hashes."""

    indices: list[int]
    packed_ids: bytes
    loan_hashes: list[bytes]
    proof: list[bytes]

    def calldata(self) -> bytes:
        """mintLoans(packed_ids, loan_hashes, proof) ABI-encoded: the three offsets, then each
        argument's length word and contents (the bytes zero-padded to a whole word), as
        eth_abi encodes them (tests/test_pool.py checks) without its per-element checks."""
        ids, hashes, proof = self.packed_ids, self.loan_hashes, self.proof
        if any(len(h) != 32 for h in (*hashes, *proof)):
            raise ValueError("loan hashes and proof nodes are 32 bytes each")
        padded = (len(ids) + 31) // 32 * 32
        hashes_at = 0x60 + 32 + padded
        proof_at = hashes_at + 32 + 32 * len(hashes)
        word = _word
        return b"".join((MINT_SELECTOR, word(0x60), word(hashes_at), word(proof_at),
                         word(len(ids)), ids, bytes(padded - len(ids)),
                         word(len(hashes)), *hashes, word(len(proof)), *proof))


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def batch_end(tree: merkle.MerkleTree, minted: int, size: int) -> int:
    """Where the batch from rank `minted` ends: after `size` loans, at the last loan, or where
    the tree's lowest level of leaves ends (a batch keeps to one level: LoanBatchProof)."""
    end = min(minted + size, len(tree))
    lowest = tree.lowest_level_leaves()
    return lowest if minted < lowest < end else end


def run_batch(tree: merkle.MerkleTree, loan_ids: Sequence[str], loan_hashes: Sequence[bytes],
              order: Sequence[int], first: int, end: int) -> MintBatch:
    """mint_batch for the ranks first .. end-1 of `order` (the tree's sorted_indices()): the
    same batch, built without re-hashing its leaves and with the run's proof in O(log n)."""
    indices = list(order[first:end])
    ids = [loan_ids[i].encode() for i in indices]
    packed = b"".join(bytes((len(x),)) + x for x in ids)
    return MintBatch(indices, packed, [bytes(loan_hashes[i]) for i in indices], tree.run_proof(first, end - first))


def mint_batch(tree: merkle.MerkleTree, loan_ids: Sequence[str], loan_hashes: Sequence[bytes],
               indices: Sequence[int]) -> MintBatch:
    """The arguments of `mintLoans` for the loans at `indices` (loan_ids and loan_hashes in the
    order the tree was built from); the tree orders them and proves them."""
    mp = tree.multiproof(indices)
    leaves = {i: merkle.leaf_from_loan_hash(loan_hashes[i]) for i in indices}
    ordered = sorted(leaves, key=leaves.__getitem__)
    if [leaves[i] for i in ordered] != mp.leaves:
        raise ValueError("the loan hashes do not give the tree's leaves")
    hashes = [bytes(loan_hashes[i]) for i in ordered]
    ids = (loan_ids[i].encode() for i in ordered)
    packed = b"".join(bytes([len(x)]) + x for x in ids)
    return MintBatch(list(ordered), packed, hashes, mp.proof)


# -- the pipeline ------------------------------------------------------------------------------

def _check_not_tokenised(ctx: Context, loans: Sequence[Loan], *, besides: str) -> None:
    """A loan id already tokenised on this chain by another pool of this data dir is a tape error.

    Token ids are per pool (`merkle.token_id(pool, loan_id)`), so the question is asked of each
    of the data dir's other pools on this chain: a pool elsewhere cannot block an honest tape
    by tokenising its ids first (SECURITY.md, finding 5)."""
    probe = SetProbe(ctx.core.contracts["LoanToken"], OWNERS_SLOT, "tokenised(uint256[])", CHECK_CHUNK)
    found: set[int] = set()
    for folder in DataDir(ctx.data_dir).pools():
        record = folder.read_record()
        if (record is None or folder.slug == besides or not record.address
                or record.chain_id != ctx.chain.chain_id or record.status == "planned"):
            continue
        found.update(ctx.chain.members(probe, [merkle.token_id(record.address, x.loan_id) for x in loans]))
    errors = [CellError(loans[i].line, "loan_id", loans[i].loan_id, "already tokenised on chain")
              for i in sorted(found)]
    if errors:
        raise TapeError(errors[:1000], len(errors))


def _batch_size(ctx: Context) -> int:
    """Loans per batch: keep each transaction within half the block's gas limit (the EIP-1559
    target), so batches fit any block and the base fee does not climb during a long mint."""
    limit = _block_limit(ctx)
    return max(1, (limit // 2 - BATCH_OVERHEAD_GAS) // GAS_PER_LOAN)


def create_pool(ctx: Context, *, tape_path: str | os.PathLike[str], name: str, currency: str | None = None,
                decimals: int = 6, eligibility: Eligibility | None = None, batch_size: int | None = None,
                progress: Progress | None = None, stop_after_batches: int | None = None) -> MintReport:
    """Tokenise the eligible loans of a tape into a new pool, or finish an interrupted run.

    `stop_after_batches` stops early on purpose (for tests of resumption).
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    raw = Path(tape_path).read_bytes()
    seconds["read"] = time.perf_counter() - started

    started = time.perf_counter()
    tape = read_tape(tape_path, decimals=decimals)
    if currency is not None and tape.currency != currency:
        raise TapeError([CellError(tape.loans[0].line, "currency", tape.currency,
                                   f"the pool's currency is {currency}")])
    eligible, rejected = apply_eligibility(tape.loans, eligibility or Eligibility())
    if not eligible:
        raise TapeError([CellError(1, "", "", "no loan of the tape is eligible for the pool")])
    folder = DataDir(ctx.data_dir).pool(name)
    folder.create()
    record = folder.read_record()
    tape_sha = hashlib.sha256(raw).hexdigest()
    if record is not None and record.tape_sha256 != tape_sha:
        raise Conflict(f"pool {name!r} already exists in {folder.folder} with a different tape")
    chain = ctx.chain
    _check_not_tokenised(ctx, eligible, besides=folder.slug)
    seconds["validate"] = time.perf_counter() - started

    started = time.perf_counter()
    salt = folder.salt()
    commitment = commit(eligible, salt)
    loan_hashes, tree, root = commitment.loan_hashes, commitment.tree, commitment.root
    borrower_hashes = commitment.borrower_hashes
    outstanding = sum(x.outstanding_units for x in eligible)
    principal = sum(x.principal_units for x in eligible)
    if record is None:
        record = PoolRecord(name=name, currency=tape.currency, decimals=decimals, chain_id=chain.chain_id,
                            tape_sha256=tape_sha, root=root, loan_count=len(eligible),
                            outstanding_units=outstanding, principal_units=principal)
        folder.write_loans(committed_rows(eligible, salt, borrower_hashes))
        folder.write_tree(tree)
        folder.write_record(record)
    elif record.root != root:
        raise Conflict(f"pool {name!r}: recomputed root {root} differs from the recorded {record.root}")
    seconds["hash"] = time.perf_counter() - started

    started = time.perf_counter()
    pool, record = _ensure_deployed(ctx, record, folder)
    gas_used, batches = 0, 0
    size = batch_size or _batch_size(ctx)
    minted = int(chain.call(pool.functions.mintedCount()))
    first_minted = minted
    if progress:
        progress(minted, len(eligible))
    order = tree.sorted_indices()
    loan_ids = [x.loan_id for x in eligible]
    block_limit = _block_limit(ctx)
    sizes: deque[int] = deque()  # loans of each batch sent and not yet mined

    def batches_from(rank: int) -> Iterator[tuple[RawCall, int]]:
        """Each next batch's call and gas limit, encoded while the chain mines the ones before."""
        count = 0
        while rank < len(eligible) and (stop_after_batches is None or count < stop_after_batches):
            batch = run_batch(tree, loan_ids, loan_hashes, order, rank, batch_end(tree, rank, size))
            gas = min(BATCH_OVERHEAD_GAS + GAS_PER_LOAN * len(batch.indices) + 16 * len(batch.packed_ids)
                      + PROOF_NODE_GAS * len(batch.proof), block_limit)
            sizes.append(len(batch.indices))
            yield RawCall(pool.address, batch.calldata()), gas
            rank += len(batch.indices)
            count += 1

    def mined(sent: Sent) -> None:
        nonlocal minted, gas_used, batches
        loans = sizes.popleft()
        if sent.receipt["status"] != 1:
            return  # send_many raises its revert once the batches in flight are collected
        minted += loans
        gas_used += sent.gas_used
        batches += 1
        if progress:
            progress(minted, len(eligible))

    chain.send_many(batches_from(minted), mined=mined)
    if minted == len(eligible):
        folder.write_record(replace(record, status="filled"))
    seconds["mint"] = time.perf_counter() - started

    ineligible: dict[str, int] = {}
    for _, reason in rejected:
        ineligible[reason] = ineligible.get(reason, 0) + 1
    return MintReport(pool=pool.address, name=name, root=root, loans=len(tape.loans), eligible=len(eligible),
                      ineligible=ineligible, outstanding_units=outstanding, minted_now=minted - first_minted,
                      batches=batches, gas_used=gas_used, seconds={k: round(v, 3) for k, v in seconds.items()})


def _block_limit(ctx: Context) -> int:
    return int(ctx.chain._rpc(lambda: ctx.chain.w3.eth.get_block("latest"))["gasLimit"])


def _has_code(ctx: Context, address: str) -> bool:
    return bool(ctx.chain._rpc(lambda: bytes(ctx.chain.w3.eth.get_code(to_checksum_address(address)))))


def _ensure_deployed(ctx: Context, record: PoolRecord, folder: PoolDir) -> tuple[Any, PoolRecord]:
    """Deploy the pool, let it mint, and commit the tape: each step only if not yet done;
    returns the pool contract and the record as now written."""
    chain = ctx.chain
    admin = chain.accounts[0]
    if record.address and _has_code(ctx, record.address):
        pool = chain.contract("LoanPool", record.address)
    else:
        block = chain.block_number() + 1
        pool = chain.deploy("LoanPool", ctx.core.contracts["LoanToken"], admin, admin, record.name,
                            record.currency, sender=admin)
        record = replace(record, address=pool.address, deployment_block=block, status="deployed")
        folder.write_record(record)
    token = chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    if not chain.call(token.functions.hasRole(MINTER_ROLE, pool.address)):
        chain.send(token.functions.grantRole(MINTER_ROLE, pool.address), sender=admin)
    onchain_root = bytes(chain.call(pool.functions.loanRoot()))
    if onchain_root == bytes(32):
        chain.send(pool.functions.commitTape(bytes.fromhex(record.root[2:]), record.loan_count,
                                             record.outstanding_units, record.principal_units), sender=admin)
    elif "0x" + onchain_root.hex() != record.root:
        raise Conflict(f"pool {pool.address} is committed to root 0x{onchain_root.hex()}, not {record.root}")
    if record.status in ("planned", "deployed"):
        record = replace(record, status="committed")
        folder.write_record(record)
    return pool, record


# -- proofs ------------------------------------------------------------------------------------

@dataclass
class LoanProof:
    loan_id: str
    index: int
    values: list[Any]
    loan_hash: str
    leaf: str
    proof: list[str]
    root: str
    token_id: str
    verified_on_chain: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PoolFiles:
    """A pool folder opened for reading: its record, committed loans and tree, read lazily."""

    def __init__(self, folder: Path | PoolDir) -> None:
        self.dir = folder if isinstance(folder, PoolDir) else PoolDir(folder)
        record = self.dir.read_record()
        if record is None:
            raise NotFound(f"no pool in {self.dir.folder}")
        self.folder = self.dir.folder
        self.record = record
        self._rows: list[CommittedLoan] | None = None
        self._tree: merkle.MerkleTree | None = None
        self._index: dict[str, int] | None = None

    @property
    def rows(self) -> list[CommittedLoan]:
        """The pool's committed loans, in the order they were minted."""
        if self._rows is None:
            self._rows = self.dir.read_loans()
        return self._rows

    @property
    def tree(self) -> merkle.MerkleTree:
        if self._tree is None:
            self._tree = self.dir.read_tree()
        return self._tree

    def index_of(self, loan_id: str) -> int:
        if self._index is None:
            self._index = {row.loan_id: i for i, row in enumerate(self.rows)}
        try:
            return self._index[loan_id]
        except KeyError:
            raise NotFound(f"loan {loan_id!r} is not in pool {self.record.name!r}") from None

    def proof(self, loan_id: str) -> LoanProof:
        i = self.index_of(loan_id)
        row = self.rows[i]
        loan_hash = row.loan_hash()
        leaf = merkle.leaf_from_loan_hash(loan_hash)
        return LoanProof(loan_id=loan_id, index=i, values=list(row), loan_hash="0x" + loan_hash.hex(),
                         leaf="0x" + leaf.hex(), proof=["0x" + p.hex() for p in self.tree.proof(leaf)],
                         root=self.record.root, token_id=hex(self.token_id(loan_id)))

    def token_id(self, loan_id: str) -> int:
        """The loan's token id in this pool (LoanToken.tokenIdOf(pool, loan_id))."""
        if not self.record.address:
            raise Conflict(f"pool {self.record.name!r} is not deployed yet")
        return merkle.token_id(self.record.address, loan_id)

    def mint_order(self) -> list[int]:
        """Indices into `rows` in the order the pool minted them: ascending leaf, recomputed
        from the rows themselves."""
        leaves = [row.leaf() for row in self.rows]
        return sorted(range(len(leaves)), key=leaves.__getitem__)


def find_pool(data_dir: Path | DataDir, name: str | None = None) -> PoolFiles:
    """The named pool, or the only pool of the data dir."""
    root = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    return PoolFiles(root.find_pool(name))


def verify_proof_on_chain(ctx: Context, files: PoolFiles, proof: LoanProof) -> bool:
    """The pool contract's own answer: verifyLoan(loan hash, proof), which hashes the leaf."""
    if not files.record.address:
        raise Conflict(f"pool {files.record.name!r} is not deployed yet")
    pool = ctx.chain.contract("LoanPool", files.record.address)
    return bool(ctx.chain.call(pool.functions.verifyLoan(bytes.fromhex(proof.loan_hash[2:]),
                                                         [bytes.fromhex(p[2:]) for p in proof.proof])))
