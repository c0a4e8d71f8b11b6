// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title NaiveLoanNFT
/// @notice Benchmark baseline only: the obvious design, one OpenZeppelin ERC-721 mint a loan
///         with its commitment stored in a mapping. Not deployed by chainabs.
contract NaiveLoanNFT is ERC721, Ownable {
    /// @notice The loan hash each token commits to.
    mapping(uint256 tokenId => bytes32 loanHash) public loanHashOf;

    /// @param owner_ may mint.
    constructor(address owner_) ERC721("Naive Loan", "NLOAN") Ownable(owner_) {}

    /// @notice Mint one loan token and store its commitment.
    /// @param to receiver.
    /// @param loanId the loan id (token id = keccak256 of it).
    /// @param loanHash the loan's commitment.
    function mint(address to, string calldata loanId, bytes32 loanHash) external onlyOwner {
        uint256 tokenId = uint256(keccak256(bytes(loanId)));
        loanHashOf[tokenId] = loanHash;
        _mint(to, tokenId);
    }
}
