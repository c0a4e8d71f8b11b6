// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IWaterfallEngine} from "../interfaces/IWaterfallEngine.sol";
import {WaterfallV2} from "../libraries/WaterfallV2.sol";

/// @title WaterfallV2Harness
/// @notice Exposes WaterfallV2 to the tests, which run it against the reference model
///         (waterfall.run_period_v2) field by field, and to scripts/bench.py, which measures its
///         gas. Not deployed by chainabs.
contract WaterfallV2Harness is IWaterfallEngine {
    /// @inheritdoc IWaterfallEngine
    function runPeriod(
        WaterfallV2.Params calldata deal,
        WaterfallV2.State calldata state,
        WaterfallV2.Report calldata report
    ) external pure returns (WaterfallV2.Result memory result, WaterfallV2.State memory next) {
        return WaterfallV2.runPeriod(deal, state, report);
    }

    /// @notice runPeriod, with the gas the library itself used (the call's ABI decoding and
    ///         encoding left out).
    /// @param deal the deal's parameters.
    /// @param state the state carried from the last period.
    /// @param report the servicer's report.
    /// @return result the period's figures.
    /// @return next the state after the period.
    /// @return gasUsed gas spent inside WaterfallV2.runPeriod.
    function runPeriodMetered(
        WaterfallV2.Params memory deal,
        WaterfallV2.State memory state,
        WaterfallV2.Report memory report
    ) external view returns (WaterfallV2.Result memory result, WaterfallV2.State memory next, uint256 gasUsed) {
        uint256 before = gasleft();
        (result, next) = WaterfallV2.runPeriod(deal, state, report);
        gasUsed = before - gasleft();
    }

    /// @notice WaterfallV2.initialState as an external call.
    /// @param deal the deal's parameters.
    /// @return the state at closing.
    function initialState(WaterfallV2.Params memory deal) external pure returns (WaterfallV2.State memory) {
        return WaterfallV2.initialState(deal);
    }

    /// @notice The engine's runPeriod called from a contract, as a deal will call it, with the
    ///         gas that call cost its caller (encoding the arguments, the call, the engine's
    ///         decoding, the library, the result's encoding and decoding).
    /// @param engine a deployed WaterfallEngine.
    /// @param deal the deal's parameters.
    /// @param state the state carried from the last period.
    /// @param report the servicer's report.
    /// @return result the period's figures.
    /// @return next the state after the period.
    /// @return gasUsed gas spent by the call, as its caller sees it.
    function runPeriodThroughEngine(
        IWaterfallEngine engine,
        WaterfallV2.Params memory deal,
        WaterfallV2.State memory state,
        WaterfallV2.Report memory report
    ) external view returns (WaterfallV2.Result memory result, WaterfallV2.State memory next, uint256 gasUsed) {
        uint256 before = gasleft();
        (result, next) = engine.runPeriod(deal, state, report);
        gasUsed = before - gasleft();
    }
}
