// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title LoanToken
/// @notice One ERC-721 token per tokenised consumer loan, shared by every chainabs pool on a
///         chain. A pool mints to itself, and a token id is keccak256 of the pool's address and
///         the loan id: a loan id is tokenised at most once per pool, and no minter can take
///         (or mint into) another pool's ids. Each batch mint emits the loan hashes (TAPE.md
///         commitments) after the Transfer events that carry the token ids, in the same order,
///         and the pool that mints them proves them against the Merkle root it committed to.
contract LoanToken is ERC721, AccessControl {
    /// @dev Storage slot of OpenZeppelin ERC721's private `_owners` mapping in this contract.
    uint256 private constant OWNERS_SLOT = 2;
    /// @dev keccak256("Transfer(address,address,uint256)").
    bytes32 private constant TRANSFER_SIG = 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef;

    /// @dev keccak256("LoansCommitted(address,bytes32[])").
    bytes32 private constant COMMITTED_SIG = 0xc622432ed302f081b7249c7998ba9d28699db83b22370dc58271ccf23cfd5d06;

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

    /// @notice The commitments of one minted batch: the i-th Transfer (mint) event of this
    ///         transaction before this event carries the token id that commits to loanHashes[i].
    ///         The token ids are not repeated here: each Transfer already has its id as a topic.
    event LoansCommitted(address indexed pool, bytes32[] loanHashes);

    /// @param admin receives DEFAULT_ADMIN_ROLE and grants MINTER_ROLE to pools.
    constructor(address admin) ERC721("chainabs Loan", "LOAN") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice The token id of a loan id minted by `pool`: uint256(keccak256(abi.encodePacked(pool, loanId))).
    /// @param pool the minting pool.
    /// @param loanId the loan id as the tape gives it.
    function tokenIdOf(address pool, string calldata loanId) external pure returns (uint256) {
        return uint256(keccak256(abi.encodePacked(pool, loanId)));
    }

    /// @notice Whether each token id is already minted (for pre-checks before a pool is created).
    /// @return found the indexes into `tokenIds` of the ones that exist, in order.
    function tokenised(uint256[] calldata tokenIds) external view returns (uint256[] memory found) {
        assembly ("memory-safe") {
            found := mload(0x40)
            let out := add(found, 0x20)
            let n := 0
            for { let i := 0 } lt(i, tokenIds.length) { i := add(i, 1) } {
                mstore(0x00, calldataload(add(tokenIds.offset, shl(5, i))))
                mstore(0x20, OWNERS_SLOT)
                if sload(keccak256(0x00, 0x40)) {
                    mstore(add(out, shl(5, n)), i)
                    n := add(n, 1)
                }
            }
            mstore(found, n)
            mstore(0x40, add(out, shl(5, n)))
        }
    }

    /// @notice Mint a batch of loans to the caller (the buying pool), in the caller's token id
    ///         namespace. The caller chooses the size.
    /// @dev The loop is hand-written: it writes OpenZeppelin ERC721's `_owners` mapping (storage
    ///      slot OWNERS_SLOT, checked against the compiler's storage layout by the tests) and
    ///      emits the standard Transfer event per token, then adds the batch to the receiver's
    ///      balance once. That keeps a loan at one fresh storage slot plus its event and calldata.
    ///      A token already owned stops the loop at once; the loan ids' lengths are checked for
    ///      the whole batch after it, without a branch per id (every length less one is ORed
    ///      together: one of 0 or above 64 leaves a bit above 63), and the ids must end exactly
    ///      at the end of `packedIds`. Any failure reverts with the first offending id's error,
    ///      found by `_firstFailure` in a second pass, as a check of each id in turn would.
    /// @param packedIds the loan ids, each as one length byte (1-64) followed by its bytes.
    /// @param loanHashes the loan hash of each loan, in the same order.
    function mintBatch(bytes calldata packedIds, bytes32[] calldata loanHashes) external onlyRole(MINTER_ROLE) {
        uint256 count = loanHashes.length;
        if (count == 0) revert EmptyBatch();
        address to = msg.sender;
        uint256 owned; // ids before the one found owned (count when none was)
        uint256 clean;
        assembly ("memory-safe") {
            // Free memory holds the token id preimage (the pool's 20 address bytes, then the loan
            // id: up to 275 bytes, as a length byte reads), then after the loop the event data.
            let preimage := mload(0x40)
            mstore(preimage, shl(96, to))
            let idStart := add(preimage, 20)
            let ptr := packedIds.offset
            let lengths := 0
            let left := count
            mstore(0x20, OWNERS_SLOT) // the owner slot's preimage is (token id, OWNERS_SLOT)
            for {} left { left := sub(left, 1) } {
                let len := shr(248, calldataload(ptr))
                let start := add(ptr, 1)
                ptr := add(start, len)
                lengths := or(lengths, sub(len, 1))
                calldatacopy(idStart, start, len)
                let tokenId := keccak256(preimage, add(20, len))
                mstore(0x00, tokenId)
                let slot := keccak256(0x00, 0x40)
                if sload(slot) { break }
                sstore(slot, to)
                log4(0, 0, TRANSFER_SIG, 0, to, tokenId)
            }
            owned := sub(count, left)
            clean := and(iszero(left), and(lt(lengths, 64), eq(ptr, add(packedIds.offset, packedIds.length))))
            if clean {
                // the LoansCommitted event data, abi.encode(bytes32[] loanHashes): the
                // calldata's array with its offset word
                let data := add(preimage, 0x120)
                mstore(data, 0x20)
                mstore(add(data, 0x20), count)
                calldatacopy(add(data, 0x40), loanHashes.offset, shl(5, count))
                log2(data, add(0x40, shl(5, count)), COMMITTED_SIG, to)
            }
        }
        if (clean == 0) _revertFirstFailure(packedIds, count, owned);
        _increaseBalance(to, uint128(count));
    }

    /// @dev Revert with the error of the first offending id of a failed batch, in id order: a
    ///      malformed id (its length byte's offset, or the end of the ids when they run short or
    ///      long), or the token found owned at index `owned`. Reads only `packedIds`: the ids
    ///      before `owned` parsed the same in mintBatch's loop, the ones from a malformed id on
    ///      are not looked at.
    function _revertFirstFailure(bytes calldata packedIds, uint256 count, uint256 owned) private view {
        uint256 ptr = 0;
        uint256 end = packedIds.length;
        for (uint256 i; i < count; ++i) {
            if (ptr >= end) revert MalformedLoanIds(ptr);
            uint256 len = uint8(packedIds[ptr]);
            if (len == 0 || len > 64 || ptr + 1 + len > end) revert MalformedLoanIds(ptr);
            if (i == owned) {
                revert LoanAlreadyTokenised(uint256(keccak256(abi.encodePacked(msg.sender, packedIds[ptr + 1:ptr + 1 + len]))));
            }
            ptr += 1 + len;
        }
        revert MalformedLoanIds(ptr);
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
