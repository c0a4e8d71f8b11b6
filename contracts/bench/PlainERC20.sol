// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title PlainERC20
/// @notice Benchmark baseline only: an unmodified OpenZeppelin ERC-20 with its supply minted to
///         the deployer. Not deployed by chainabs.
contract PlainERC20 is ERC20 {
    /// @param supply units minted to the deployer.
    constructor(uint256 supply) ERC20("Plain", "PLAIN") {
        _mint(msg.sender, supply);
    }
}
