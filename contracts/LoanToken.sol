// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title LoanToken
/// @notice One ERC-721 token per tokenised consumer loan, shared by every chainabs pool on a
///         chain. A token id is keccak256 of the loan id, so the same loan can never be
///         tokenised twice anywhere on this chain. Each batch mint emits the loan hashes
///         (TAPE.md commitments) beside the token ids, and the pool that receives them records
///         the Merkle root over the same loans.
contract LoanToken is ERC721, AccessControl {
    /// @notice Held by pool contracts, which mint the loans they buy.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice A batch carried no loans.
    error EmptyBatch();
    /// @notice The packed loan ids and the loan hashes do not pair up.
    error BatchLengthMismatch(uint256 ids, uint256 loanHashes);
    /// @notice The packed loan ids are malformed at this byte offset.
    error MalformedLoanIds(uint256 offset);
    /// @notice This loan id is already tokenised on this chain.
    error LoanAlreadyTokenised(uint256 tokenId);

    /// @notice The commitments of one minted batch: tokenIds[i] commits to loanHashes[i].
    event LoansCommitted(address indexed pool, uint256[] tokenIds, bytes32[] loanHashes);

    /// @param admin receives DEFAULT_ADMIN_ROLE and grants MINTER_ROLE to pools.
    constructor(address admin) ERC721("chainabs Loan", "LOAN") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice The token id of a loan id: uint256(keccak256(bytes(loanId))).
    function tokenIdOf(string calldata loanId) external pure returns (uint256) {
        return uint256(keccak256(bytes(loanId)));
    }

    /// @notice Whether each token id is already minted (for pre-checks before a pool is created).
    /// @return found the indexes into `tokenIds` of the ones that exist, in order.
    function tokenised(uint256[] calldata tokenIds) external view returns (uint256[] memory found) {
        uint256[] memory hits = new uint256[](tokenIds.length);
        uint256 n;
        for (uint256 i; i < tokenIds.length; ++i) {
            if (_ownerOf(tokenIds[i]) != address(0)) hits[n++] = i;
        }
        assembly ("memory-safe") {
            mstore(hits, n)
        }
        return hits;
    }

    /// @notice Mint a batch of loans to `to` (the buying pool). The caller chooses the size.
    /// @param to the receiving pool.
    /// @param packedIds the loan ids, each as one length byte followed by its UTF-8 bytes.
    /// @param loanHashes the loan hash of each loan, in the same order.
    /// @return tokenIds the minted token ids, in order.
    function mintBatch(address to, bytes calldata packedIds, bytes32[] calldata loanHashes)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256[] memory tokenIds)
    {
        uint256 count = loanHashes.length;
        if (count == 0) revert EmptyBatch();
        tokenIds = new uint256[](count);
        uint256 offset;
        uint256 end = packedIds.length;
        for (uint256 i; i < count; ++i) {
            if (offset >= end) revert BatchLengthMismatch(i, count);
            uint256 len = uint8(packedIds[offset]);
            uint256 start = offset + 1;
            offset = start + len;
            if (len == 0 || offset > end) revert MalformedLoanIds(start - 1);
            uint256 tokenId = uint256(keccak256(packedIds[start:offset]));
            if (_update(to, tokenId, address(0)) != address(0)) revert LoanAlreadyTokenised(tokenId);
            tokenIds[i] = tokenId;
        }
        if (offset != end) revert MalformedLoanIds(offset);
        emit LoansCommitted(to, tokenIds, loanHashes);
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
