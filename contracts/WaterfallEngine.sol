// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IWaterfallEngine} from "./interfaces/IWaterfallEngine.sol";
import {WaterfallV2} from "./libraries/WaterfallV2.sol";

/// @title WaterfallEngine
/// @notice WaterfallV2 deployed on its own: no state, no owner, nothing to configure, so one
///         engine can serve every deal and its code is checked against this artifact by hash.
contract WaterfallEngine is IWaterfallEngine {
    /// @inheritdoc IWaterfallEngine
    function runPeriod(
        WaterfallV2.Params calldata deal,
        WaterfallV2.State calldata state,
        WaterfallV2.Report calldata report
    ) external pure returns (WaterfallV2.Result memory result, WaterfallV2.State memory next) {
        return WaterfallV2.runPeriod(deal, state, report);
    }
}
