// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {LoanBatchProof} from "../libraries/LoanBatchProof.sol";

/// @title LoanBatchProofHarness
/// @notice Exposes LoanBatchProof to the tests, which check it alone against every run of small
///         trees and against OpenZeppelin's multiproofs. Not deployed by chainabs.
contract LoanBatchProofHarness {
    /// @notice LoanBatchProof.verify as an external call.
    /// @param root the committed Merkle root.
    /// @param leafCount the number of leaves under `root`.
    /// @param first the rank of the batch's first leaf.
    /// @param loanHashes the batch's loan hashes, ascending by leaf.
    /// @param proof the multiproof's sibling hashes.
    /// @param previous the leaf before the batch (zero for none).
    /// @return last the batch's last leaf.
    function verify(
        bytes32 root,
        uint256 leafCount,
        uint256 first,
        bytes32[] calldata loanHashes,
        bytes32[] calldata proof,
        bytes32 previous
    ) external pure returns (bytes32 last) {
        return LoanBatchProof.verify(root, leafCount, first, loanHashes, proof, previous);
    }
}
