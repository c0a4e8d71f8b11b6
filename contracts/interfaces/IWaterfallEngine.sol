// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WaterfallV2} from "../libraries/WaterfallV2.sol";

/// @title IWaterfallEngine
/// @notice WATERFALL.md version 2 as a stateless contract a deal calls: the deal reads its
///         parameters and carried state, calls `runPeriod`, writes the returned state and acts on
///         the result. Kept out of the deal's own code so the deal stays under EIP-170.
interface IWaterfallEngine {
    /// @notice One period of the v2 waterfall (WaterfallV2.runPeriod). Reverts with
    ///         WaterfallV2's refusal errors; pure, so a refused report changes nothing.
    /// @param deal the deal's parameters.
    /// @param state the state carried from the last period.
    /// @param report the servicer's report.
    /// @return result the period's figures.
    /// @return next the state after the period.
    function runPeriod(
        WaterfallV2.Params calldata deal,
        WaterfallV2.State calldata state,
        WaterfallV2.Report calldata report
    ) external pure returns (WaterfallV2.Result memory result, WaterfallV2.State memory next);
}
