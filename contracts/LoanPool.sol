// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {LoanToken} from "./LoanToken.sol";
import {LoanBatchProof} from "./libraries/LoanBatchProof.sol";
import {IPoolBacked} from "./interfaces/IPoolBacked.sol";

/// @title LoanPool
/// @notice The special-purpose vehicle's loan book: it commits to a loan tape (Merkle root,
///         loan count, total outstanding and principal units), then buys the loans as tokens,
///         in batches whose size the originator chooses, until every committed loan is minted.
///         Each batch proves itself against the root: it mints only committed loans, in
///         ascending leaf order, so each committed loan exactly once.
///         Once filled, the originator pledges it to the one deal it backs (`pledge`, once):
///         a deal opens its offering only over a pool pledged to it, so no pool backs two deals.
contract LoanPool is AccessControl {
    /// @notice Commits the tape and mints the loans.
    bytes32 public constant ORIGINATOR_ROLE = keccak256("ORIGINATOR_ROLE");

    /// @notice The loan token registry this pool mints into.
    LoanToken public immutable loanToken;
    /// @notice ISO 4217 currency of every loan in the pool.
    string public currency;
    /// @notice Human name of the pool.
    string public name;

    /// @notice Merkle root over the pool's loan leaves (OpenZeppelin StandardMerkleTree layout).
    bytes32 public loanRoot;
    /// @notice The leaf of the last loan minted (zero before the first batch); the next batch's
    ///         leaves must all be above it.
    bytes32 public lastMintedLeaf;
    /// @notice Number of loans committed.
    uint64 public loanCount;
    /// @notice Number of loans minted so far.
    uint64 public mintedCount;
    /// @notice Sum of the committed loans' outstanding units (pool shares applied).
    uint128 public outstandingUnits;
    /// @notice Sum of the committed loans' principal units (pool shares applied).
    uint128 public principalUnits;
    /// @notice The one deal this pool backs (zero until pledged; set once).
    address public deal;

    /// @notice The tape is already committed.
    error TapeAlreadyCommitted(bytes32 root);
    /// @notice The tape commitment is empty or inconsistent.
    error InvalidTapeCommitment();
    /// @notice No tape has been committed yet.
    error TapeNotCommitted();
    /// @notice Minting this batch would exceed the committed loan count.
    error TooManyLoans(uint256 minted, uint256 batch, uint256 committed);
    /// @notice A batch carried no loans.
    error EmptyBatch();
    /// @notice The pool already backs `deal`.
    error AlreadyPledged(address deal);
    /// @notice Only a filled pool can be pledged, to a deal whose `loanPool()` is this pool.
    error CannotPledge(address deal);

    /// @notice The pool committed to its loan tape.
    event TapeCommitted(bytes32 indexed root, uint64 loanCount, uint128 outstandingUnits, uint128 principalUnits);
    /// @notice A batch of committed loans was minted into the pool.
    event LoansMinted(bytes32 indexed root, uint64 firstIndex, uint64 count, uint64 mintedCount);
    /// @notice Every committed loan is minted.
    event PoolFilled(bytes32 indexed root, uint64 loanCount, uint128 outstandingUnits);
    /// @notice The pool now backs `deal`, for good.
    event Pledged(address indexed deal);

    /// @param token_ the loan token registry (this pool needs its MINTER_ROLE to mint).
    /// @param admin receives DEFAULT_ADMIN_ROLE.
    /// @param originator receives ORIGINATOR_ROLE.
    /// @param name_ the pool's name.
    /// @param currency_ the pool's currency code.
    constructor(LoanToken token_, address admin, address originator, string memory name_, string memory currency_) {
        loanToken = token_;
        name = name_;
        currency = currency_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ORIGINATOR_ROLE, originator);
    }

    /// @notice Commit to the loan tape before any loan is minted. Only once.
    /// @param root Merkle root over the loans' leaves.
    /// @param count number of loans.
    /// @param outstanding total outstanding units.
    /// @param principal total principal units.
    function commitTape(bytes32 root, uint64 count, uint128 outstanding, uint128 principal)
        external
        onlyRole(ORIGINATOR_ROLE)
    {
        if (loanRoot != bytes32(0)) revert TapeAlreadyCommitted(loanRoot);
        if (root == bytes32(0) || count == 0 || outstanding == 0 || outstanding > principal) {
            revert InvalidTapeCommitment();
        }
        loanRoot = root;
        loanCount = count;
        outstandingUnits = outstanding;
        principalUnits = principal;
        emit TapeCommitted(root, count, outstanding, principal);
    }

    /// @notice Mint the next batch of committed loans into this pool (a true sale). Loans are
    ///         minted in ascending order of their leaves: the batch is the committed leaves of
    ///         ranks mintedCount .. mintedCount + k - 1, proven against the root by a multiproof.
    /// @param packedIds loan ids, each a length byte then its bytes.
    /// @param loanHashes the loans' TAPE.md loan hashes, in the same order, ascending by leaf.
    /// @param proof the `proof` part of OpenZeppelin's multiproof of the batch's leaves
    ///        (merkle-tree `getMultiProof` of npm package openzeppelin/merkle-tree); its flags follow from the ranks.
    function mintLoans(bytes calldata packedIds, bytes32[] calldata loanHashes, bytes32[] calldata proof)
        external
        onlyRole(ORIGINATOR_ROLE)
    {
        bytes32 root = loanRoot;
        if (root == bytes32(0)) revert TapeNotCommitted();
        uint64 first = mintedCount;
        uint64 committed = loanCount;
        uint256 n = loanHashes.length;
        if (n == 0) revert EmptyBatch();
        if (uint256(first) + n > committed) revert TooManyLoans(first, n, committed);
        lastMintedLeaf = LoanBatchProof.verify(root, committed, first, loanHashes, proof, lastMintedLeaf);
        uint64 minted = first + uint64(n);
        mintedCount = minted;
        emit LoansMinted(root, first, uint64(n), minted);
        if (minted == committed) emit PoolFilled(root, minted, outstandingUnits);
        loanToken.mintBatch(packedIds, loanHashes);
    }

    /// @notice Pledge the filled pool to the deal it backs. Only once: no pool backs two deals.
    /// @param deal_ the deal; its `loanPool()` must be this pool.
    function pledge(address deal_) external onlyRole(ORIGINATOR_ROLE) {
        if (deal != address(0)) revert AlreadyPledged(deal);
        if (!filled() || !_backedBy(deal_)) revert CannotPledge(deal_);
        deal = deal_;
        emit Pledged(deal_);
    }

    /// @dev Whether `deal_` is a contract whose `loanPool()` is this pool (false for anything else).
    function _backedBy(address deal_) private view returns (bool) {
        if (deal_.code.length == 0) return false;
        try IPoolBacked(deal_).loanPool() returns (address pool) {
            return pool == address(this);
        } catch {
            return false;
        }
    }

    /// @notice Whether every committed loan has been minted.
    function filled() public view returns (bool) {
        return loanRoot != bytes32(0) && mintedCount == loanCount;
    }

    /// @notice Check a loan against the pool's root. Anyone may call. The leaf is hashed here
    ///         from the loan hash, so no inner node of the tree passes for a loan.
    /// @param loanHash the loan's TAPE.md loan hash; its leaf is keccak256(bytes.concat(loanHash)).
    /// @param proof the Merkle proof from the chainabs service or the tape.
    function verifyLoan(bytes32 loanHash, bytes32[] calldata proof) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, loanRoot, keccak256(bytes.concat(loanHash)));
    }
}
