// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title AdminTimelock
/// @notice The admin seat of a deal, of its tranche tokens or of its investor registry:
///         OpenZeppelin's TimelockController, unchanged. Every role change (grantRole,
///         revokeRole), fee-recipient change, sweep or admin handover of the contract it
///         administers is scheduled here (`CallScheduled`, public) and can run only after
///         `getMinDelay()` seconds, so holders see it coming. The timelock administers itself:
///         changing its proposers or its delay is itself a delayed operation.
contract AdminTimelock is TimelockController {
    /// @param minDelay seconds between scheduling an operation and running it.
    /// @param proposers may schedule and cancel operations (the seat's holder).
    /// @param executors may run operations once ready (address(0) in the list: anyone).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
