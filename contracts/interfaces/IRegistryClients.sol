// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITrancheOfDeal
/// @notice What an InvestorRegistry asks of a token before attaching it: the deal it belongs to.
interface ITrancheOfDeal {
    /// @notice The deal that minted this token.
    function deal() external view returns (address);
}

/// @title IDealOfRegistry
/// @notice What an InvestorRegistry asks of that deal: that the token is one of its tranches
///         and that the deal uses this registry.
interface IDealOfRegistry {
    /// @notice The investor registry the deal's tranche tokens mirror.
    function registry() external view returns (address);

    /// @notice Whether `token` is one of the deal's tranche tokens.
    /// @param token the address.
    function isTranche(address token) external view returns (bool);
}
