// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title LoanBatchProof
/// @notice Proves that a batch of loan hashes is a run of neighbouring leaves of a pool's
///         committed Merkle tree, with OpenZeppelin's multiproof of those leaves.
/// @dev The tree is OpenZeppelin's StandardMerkleTree layout (as @openzeppelin/merkle-tree builds
///      it and `MerkleProof.multiProofVerify` checks it): n leaves sorted ascending and stored at
///      tree indices 2n-2 down to n-1, node i's children at 2i+1 and 2i+2, pairs hashed in
///      sorted order. A leaf is keccak256(bytes.concat(loanHash)), hashed here, so a caller can
///      never pass an inner node off as a loan.
///
///      A batch is the leaves of ranks `first` .. `first + k - 1` in ascending order, all on one
///      level of the tree (when n is not a power of two the 2n - 2^floor(log2(2n-1)) smallest
///      leaves sit one level below the others, and a batch may not hold leaves of both). Such a
///      run of tree indices has a run of parents, so the batch is hashed up level by level in
///      place: neighbours pair up, and only a run's ends take a sibling from the proof. That is
///      what OpenZeppelin's `processMultiProof` computes for these leaves, and the `proof` is
///      merkle-tree's `getMultiProof(...).proof` for them, unchanged; the proof flags are not
///      passed, the positions imply them.
///
///      Commutative pair hashing binds the batch's leaves to the root, not to their positions: a
///      subtree may be claimed at its sibling's place. The strict ascending order across every
///      batch of a pool (`previous`, the last leaf of the batch before) closes that: n strictly
///      ascending members of an n-leaf tree are each leaf exactly once.
library LoanBatchProof {
    /// @notice The batch's leaf at `index` is not above the leaf before it (in this batch or
    ///         the last one minted): batches take the committed leaves in ascending order.
    error LoanOutOfOrder(uint256 index);
    /// @notice The batch and its proof do not rebuild the committed root at these ranks.
    error BatchNotCommitted();
    /// @notice The batch holds leaves of the tree's two lowest levels: split it at this rank.
    error BatchCrossesLeafLevels(uint256 rank);

    /// @notice The number of leaves on the lowest level of an n-leaf tree: ranks below it are
    ///         one level deeper than the rest. n when n is a power of two.
    /// @param leafCount the number of leaves (at least one).
    function lowestLevelLeaves(uint256 leafCount) internal pure returns (uint256) {
        return 2 * leafCount - (1 << Math.log2(2 * leafCount - 1));
    }

    /// @notice Check `loanHashes` against `root` as the leaves of ranks first .. first+k-1 of a
    ///         `leafCount`-leaf tree, each leaf above the one before and above `previous`.
    /// @param root the committed Merkle root.
    /// @param leafCount the number of leaves under `root`.
    /// @param first the rank (0-based, ascending leaf order) of the batch's first leaf.
    /// @param loanHashes the batch's loan hashes; leaf = keccak256(bytes.concat(loanHash)).
    /// @param proof the sibling hashes of OpenZeppelin's multiproof of these leaves.
    /// @param previous the leaf minted just before this batch (zero for the first batch).
    /// @return last the batch's last (largest) leaf.
    function verify(
        bytes32 root,
        uint256 leafCount,
        uint256 first,
        bytes32[] calldata loanHashes,
        bytes32[] calldata proof,
        bytes32 previous
    ) internal pure returns (bytes32 last) {
        uint256 k = loanHashes.length;
        if (k == 0 || leafCount > type(uint128).max || first >= leafCount || k > leafCount - first) {
            revert BatchNotCommitted();
        }
        uint256 lowest = lowestLevelLeaves(leafCount);
        if (first < lowest && first + k > lowest) revert BatchCrossesLeafLevels(lowest);
        bool unordered;
        bool committed;
        assembly ("memory-safe") {
            // Memory past the free memory pointer, which is left alone (it is scratch, reused
            // by whatever comes next): the root, then a word kept free for a sibling from the
            // proof, then the run of nodes, buf[i] being tree index hi - i. The root waits in
            // memory so that the loops have the stack to themselves.
            let buf := add(mload(0x40), 0x40)
            mstore(sub(buf, 0x40), root)
            let end := buf
            let p := loanHashes.offset
            let pend := add(p, shl(5, k))
            let pp := proof.offset
            let hi := sub(sub(shl(1, leafCount), 2), first)
            // Each leaf must be above the one before: checked without a branch per leaf. The
            // leaves are hashed from the calldata and paired on the way, two at a time: two
            // neighbours of the run are in ascending order when the check passes, so their
            // pair hash (in sorted order) is that of the pair as it comes. Only the run's ends
            // may take a sibling from the proof, top first, and those pairs are sorted.
            last := previous
            if and(hi, 1) {
                mstore(0x00, calldataload(p))
                let leaf := keccak256(0x00, 0x20)
                unordered := iszero(gt(leaf, last))
                last := leaf
                p := add(p, 0x20)
                let s := calldataload(pp)
                pp := add(pp, 0x20)
                let x := xor(leaf, s)
                let lo := xor(s, mul(x, lt(leaf, s)))
                mstore(0x00, lo)
                mstore(0x20, xor(x, lo))
                mstore(end, keccak256(0x00, 0x40))
                end := add(end, 0x20)
            }
            for { let pairsEnd := sub(pend, and(sub(pend, p), 0x20)) } lt(p, pairsEnd) { p := add(p, 0x40) } {
                mstore(0x00, calldataload(p))
                let a := keccak256(0x00, 0x20)
                mstore(0x00, a)
                mstore(0x20, calldataload(add(p, 0x20)))
                let b := keccak256(0x20, 0x20)
                mstore(0x20, b)
                unordered := or(unordered, iszero(and(gt(a, last), gt(b, a))))
                last := b
                mstore(end, keccak256(0x00, 0x40))
                end := add(end, 0x20)
            }
            if lt(p, pend) {
                mstore(0x00, calldataload(p))
                let leaf := keccak256(0x00, 0x20)
                unordered := or(unordered, iszero(gt(leaf, last)))
                last := leaf
                switch hi
                case 0 {
                    // a one-leaf tree: the leaf is the root
                    mstore(end, leaf)
                }
                default {
                    let s := calldataload(pp)
                    pp := add(pp, 0x20)
                    let x := xor(leaf, s)
                    let lo := xor(s, mul(x, lt(leaf, s)))
                    mstore(0x00, lo)
                    mstore(0x20, xor(x, lo))
                    mstore(end, keccak256(0x00, 0x40))
                }
                end := add(end, 0x20)
            }
            if hi { hi := shr(1, sub(hi, 1)) } // the leaves' parents (a one-leaf tree has none)
            for {} hi {} {
                // One level of inner nodes, as the leaf level above: its top node when it is a
                // left child (odd index) and its bottom node when it is a right child take
                // their siblings from the proof, top first; proof hashes are read past the
                // proof's end only to fail below.
                let r := buf
                if and(hi, 1) {
                    r := sub(buf, 0x20)
                    mstore(r, calldataload(pp))
                    pp := add(pp, 0x20)
                }
                if and(shr(5, sub(end, r)), 1) {
                    mstore(end, calldataload(pp))
                    pp := add(pp, 0x20)
                    end := add(end, 0x20)
                }
                // the parents overwrite the run from its start: a pair is read before its
                // parent is written, and the write never passes the read
                let w := buf
                for {} lt(r, end) { r := add(r, 0x40) } {
                    let a := mload(r)
                    let b := mload(add(r, 0x20))
                    let x := xor(a, b)
                    let lo := xor(b, mul(x, lt(a, b)))
                    mstore(0x00, lo)
                    mstore(0x20, xor(x, lo))
                    mstore(w, keccak256(0x00, 0x40))
                    w := add(w, 0x20)
                }
                end := w
                hi := shr(1, sub(hi, 1))
            }
            // the root alone is left, and the whole proof is used
            committed := and(and(eq(end, add(buf, 0x20)), eq(pp, add(proof.offset, shl(5, proof.length)))),
                             eq(mload(buf), mload(sub(buf, 0x40))))
        }
        if (unordered) revert LoanOutOfOrder(_firstOutOfOrder(loanHashes, previous));
        if (!committed) revert BatchNotCommitted();
    }

    /// @dev The index of the first of `loanHashes` whose leaf is not above the one before it
    ///      (`previous` before the first); only called when there is one.
    function _firstOutOfOrder(bytes32[] calldata loanHashes, bytes32 previous) private pure returns (uint256 i) {
        bytes32 before = previous;
        for (; i < loanHashes.length; ++i) {
            bytes32 leaf = keccak256(bytes.concat(loanHashes[i]));
            if (leaf <= before) return i;
            before = leaf;
        }
    }
}
