// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeOnTransferToken
/// @notice Test only: an ERC-20 that burns 1 % of every transfer (a fee-on-transfer token), to
///         show that a deal refuses to count cash it did not receive. Not deployed by chainabs.
contract FeeOnTransferToken is ERC20 {
    uint8 private immutable _feeDecimals;

    /// @param decimals_ base-unit decimals.
    constructor(uint8 decimals_) ERC20("Fee on transfer", "FOT") {
        _feeDecimals = decimals_;
    }

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _feeDecimals;
    }

    /// @notice Mint `amount` base units to `to` (anyone: a test token).
    /// @param to receiver.
    /// @param amount base units.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Every transfer between two holders burns 1 % of it (rounded down).
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}
