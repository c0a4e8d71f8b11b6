// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title WaterfallV2
/// @notice WATERFALL.md version 2, one period at a time: the triggers, the revolving period and
///         its principal account, purchases, sequential and pro-rata principal, the clean-up call.
///         A port of the reference model's `run_period_v2` (src/chainabs/waterfall.py), rule for
///         rule and field for field: the structs' fields are the model's dataclass fields, its
///         refusals are the errors below, raised in the model's order, and a refused report
///         changes nothing (the functions are pure; the caller writes the returned state).
/// @dev Every amount is an integer in settlement base units, every division rounds down, every
///      ratio test is cross-multiplied. With B0 the pool balance at the start, T_k the tranche
///      balances then, C the principal account and U the purchase:
///      B1 = B0 - P - D + U, or 0 with the call (its price B0 - P - D joins the cash);
///      AF = I + P + R (+ the call price). Steps: 0 triggers, 1 report checks, 2 fee, 3 interest
///      senior first (cash, then the reserve, the rest carried), 4 reserve to
///      floor(B1 x target / 10000), 5 principal (revolving: need = max(0, sum T - (B0 - P - D) -
///      C) moves into C, then U is paid from C; amortising: C joins AF, owed = max(0, sum T - B1)
///      or sum T under turbo, sequential or pro rata), 6 losses junior first, 7 residual to the
///      last tranche. The v2 conservation identity is checked before returning.
///
///      A deal with `triggers_listed == false` is a version 1 deal: its one trigger is
///      {cumulative_default, default_trigger_bps, turbo, not curable}, its latch is kept in
///      `trigger_breached`, `latched` stays 0 and no history is kept (as the model does).
///      Sums that overflow uint256 revert with the compiler's panic; a caller bounds its inputs.
library WaterfallV2 {
    using SafeCast for uint256;

    uint256 internal constant BPS = 10_000;
    /// @notice An annual rate in bps applied to one monthly period: 12 x 10,000.
    uint256 internal constant MONTHLY_BPS = 120_000;
    /// @notice delinquency_60 and excess_spread sum this period and the two before.
    uint256 internal constant HISTORY_PERIODS = 3;
    uint256 internal constant MAX_TRIGGERS = 8;

    /// @notice Trigger metrics, in the model's METRICS order.
    enum Metric {
        CumulativeDefault,
        Delinquency60,
        ExcessSpread,
        PrincipalAccount
    }
    /// @notice Trigger effects, in the model's EFFECTS order.
    enum Effect {
        Amortise,
        Sequential,
        Turbo
    }
    /// @notice The deal's principal mode, in the model's PRINCIPAL_MODES order.
    enum PrincipalMode {
        Sequential,
        ProRata
    }
    /// @notice A period's status, in the model's STATUSES order.
    enum Status {
        Revolving,
        Amortising,
        Called
    }
    /// @notice principal_mode_applied: None while revolving (the model's None).
    enum ModeApplied {
        None,
        ProRata,
        Sequential,
        Turbo
    }

    /// @notice A tranche's waterfall terms (the model's TrancheSpec without name and symbol).
    struct TrancheSpec {
        uint256 face;
        uint256 coupon_bps;
    }

    struct Trigger {
        Metric metric;
        uint256 threshold_bps;
        Effect effect;
        bool curable;
    }

    /// @notice The model's DealParams; `triggers_listed` is the model's `triggers is not None`.
    struct Params {
        TrancheSpec[] tranches;
        uint256 servicer_fee_bps;
        uint256 reserve_target_bps;
        uint256 initial_reserve;
        uint256 default_trigger_bps;
        uint256 revolving_periods;
        PrincipalMode principal_mode;
        uint256 cleanup_call_bps;
        bool triggers_listed;
        Trigger[] triggers;
    }

    /// @notice One past period's figures that the delinquency_60 and excess_spread triggers sum.
    struct PeriodHistory {
        uint256 pool_balance_start;
        uint256 pool_balance_end;
        uint256 delinquent_60;
        int256 excess_spread;
    }

    /// @notice The model's DealState: everything one period hands to the next.
    struct State {
        uint256 period;
        uint256 pool_balance;
        uint256[] tranche_balances;
        uint256[] unpaid_interest;
        uint256 unpaid_fee;
        uint256 reserve;
        uint256 cumulative_defaults;
        bool trigger_breached;
        uint256 principal_account;
        bool early_amortisation;
        bool called;
        uint256 latched;
        PeriodHistory[] history;
    }

    /// @notice The model's PeriodReport.
    struct Report {
        uint256 interest;
        uint256 principal;
        uint256 recoveries;
        uint256 defaults;
        uint256 delinquent_60;
        uint256 purchased_units;
        uint256 purchased_count;
        bytes32 purchase_root;
        bool call;
    }

    struct TrancheResult {
        uint256 balance_start;
        uint256 interest_due;
        uint256 interest_paid;
        uint256 interest_unpaid;
        uint256 principal_paid;
        uint256 loss;
        uint256 balance_end;
        uint256 cash_paid;
    }

    struct TriggerResult {
        Metric metric;
        uint256 threshold_bps;
        Effect effect;
        bool curable;
        bool breached;
    }

    /// @notice The model's PeriodResultV2.
    struct Result {
        uint256 period;
        uint256 interest_collected;
        uint256 principal_collected;
        uint256 recoveries;
        uint256 defaulted_principal;
        uint256 pool_balance_start;
        uint256 pool_balance_end;
        uint256 fee_due;
        uint256 fee_paid;
        uint256 reserve_start;
        uint256 reserve_drawn;
        uint256 reserve_released;
        uint256 reserve_added;
        uint256 reserve_end;
        bool trigger_breached;
        uint256 residual_paid;
        TrancheResult[] tranches;
        Status status;
        uint256 principal_account_start;
        uint256 principal_account_end;
        uint256 purchased_units;
        uint256 purchased_count;
        bytes32 purchase_root;
        uint256 delinquent_60;
        int256 excess_spread;
        ModeApplied principal_mode_applied;
        uint256 call_price;
        TriggerResult[] triggers;
    }

    // -- refusals, in the model's order --------------------------------------------------------

    /// @notice The carried state's tranche arrays do not match the deal's tranches.
    error StateShapeMismatch(uint256 trancheBalances, uint256 unpaidInterest, uint256 dealTranches);
    /// @notice The carried state holds more history than the triggers keep.
    error HistoryTooLong(uint256 kept, uint256 max);
    /// @notice The deal was called (clean-up call) by this period; it takes no further report.
    error DealCalled(uint256 period);
    /// @notice D > B0.
    error DefaultsExceedPoolBalance(uint256 defaults, uint256 poolBalance);
    /// @notice P + D > B0.
    error PrincipalAndDefaultsExceedPoolBalance(uint256 principal, uint256 defaults, uint256 poolBalance);
    /// @notice A purchase names its units, loan count and root: all three or none.
    error PurchaseIncomplete(uint256 units, uint256 count, bytes32 root);
    /// @notice delinquent_60 > B1 (B1 is 0 with the call).
    error Delinquent60ExceedsPoolBalance(uint256 delinquent60, uint256 poolBalanceEnd);
    /// @notice A purchase in a period that amortises: `earlyAmortisation` when an amortise trigger
    ///         has been breached, else the revolving period ended with `revolvingPeriods`.
    error PurchaseWhileAmortising(uint256 units, uint256 period, bool earlyAmortisation, uint256 revolvingPeriods);
    /// @notice The call is not allowed: the deal has none (cleanup_call_bps 0).
    error CallNotInDeal();
    /// @notice The call is not allowed: this period revolves.
    error CallWhileRevolving(uint256 period);
    /// @notice The call is not allowed: B0 x 10000 > cleanup_call_bps x B_initial.
    error CallAbovePoolLimit(uint256 poolBalance, uint256 cleanupCallBps, uint256 initialBalance);
    /// @notice U > C after step 5 (C at the start plus what step 5 moved in).
    error PurchaseExceedsPrincipalAccount(
        uint256 units, uint256 principalAccount, uint256 accountStart, uint256 movedIn
    );

    // -- broken invariants (never expected: a bug, not a refusal) -----------------------------

    /// @notice The v2 conservation identity does not hold.
    error CashNotConserved(uint256 period, uint256 cashIn, uint256 cashOut);
    /// @notice reserve start - drawn - released + added != reserve end.
    error ReserveLedgerBroken(uint256 period, uint256 computed, uint256 reserveEnd);
    /// @notice sum T > B1 + C after step 7.
    error NotesExceedCollateral(uint256 period, uint256 notes, uint256 poolBalanceEnd, uint256 principalAccount);

    // -- entry points ----------------------------------------------------------------------------

    /// @notice B_initial: the faces add up to the initial pool balance.
    function initialBalance(Params memory deal) internal pure returns (uint256 total) {
        for (uint256 k; k < deal.tranches.length; ++k) {
            total += deal.tranches[k].face;
        }
    }

    /// @notice The state at closing (the model's DealState.initial): faces outstanding, the
    ///         initial reserve, nothing carried.
    function initialState(Params memory deal) internal pure returns (State memory s) {
        uint256 n = deal.tranches.length;
        s.pool_balance = initialBalance(deal);
        s.tranche_balances = new uint256[](n);
        s.unpaid_interest = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            s.tranche_balances[k] = deal.tranches[k].face;
        }
        s.reserve = deal.initial_reserve;
        s.history = new PeriodHistory[](0);
    }

    /// @notice The triggers the waterfall tests: the listed ones, or version 1's one trigger.
    function effectiveTriggers(Params memory deal) internal pure returns (Trigger[] memory) {
        if (deal.triggers_listed) return deal.triggers;
        Trigger[] memory one = new Trigger[](1);
        one[0] = Trigger(Metric.CumulativeDefault, deal.default_trigger_bps, Effect.Turbo, false);
        return one;
    }

    /// @notice ES = I - floor(B0 x fee / 120000) - sum over k < n of floor(T_k x coupon_k /
    ///         120000): this period's fee and coupons without arrears; negative when they exceed I.
    function excessSpread(Params memory deal, State memory state, Report memory report)
        internal
        pure
        returns (int256)
    {
        uint256 costs = state.pool_balance * deal.servicer_fee_bps / MONTHLY_BPS;
        for (uint256 k; k < deal.tranches.length; ++k) {
            costs += state.tranche_balances[k] * deal.tranches[k].coupon_bps / MONTHLY_BPS;
        }
        return report.interest.toInt256() - costs.toInt256();
    }

    /// @notice Run one period; return its result and the next state (fresh memory, `state` is
    ///         left as it was). Reverts with the refusal's error, changing nothing.
    function runPeriod(Params memory deal, State memory state, Report memory report)
        internal
        pure
        returns (Result memory r, State memory next)
    {
        uint256 n = deal.tranches.length;
        if (state.tranche_balances.length != n || state.unpaid_interest.length != n) {
            revert StateShapeMismatch(state.tranche_balances.length, state.unpaid_interest.length, n);
        }
        if (state.history.length >= HISTORY_PERIODS) revert HistoryTooLong(state.history.length, HISTORY_PERIODS - 1);
        _checkReport(state, report);

        r.period = state.period + 1;
        r.interest_collected = report.interest;
        r.principal_collected = report.principal;
        r.recoveries = report.recoveries;
        r.defaulted_principal = report.defaults;
        r.pool_balance_start = state.pool_balance;
        r.call_price = report.call ? state.pool_balance - report.principal - report.defaults : 0;
        r.pool_balance_end = report.call
            ? 0
            : state.pool_balance - report.principal - report.defaults + report.purchased_units;
        r.reserve_start = state.reserve;
        r.principal_account_start = state.principal_account;
        r.purchased_units = report.purchased_units;
        r.purchased_count = report.purchased_count;
        r.purchase_root = report.purchase_root;
        r.delinquent_60 = report.delinquent_60;

        // 0. Triggers, on this period's figures; the latches of non-curable triggers carry.
        r.excess_spread = excessSpread(deal, state, report);
        next.cumulative_defaults = state.cumulative_defaults + report.defaults;
        PeriodHistory memory current =
            PeriodHistory(r.pool_balance_start, r.pool_balance_end, report.delinquent_60, r.excess_spread);
        uint256 effects;
        (effects, next.latched) = _triggers(deal, state, r, current, next.cumulative_defaults);
        next.early_amortisation = state.early_amortisation || effects & _bit(Effect.Amortise) != 0;
        bool revolving = r.period <= deal.revolving_periods && !next.early_amortisation;
        r.status = report.call ? Status.Called : revolving ? Status.Revolving : Status.Amortising;

        // 1. The refusals that need step 0.
        if (report.purchased_units > 0 && !revolving) {
            revert PurchaseWhileAmortising(
                report.purchased_units, r.period, next.early_amortisation, deal.revolving_periods
            );
        }
        if (report.call) _checkCall(deal, r.pool_balance_start, revolving, r.period);

        // 2., 3., 4.
        uint256 cash = _feeInterestReserve(deal, state, r, report.interest + report.principal + report.recoveries);

        // 5. Principal, 6. losses, 7. residual.
        uint256[] memory ends = _principal(deal, state, r, cash, revolving, effects);
        r.residual_paid = _losses(r, ends);
        r.tranches[n - 1].cash_paid += r.residual_paid;

        _conserve(r, ends);

        next.period = r.period;
        next.pool_balance = r.pool_balance_end;
        next.tranche_balances = ends;
        next.unpaid_interest = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            next.unpaid_interest[k] = r.tranches[k].interest_unpaid;
        }
        next.unpaid_fee = r.fee_due - r.fee_paid;
        next.reserve = r.reserve_end;
        next.trigger_breached = r.trigger_breached;
        next.principal_account = r.principal_account_end;
        next.called = report.call;
        next.history = _nextHistory(deal, state, current);
    }

    // -- the steps -------------------------------------------------------------------------------

    /// @dev The checks that need no waterfall step, in the model's order.
    function _checkReport(State memory state, Report memory report) private pure {
        if (state.called) revert DealCalled(state.period);
        uint256 b0 = state.pool_balance;
        if (report.defaults > b0) revert DefaultsExceedPoolBalance(report.defaults, b0);
        if (report.principal > b0 - report.defaults) {
            revert PrincipalAndDefaultsExceedPoolBalance(report.principal, report.defaults, b0);
        }
        bool noUnits = report.purchased_units == 0;
        if (noUnits != (report.purchased_count == 0) || noUnits != (report.purchase_root == bytes32(0))) {
            revert PurchaseIncomplete(report.purchased_units, report.purchased_count, report.purchase_root);
        }
        uint256 b1 = report.call ? 0 : b0 - report.principal - report.defaults + report.purchased_units;
        if (report.delinquent_60 > b1) revert Delinquent60ExceedsPoolBalance(report.delinquent_60, b1);
    }

    function _checkCall(Params memory deal, uint256 b0, bool revolving, uint256 period) private pure {
        if (deal.cleanup_call_bps == 0) revert CallNotInDeal();
        if (revolving) revert CallWhileRevolving(period);
        uint256 initial = initialBalance(deal);
        if (b0 * BPS > deal.cleanup_call_bps * initial) revert CallAbovePoolLimit(b0, deal.cleanup_call_bps, initial);
    }

    function _bit(Effect effect) private pure returns (uint256) {
        return 1 << uint8(effect);
    }

    /// @dev What step 0's tests read: this period and the carried history summed (the window),
    ///      and the figures at the start of the period.
    struct Window {
        uint256 cumulativeDefaults;
        uint256 initialBalance;
        uint256 delinquent60;
        uint256 poolBalanceEnd;
        uint256 poolBalanceStart;
        int256 excessSpread;
        uint256 principalAccount;
        uint256 trancheTotal;
    }

    /// @dev Step 0: fills r.triggers and r.trigger_breached; returns the effects breached (a bit
    ///      per Effect) and the latches of the non-curable triggers breached (a bit per trigger).
    function _triggers(
        Params memory deal,
        State memory state,
        Result memory r,
        PeriodHistory memory current,
        uint256 cumulative
    ) private pure returns (uint256 effects, uint256 latched) {
        Trigger[] memory triggers = effectiveTriggers(deal);
        uint256 latchedBefore = deal.triggers_listed ? state.latched : (state.trigger_breached ? 1 : 0);
        Window memory w = _window(deal, state, current, cumulative);
        r.triggers = new TriggerResult[](triggers.length);
        for (uint256 i; i < triggers.length; ++i) {
            Trigger memory trig = triggers[i];
            bool hit = (!trig.curable && (latchedBefore >> i) & 1 == 1) || _holds(trig, w);
            r.triggers[i] = TriggerResult(trig.metric, trig.threshold_bps, trig.effect, trig.curable, hit);
            if (hit) {
                effects |= _bit(trig.effect);
                if (!trig.curable) latched |= 1 << i;
                r.trigger_breached = true;
            }
        }
        if (!deal.triggers_listed) latched = 0; // version 1 keeps its latch in trigger_breached
    }

    function _window(Params memory deal, State memory state, PeriodHistory memory current, uint256 cumulative)
        private
        pure
        returns (Window memory w)
    {
        w.cumulativeDefaults = cumulative;
        w.initialBalance = initialBalance(deal);
        w.delinquent60 = current.delinquent_60;
        w.poolBalanceEnd = current.pool_balance_end;
        w.poolBalanceStart = current.pool_balance_start;
        w.excessSpread = current.excess_spread;
        for (uint256 h; h < state.history.length; ++h) {
            w.delinquent60 += state.history[h].delinquent_60;
            w.poolBalanceEnd += state.history[h].pool_balance_end;
            w.poolBalanceStart += state.history[h].pool_balance_start;
            w.excessSpread += state.history[h].excess_spread;
        }
        w.principalAccount = state.principal_account;
        w.trancheTotal = _sum(state.tranche_balances);
    }

    /// @dev Whether the trigger's test holds this period (its latch aside); the page's table.
    function _holds(Trigger memory trig, Window memory w) private pure returns (bool) {
        uint256 th = trig.threshold_bps;
        if (trig.metric == Metric.CumulativeDefault) return w.cumulativeDefaults * BPS > th * w.initialBalance;
        if (trig.metric == Metric.Delinquency60) return w.delinquent60 * BPS > th * w.poolBalanceEnd;
        if (trig.metric == Metric.ExcessSpread) {
            return 12 * w.excessSpread * int256(BPS) < (th * w.poolBalanceStart).toInt256();
        }
        return w.principalAccount * BPS > th * w.trancheTotal;
    }

    /// @dev Steps 2 (fee), 3 (interest, senior first) and 4 (reserve); returns the cash left.
    function _feeInterestReserve(Params memory deal, State memory state, Result memory r, uint256 collected)
        private
        pure
        returns (uint256 cash)
    {
        uint256 n = deal.tranches.length;
        cash = collected + r.call_price;
        uint256 res = state.reserve;
        uint256 fromCash;
        uint256 fromReserve;
        r.fee_due = r.pool_balance_start * deal.servicer_fee_bps / MONTHLY_BPS + state.unpaid_fee;
        (fromCash, fromReserve) = _pay(r.fee_due, cash, res);
        cash -= fromCash;
        res -= fromReserve;
        r.reserve_drawn += fromReserve;
        r.fee_paid = fromCash + fromReserve;

        r.tranches = new TrancheResult[](n);
        for (uint256 k; k < n; ++k) {
            TrancheResult memory t = r.tranches[k];
            t.balance_start = state.tranche_balances[k];
            t.interest_due = t.balance_start * deal.tranches[k].coupon_bps / MONTHLY_BPS + state.unpaid_interest[k];
            (fromCash, fromReserve) = _pay(t.interest_due, cash, res);
            cash -= fromCash;
            res -= fromReserve;
            r.reserve_drawn += fromReserve;
            t.interest_paid = fromCash + fromReserve;
            t.interest_unpaid = t.interest_due - t.interest_paid;
        }

        uint256 target = r.pool_balance_end * deal.reserve_target_bps / BPS;
        r.reserve_released = res > target ? res - target : 0;
        cash += r.reserve_released;
        res -= r.reserve_released;
        r.reserve_added = target > res ? Math.min(cash, target - res) : 0;
        cash -= r.reserve_added;
        r.reserve_end = res + r.reserve_added;
    }

    /// @dev Pay `due` from cash first, then from the reserve: (from cash, from reserve).
    function _pay(uint256 due, uint256 cash, uint256 res) private pure returns (uint256 fromCash, uint256 fromReserve) {
        fromCash = Math.min(cash, due);
        fromReserve = Math.min(res, due - fromCash);
    }

    /// @dev Step 5. Fills principal_paid, the principal account's end, principal_mode_applied and
    ///      r.residual_paid (the cash left, before losses); returns the balances after principal.
    function _principal(
        Params memory deal,
        State memory state,
        Result memory r,
        uint256 cash,
        bool revolving,
        uint256 effects
    ) private pure returns (uint256[] memory balances) {
        uint256 n = deal.tranches.length;
        uint256 total = _sum(state.tranche_balances);
        balances = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            balances[k] = state.tranche_balances[k];
        }
        if (revolving) {
            _revolve(state.principal_account, total, r, cash);
            return balances;
        }
        cash += state.principal_account;
        r.principal_mode_applied = _modeApplied(deal, effects);
        bool turbo = r.principal_mode_applied == ModeApplied.Turbo;
        uint256 owed = turbo ? total : (total > r.pool_balance_end ? total - r.pool_balance_end : 0);
        uint256 pay = Math.min(cash, owed);
        r.residual_paid = cash - pay;
        if (r.principal_mode_applied == ModeApplied.ProRata) {
            _payProRata(pay, total, balances, r.tranches);
        } else {
            _payInOrder(pay, balances, r.tranches);
        }
        for (uint256 k; k < n; ++k) {
            balances[k] -= r.tranches[k].principal_paid;
        }
    }

    /// @dev Step 5 while revolving: need = max(0, sum T - (B0 - P - D) - C) moves from the cash
    ///      into C as far as it goes, then the purchase U is paid from C (refused if U > C).
    function _revolve(uint256 account, uint256 total, Result memory r, uint256 cash) private pure {
        uint256 covered = r.pool_balance_start - r.principal_collected - r.defaulted_principal + account;
        uint256 moved = Math.min(cash, total > covered ? total - covered : 0);
        if (r.purchased_units > account + moved) {
            revert PurchaseExceedsPrincipalAccount(r.purchased_units, account + moved, account, moved);
        }
        r.principal_account_end = account + moved - r.purchased_units;
        r.principal_mode_applied = ModeApplied.None;
        r.residual_paid = cash - moved;
    }

    /// @dev Turbo while a turbo trigger is breached; else sequential in mode `sequential` or while
    ///      a sequential trigger is breached; else pro rata.
    function _modeApplied(Params memory deal, uint256 effects) private pure returns (ModeApplied) {
        if (effects & _bit(Effect.Turbo) != 0) return ModeApplied.Turbo;
        if (deal.principal_mode == PrincipalMode.Sequential || effects & _bit(Effect.Sequential) != 0) {
            return ModeApplied.Sequential;
        }
        return ModeApplied.ProRata;
    }

    /// @dev x_k = floor(pay x T_k / sum T) for every k, then the remainder pay - sum x_k to T_1,
    ///      T_2, ... in order, each capped at T_k - x_k (pay <= sum T; nothing when sum T is 0).
    function _payProRata(uint256 pay, uint256 total, uint256[] memory balances, TrancheResult[] memory out)
        private
        pure
    {
        if (total == 0) return;
        uint256 shared = 0;
        for (uint256 k; k < balances.length; ++k) {
            out[k].principal_paid = pay * balances[k] / total;
            shared += out[k].principal_paid;
        }
        uint256 left = pay - shared;
        for (uint256 k; k < balances.length && left > 0; ++k) {
            uint256 take = Math.min(left, balances[k] - out[k].principal_paid);
            out[k].principal_paid += take;
            left -= take;
        }
    }

    /// @dev Sequential: to T_1 until it is zero, then T_2, ..., then T_n.
    function _payInOrder(uint256 pay, uint256[] memory balances, TrancheResult[] memory out) private pure {
        for (uint256 k; k < balances.length; ++k) {
            uint256 take = Math.min(pay, balances[k]);
            out[k].principal_paid = take;
            pay -= take;
        }
    }

    /// @dev Step 6: losses max(0, sum T - B1 - C) written down junior first; balances become
    ///      the ends, and each tranche's cash paid is its interest and principal. Returns step
    ///      7's residual (the cash step 5 left), which the caller adds to the last tranche.
    function _losses(Result memory r, uint256[] memory balances) private pure returns (uint256 residual) {
        uint256 n = balances.length;
        uint256 covered = r.pool_balance_end + r.principal_account_end;
        uint256 total = _sum(balances);
        uint256 left = total > covered ? total - covered : 0;
        for (uint256 k = n; k > 0; --k) {
            TrancheResult memory t = r.tranches[k - 1];
            uint256 take = Math.min(left, balances[k - 1]);
            left -= take;
            t.loss = take;
            balances[k - 1] -= take;
            t.balance_end = balances[k - 1];
            t.cash_paid = t.interest_paid + t.principal_paid;
        }
        return r.residual_paid;
    }

    /// @dev The v2 identity, the reserve's ledger and sum T <= B1 + C (the model's
    ///      check_conservation); a failure is a bug, never a refusal.
    function _conserve(Result memory r, uint256[] memory ends) private pure {
        uint256 cashIn = r.interest_collected + r.principal_collected + r.recoveries + r.reserve_drawn
            + r.reserve_released + r.call_price + r.principal_account_start;
        uint256 cashOut = r.fee_paid + r.residual_paid + r.reserve_added + r.purchased_units + r.principal_account_end;
        for (uint256 k; k < ends.length; ++k) {
            cashOut += r.tranches[k].interest_paid + r.tranches[k].principal_paid;
        }
        if (cashIn != cashOut) revert CashNotConserved(r.period, cashIn, cashOut);
        uint256 reserveEnd = r.reserve_start - r.reserve_drawn - r.reserve_released + r.reserve_added;
        if (reserveEnd != r.reserve_end) revert ReserveLedgerBroken(r.period, reserveEnd, r.reserve_end);
        uint256 notes = _sum(ends);
        if (notes > r.pool_balance_end + r.principal_account_end) {
            revert NotesExceedCollateral(r.period, notes, r.pool_balance_end, r.principal_account_end);
        }
    }

    /// @dev The last HISTORY_PERIODS - 1 periods, oldest first, for listed triggers only.
    function _nextHistory(Params memory deal, State memory state, PeriodHistory memory current)
        private
        pure
        returns (PeriodHistory[] memory out)
    {
        if (!deal.triggers_listed) return new PeriodHistory[](0);
        uint256 kept = Math.min(state.history.length, HISTORY_PERIODS - 2);
        out = new PeriodHistory[](kept + 1);
        for (uint256 h; h < kept; ++h) {
            out[h] = state.history[state.history.length - kept + h];
        }
        out[kept] = current;
    }

    function _sum(uint256[] memory values) private pure returns (uint256 total) {
        for (uint256 k; k < values.length; ++k) {
            total += values[k];
        }
    }
}
