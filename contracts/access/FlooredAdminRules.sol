// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

/// @title FlooredAdminRules
/// @notice OpenZeppelin's AccessControlDefaultAdminRules (one admin, handed over in two steps
///         after `defaultAdminDelay`) with a floor on that delay that holds for the contract's
///         whole life: at deployment and on every later `changeDefaultAdminDelay`, a delay under
///         MIN_ADMIN_DELAY is refused. Deal, TrancheToken and InvestorRegistry build on it.
abstract contract FlooredAdminRules is AccessControlDefaultAdminRules {
    /// @notice Shortest wait before a new admin takes over, now and after any change.
    uint48 public constant MIN_ADMIN_DELAY = 1 days;

    /// @notice The admin delay asked for is shorter than MIN_ADMIN_DELAY.
    error AdminDelayTooShort(uint48 delay);

    /// @param initialDelay the wait before a new admin can accept the role (at least MIN_ADMIN_DELAY).
    /// @param initialAdmin receives DEFAULT_ADMIN_ROLE.
    constructor(uint48 initialDelay, address initialAdmin) AccessControlDefaultAdminRules(initialDelay, initialAdmin) {
        if (initialDelay < MIN_ADMIN_DELAY) revert AdminDelayTooShort(initialDelay);
    }

    /// @dev Every delay change (`changeDefaultAdminDelay`) passes here: the floor holds for good.
    function _changeDefaultAdminDelay(uint48 newDelay) internal virtual override {
        if (newDelay < MIN_ADMIN_DELAY) revert AdminDelayTooShort(newDelay);
        super._changeDefaultAdminDelay(newDelay);
    }
}
