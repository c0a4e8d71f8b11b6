// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IPoolBacked
/// @notice What a LoanPool asks of the deal it is pledged to.
interface IPoolBacked {
    /// @notice The pool whose loans back the deal.
    function loanPool() external view returns (address);
}
