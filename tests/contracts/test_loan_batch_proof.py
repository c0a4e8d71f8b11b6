"""LoanBatchProof alone (through LoanBatchProofHarness): every run of neighbouring leaves on
one level of small trees verifies with the multiproof merkle.py builds (OpenZeppelin's, checked
against @openzeppelin/merkle-tree in test_merkle.py), and every tampered, out-of-order or
level-crossing batch fails."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_utils import keccak

from chainabs import merkle
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert


@pytest.fixture
def harness(chain: EmbeddedChain, core: Manifest) -> Any:
    return chain.deploy("LoanBatchProofHarness")


def _tree(n: int, seed: int = 0) -> tuple[list[bytes], merkle.MerkleTree]:
    hashes = [keccak(b"%d-%d" % (seed, i)) for i in range(n)]
    return hashes, merkle.MerkleTree.from_leaves([merkle.leaf_from_loan_hash(h) for h in hashes])


def _run(tree: merkle.MerkleTree, hashes: list[bytes], first: int, k: int) -> tuple[list[bytes], list[bytes]]:
    """(loan hashes in ascending leaf order, multiproof siblings) of ranks first .. first+k-1."""
    indices = tree.sorted_indices()[first:first + k]
    mp = tree.multiproof(indices)
    return [hashes[i] for i in indices], mp.proof


def _error(chain: EmbeddedChain, fn: Any) -> str:
    with pytest.raises(ContractRevert) as info:
        chain.call(fn)
    return info.value.name


def test_every_run_of_every_small_tree(chain: EmbeddedChain, harness: Any) -> None:
    zero = bytes(32)
    for n in range(1, 10):
        hashes, tree = _tree(n, seed=n)
        leaves = sorted(merkle.leaf_from_loan_hash(h) for h in hashes)
        lowest = tree.lowest_level_leaves()
        for first in range(n):
            previous = leaves[first - 1] if first else zero
            for k in range(1, n - first + 1):
                batch, proof = _run(tree, hashes, first, k)
                verify = harness.functions.verify
                if first < lowest < first + k:
                    assert _error(chain, verify(tree.root, n, first, batch, proof, previous)) == "BatchCrossesLeafLevels"
                    continue
                assert chain.call(verify(tree.root, n, first, batch, proof, previous)) == leaves[first + k - 1]
                if proof:
                    bad = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
                    assert _error(chain, verify(tree.root, n, first, batch, bad, previous)) == "BatchNotCommitted"
                    assert _error(chain, verify(tree.root, n, first, batch, proof[:-1], previous)) == "BatchNotCommitted"
                assert _error(chain, verify(tree.root, n, first, batch, [*proof, tree.root], previous)) == "BatchNotCommitted"
                if k > 1:
                    swapped = [batch[1], batch[0], *batch[2:]]
                    assert _error(chain, verify(tree.root, n, first, swapped, proof, previous)) == "LoanOutOfOrder"
                    assert _error(chain, verify(tree.root, n, first, batch[:-1], proof, previous)) == "BatchNotCommitted"
                if first:  # the leaf before the batch must be below it
                    assert _error(chain, verify(tree.root, n, first, batch, proof, leaves[first])) == "LoanOutOfOrder"


def test_the_batch_must_fit_the_tree(chain: EmbeddedChain, harness: Any) -> None:
    hashes, tree = _tree(4)
    batch, proof = _run(tree, hashes, 0, 4)
    verify = harness.functions.verify
    zero = bytes(32)
    assert _error(chain, verify(tree.root, 4, 0, [], [tree.root], zero)) == "BatchNotCommitted"
    assert _error(chain, verify(tree.root, 3, 0, batch, proof, zero)) == "BatchNotCommitted"
    assert _error(chain, verify(tree.root, 4, 1, batch, proof, zero)) == "BatchNotCommitted"
    assert _error(chain, verify(tree.root, 2**255, 2**255 - 1, batch, proof, zero)) == "BatchNotCommitted"
    assert _error(chain, verify(tree.root, 4, 2**256 - 1, batch, proof, zero)) == "BatchNotCommitted"
    leaf = merkle.leaf_from_loan_hash(hashes[0])
    assert _error(chain, verify(leaf, 1, 0, [leaf], [], zero)) == "BatchNotCommitted"  # a leaf is not a loan hash
    one_hashes, one = _tree(1)
    assert chain.call(verify(one.root, 1, 0, one_hashes, [], zero)) == one.root


@pytest.mark.parametrize("n, runs", [(1000, 8), (1025, 4)])
def test_runs_of_larger_trees(chain: EmbeddedChain, harness: Any, n: int, runs: int) -> None:
    hashes, tree = _tree(n, seed=n)
    leaves = sorted(merkle.leaf_from_loan_hash(h) for h in hashes)
    rng = random.Random(n)
    lowest = tree.lowest_level_leaves()
    for first, k in [(0, 1), (0, lowest), (lowest, n - lowest), (n - 1, 1),
                     *((f, rng.randint(1, (lowest if f < lowest else n) - f)) for f in rng.sample(range(n), runs))]:
        batch, proof = _run(tree, hashes, first, k)
        previous = leaves[first - 1] if first else bytes(32)
        assert chain.call(harness.functions.verify(tree.root, n, first, batch, proof, previous)) == leaves[first + k - 1]
