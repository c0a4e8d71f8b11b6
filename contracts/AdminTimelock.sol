// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title AdminTimelock
/// @notice The admin seat of a deal, of its tranche tokens or of its investor registry:
///         OpenZeppelin's TimelockController with a floor on its delay. Every role change
///         (grantRole, revokeRole), fee-recipient change, sweep, token detachment or admin handover
///         of the contract it administers is scheduled here (`CallScheduled`, public) and can run
///         only after `getMinDelay()` seconds, so holders see it coming. The timelock administers
///         itself: changing its proposers or its delay is itself a delayed operation, and the
///         delay can never be set under MIN_DELAY, at deployment or by `updateDelay`.
///         An operation once ready stays executable until it runs or is cancelled: one that
///         reverted when first tried can run later without a new notice (watch `CallScheduled`
///         without a matching `CallExecuted`).
contract AdminTimelock is TimelockController {
    /// @notice Shortest delay the timelock accepts, at deployment and after any change.
    uint256 public constant MIN_DELAY = 1 days;

    // TimelockController keeps its delay in a private variable that only its own updateDelay
    // writes; this contract keeps the delay here instead, and getMinDelay (which `schedule`
    // reads) answers from it.
    uint256 private _delay;

    /// @notice The delay asked for is shorter than MIN_DELAY.
    error DelayTooShort(uint256 delay, uint256 minimum);

    /// @param minDelay seconds between scheduling an operation and running it (at least MIN_DELAY).
    /// @param proposers may schedule and cancel operations (the seat's holder).
    /// @param executors may run operations once ready (address(0) in the list: anyone).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {
        if (minDelay < MIN_DELAY) revert DelayTooShort(minDelay, MIN_DELAY);
        _delay = minDelay;
    }

    /// @inheritdoc TimelockController
    function getMinDelay() public view override returns (uint256) {
        return _delay;
    }

    /// @notice Change the delay (only as an operation of this timelock); never under MIN_DELAY.
    /// @param newDelay the new delay, seconds.
    function updateDelay(uint256 newDelay) external override {
        if (msg.sender != address(this)) revert TimelockUnauthorizedCaller(msg.sender);
        if (newDelay < MIN_DELAY) revert DelayTooShort(newDelay, MIN_DELAY);
        emit MinDelayChange(_delay, newDelay);
        _delay = newDelay;
    }
}
