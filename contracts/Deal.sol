// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FlooredAdminRules} from "./access/FlooredAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {LoanPool} from "./LoanPool.sol";
import {InvestorRegistry} from "./InvestorRegistry.sol";
import {TrancheToken} from "./TrancheToken.sol";

/// @title Deal
/// @notice An ABS deal over a filled LoanPool: issues its tranches against the settlement
///         token (delivery versus payment, at par), closes the offering, takes the servicer's
///         period reports with their cash and runs the cash waterfall of shared/WATERFALL.md
///         (version 1) exactly as src/chainabs/waterfall.py does: same steps, same order, every
///         division rounding down. Each tranche's cash is credited to its token's per-unit
///         accounting; holders claim whenever they like, so a period costs the same gas for
///         10 holders or 10,000. Every figure of a period is emitted and stored.
///
///         Phases: Pending (deployed; the originator pledges the pool to this deal) -> Open
///         (`open`, subscriptions) -> Closed (`close`: unsold units and the initial reserve;
///         reports from then on, for good: recoveries keep coming after the pool balance is 0,
///         and nothing ends the deal).
///
///         Roles. DEFAULT_ADMIN (one holder, handed over in two steps after `defaultAdminDelay`,
///         never under a day; FlooredAdminRules over OpenZeppelin's AccessControlDefaultAdminRules)
///         grants and revokes OPERATOR, SERVICER and PAYING_AGENT, changes the fee recipient and
///         sweeps cash nobody is owed. Its own functions never touch units, holders' entitlements
///         or the reserve; through the roles it grants it reaches what those roles do (a SERVICER
///         it appoints posts reports). It holds no role on the tranche tokens or the registry
///         (their admins are separate parties), so it can neither move units nor freeze holders.
///         Settlement cash that arrives is measured by the deal's balance before and after: a
///         token that delivers less than asked (fee on transfer) is refused.
contract Deal is FlooredAdminRules {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice Opens and closes the offering, places batch allocations.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Posts period reports and pays the collections in.
    bytes32 public constant SERVICER_ROLE = keccak256("SERVICER_ROLE");
    /// @notice Triggers claims on holders' behalf (the cash still goes to the holder only).
    bytes32 public constant PAYING_AGENT_ROLE = keccak256("PAYING_AGENT_ROLE");

    /// @notice An annual rate in bps applied to one monthly period: 12 * 10,000.
    uint256 public constant MONTHLY_BPS = 120_000;
    /// @notice Basis points in one.
    uint256 public constant BPS = 10_000;
    /// @notice Fewest and most tranches a deal can have.
    uint256 public constant MIN_TRANCHES = 2;
    uint256 public constant MAX_TRANCHES = 5;
    /// @notice Largest interest or recoveries amount one report may carry (keeps every stored
    ///         figure within uint128).
    uint256 public constant MAX_COLLECTION = 2 ** 120;
    /// @notice Most base units one tranche can be credited in its life (TrancheToken's capacity).
    uint256 public constant CREDIT_CAPACITY = 2 ** 94 - 1;
    /// @notice The deal is sized so that any one tranche can be credited this many times the
    ///         pool and the initial reserve over its life (the pool's principal once, interest and
    ///         recoveries up to 15 times more): (faces + initial reserve) * 16 <= CREDIT_CAPACITY.
    uint256 public constant LIFETIME_CASH_MULTIPLE = 16;
    enum Phase {
        Pending,
        Open,
        Closed
    }

    /// @notice One tranche as given at deployment; most senior first, the last is the residual.
    struct TrancheConfig {
        string name;
        string symbol;
        uint256 face;
        uint256 couponBps;
    }

    /// @notice The deal's fixed parameters (WATERFALL.md).
    struct Parameters {
        uint256 servicerFeeBps;
        uint256 reserveTargetBps;
        uint256 initialReserve;
        uint256 defaultTriggerBps;
    }

    /// @notice Who does what.
    struct Parties {
        address admin; // DEFAULT_ADMIN_ROLE here
        address tokenAdmin; // DEFAULT_ADMIN_ROLE on the tranche tokens (appoints their agents)
        address operator; // OPERATOR_ROLE and PAYING_AGENT_ROLE
        address servicer; // SERVICER_ROLE
        address originator; // receives proceeds and unsold units, funds the initial reserve
        address feeRecipient; // receives the servicer fee
        address agent; // AGENT_ROLE on the tranche tokens
    }

    /// @notice A period's pool-level figures (names as in waterfall.PeriodResult and the API).
    struct Period {
        uint128 interest_collected;
        uint128 principal_collected;
        uint128 recoveries;
        uint128 defaulted_principal;
        uint128 pool_balance_start;
        uint128 pool_balance_end;
        uint128 fee_due;
        uint128 fee_paid;
        uint128 reserve_start;
        uint128 reserve_drawn;
        uint128 reserve_released;
        uint128 reserve_added;
        uint128 reserve_end;
        uint128 residual_paid;
        uint64 period;
        uint64 loan_count;
        bool trigger_breached;
        bytes32 loan_root;
    }

    /// @notice What a period did to one tranche (names as in waterfall.TrancheResult).
    struct TrancheResult {
        uint128 balance_start;
        uint128 interest_due;
        uint128 interest_paid;
        uint128 interest_unpaid;
        uint128 principal_paid;
        uint128 loss;
        uint128 balance_end;
        uint128 cash_paid;
    }

    /// @notice A tranche's terms and carried state.
    struct Tranche {
        TrancheToken token;
        uint256 face;
        uint256 couponBps;
        uint256 issued;
        uint256 balance;
        uint256 unpaidInterest;
    }

    struct TrancheSlot {
        uint128 balance;
        uint128 unpaidInterest;
        uint96 face;
        uint96 issued;
        uint16 couponBps;
    }

    /// @notice The settlement ERC-20 (cash).
    IERC20 public immutable settlement;
    /// @notice The pool whose loans back the deal.
    LoanPool public immutable loanPool;
    /// @notice The investor registry the tranche tokens mirror.
    InvestorRegistry public immutable registry;
    /// @notice Receives subscription proceeds and unsold units; funds the initial reserve.
    address public immutable originator;
    /// @notice B_initial: the pool's outstanding units at deployment, equal to the faces' sum.
    uint256 public immutable initialBalance;
    /// @notice Annual servicer fee on the pool balance at the start of a period, bps.
    uint256 public immutable servicerFeeBps;
    /// @notice Reserve target as a share of the pool balance at the end of a period, bps.
    uint256 public immutable reserveTargetBps;
    /// @notice Pulled from the originator at closing.
    uint256 public immutable initialReserve;
    /// @notice Cumulative defaults above this share of B_initial breach the trigger, bps.
    uint256 public immutable defaultTriggerBps;
    /// @notice Number of tranches (2..5).
    uint256 public immutable trancheCount;
    TrancheToken private immutable _t0;
    TrancheToken private immutable _t1;
    TrancheToken private immutable _t2;
    TrancheToken private immutable _t3;
    TrancheToken private immutable _t4;

    /// @notice The offering's phase.
    Phase public phase;
    /// @notice Periods run so far.
    uint64 public periodCount;
    /// @notice Whether cumulative defaults ever exceeded the trigger (for good).
    bool public triggerBreached;
    /// @notice Receives the servicer fee.
    address public feeRecipient;
    /// @notice The pool balance now (B1 of the last period).
    uint128 public poolBalance;
    /// @notice Cash in the reserve account, base units.
    uint128 public reserve;
    /// @notice Servicer fee due and not yet paid.
    uint128 public unpaidFee;
    /// @notice Defaulted principal reported so far.
    uint128 public cumulativeDefaults;
    /// @notice Settlement base units swept out so far (stray transfers, released carry).
    uint256 public swept;

    TrancheSlot[MAX_TRANCHES] private _tranches;
    mapping(uint256 period => Period) private _periods;
    mapping(uint256 period => TrancheResult[MAX_TRANCHES]) private _results;

    /// @notice The deal's parameters are invalid; `field` names the offending one.
    error InvalidParameter(string field, uint256 value);
    /// @notice A party address is zero.
    error ZeroAddress(string party);
    /// @notice The loan pool has not minted every committed loan.
    error PoolNotFilled();
    /// @notice The faces do not add up to the pool's outstanding units.
    error FacesDoNotMatchPool(uint256 faces, uint256 outstanding);
    /// @notice The function is not available in the current phase.
    error WrongPhase(Phase current, Phase required);
    /// @notice No such tranche.
    error UnknownTranche(uint256 index);
    /// @notice A subscription of zero units.
    error ZeroUnits();
    /// @notice The subscription exceeds the tranche's unsold units.
    error ExceedsFace(uint256 tranche, uint256 available, uint256 requested);
    /// @notice Two batch arrays have different lengths.
    error LengthMismatch(uint256 a, uint256 b);
    /// @notice Reports must come in order: `expected` is the next period.
    error ReportOutOfOrder(uint256 expected, uint256 given);
    /// @notice D > B0.
    error DefaultsExceedPoolBalance(uint256 defaults, uint256 poolBalance);
    /// @notice P + D > B0.
    error PrincipalAndDefaultsExceedPoolBalance(uint256 principal, uint256 defaults, uint256 poolBalance);
    /// @notice The reported end balance is not B0 - P - D.
    error PoolBalanceMismatch(uint256 expected, uint256 reported);
    /// @notice Interest or recoveries above MAX_COLLECTION.
    error CollectionTooLarge(uint256 amount);
    /// @notice The holder has nothing to claim.
    error NothingToClaim(address holder);
    /// @notice The pool already backs another deal.
    error PoolAlreadyPledged(address pool, address deal);
    /// @notice The pool has not been pledged to this deal (LoanPool.pledge).
    error PoolNotPledged(address pool, address pledgedTo);
    /// @notice The pool and reserve are too large for a tranche's lifetime credit capacity.
    error CreditCapacityExceeded(uint256 lifetimeCash, uint256 capacity);
    /// @notice The settlement token delivered another amount than was transferred (for example
    ///         a fee-on-transfer token).
    error SettlementAmountMismatch(uint256 expected, uint256 received);

    /// @notice The deal was created; its tranche tokens are deployed.
    event DealCreated(address indexed loanPool, address settlement, address registry, address[] tokens, uint256 initialBalance);
    /// @notice The offering opened.
    event OfferingOpened();
    /// @notice Units were issued to `investor`, paid by `payer` (price: units, at par).
    event Subscribed(address indexed investor, uint256 indexed tranche, uint256 units, address payer);
    /// @notice The offering closed: unsold units to the originator, initial reserve funded.
    event OfferingClosed(uint256[] unsold, uint256 reserveFunded);
    /// @notice A period ran; every figure of it.
    event PeriodReported(uint256 indexed period, Period figures, TrancheResult[] tranches);
    /// @notice The fee recipient changed.
    event FeeRecipientChanged(address indexed previous, address indexed current);
    /// @notice Cash nobody is owed (stray transfers, and once the pool is paid down each
    ///         tranche's released carry) was swept to `to`.
    event Swept(address indexed to, uint256 amount);

    /// @param settlement_ the settlement ERC-20 (with decimals()).
    /// @param pool the filled loan pool.
    /// @param registry_ the investor registry.
    /// @param tranches_ 2..5 tranches, most senior first; faces add up to the pool's
    ///        outstanding units; coupons <= 10,000 bps; the last (residual) coupon is 0.
    /// @param params fee, reserve and trigger parameters (bps <= 10,000).
    /// @param parties role holders and cash addresses.
    /// @param adminDelay the wait before a new admin of the deal or its tokens takes over
    ///        (at least MIN_ADMIN_DELAY, for good).
    constructor(
        IERC20 settlement_,
        LoanPool pool,
        InvestorRegistry registry_,
        TrancheConfig[] memory tranches_,
        Parameters memory params,
        Parties memory parties,
        uint48 adminDelay
    ) FlooredAdminRules(adminDelay, parties.admin) {
        uint256 n = tranches_.length;
        if (n < MIN_TRANCHES || n > MAX_TRANCHES) revert InvalidParameter("tranches", n);
        _checkBps("servicerFeeBps", params.servicerFeeBps);
        _checkBps("reserveTargetBps", params.reserveTargetBps);
        _checkBps("defaultTriggerBps", params.defaultTriggerBps);
        if (params.initialReserve >= MAX_COLLECTION) revert InvalidParameter("initialReserve", params.initialReserve);
        if (tranches_[n - 1].couponBps != 0) revert InvalidParameter("residual couponBps", tranches_[n - 1].couponBps);
        if (parties.tokenAdmin == address(0)) revert ZeroAddress("tokenAdmin");
        if (parties.operator == address(0)) revert ZeroAddress("operator");
        if (parties.servicer == address(0)) revert ZeroAddress("servicer");
        if (parties.originator == address(0)) revert ZeroAddress("originator");
        if (parties.feeRecipient == address(0)) revert ZeroAddress("feeRecipient");
        if (parties.agent == address(0)) revert ZeroAddress("agent");
        if (!pool.filled()) revert PoolNotFilled();
        address pledged = pool.deal();
        if (pledged != address(0)) revert PoolAlreadyPledged(address(pool), pledged);

        uint256 sum = 0;
        for (uint256 k; k < n; ++k) {
            TrancheConfig memory t = tranches_[k];
            if (t.face == 0 || t.face >= 2 ** 96) revert InvalidParameter("face", t.face);
            _checkBps("couponBps", t.couponBps);
            sum += t.face;
        }
        uint256 lifetime = (sum + params.initialReserve) * LIFETIME_CASH_MULTIPLE;
        if (lifetime > CREDIT_CAPACITY) revert CreditCapacityExceeded(lifetime, CREDIT_CAPACITY);
        uint256 outstanding = pool.outstandingUnits();
        if (sum != outstanding) revert FacesDoNotMatchPool(sum, outstanding);

        uint8 decimals_ = IERC20Metadata(address(settlement_)).decimals();
        address[] memory tokens_ = new address[](n);
        // A memory array is zero-filled by the compiler and written below.
        // slither-disable-next-line uninitialized-local
        TrancheToken[MAX_TRANCHES] memory made;
        for (uint256 k; k < n; ++k) {
            TrancheConfig memory t = tranches_[k];
            made[k] = new TrancheToken(
                t.name, t.symbol, decimals_, t.face, address(registry_), parties.tokenAdmin, adminDelay, parties.agent
            );
            tokens_[k] = address(made[k]);
            _tranches[k] = TrancheSlot({
                balance: uint128(t.face),
                unpaidInterest: 0,
                face: uint96(t.face),
                issued: 0,
                couponBps: uint16(t.couponBps)
            });
        }

        settlement = settlement_;
        loanPool = pool;
        registry = registry_;
        originator = parties.originator;
        initialBalance = sum;
        servicerFeeBps = params.servicerFeeBps;
        reserveTargetBps = params.reserveTargetBps;
        initialReserve = params.initialReserve;
        defaultTriggerBps = params.defaultTriggerBps;
        trancheCount = n;
        (_t0, _t1, _t2, _t3, _t4) = (made[0], made[1], made[2], made[3], made[4]);
        poolBalance = uint128(sum);
        feeRecipient = parties.feeRecipient;
        _grantRole(OPERATOR_ROLE, parties.operator);
        _grantRole(PAYING_AGENT_ROLE, parties.operator);
        _grantRole(SERVICER_ROLE, parties.servicer);
        emit DealCreated(address(pool), address(settlement_), address(registry_), tokens_, sum);
        emit FeeRecipientChanged(address(0), parties.feeRecipient);
    }

    // -- offering --------------------------------------------------------------------------------

    /// @notice Open the offering: eligible investors may subscribe. The pool must have been
    ///         pledged to this deal (so no pool backs two deals).
    function open() external onlyRole(OPERATOR_ROLE) {
        _requirePhase(Phase.Pending);
        address pledged = loanPool.deal();
        if (pledged != address(this)) revert PoolNotPledged(address(loanPool), pledged);
        phase = Phase.Open;
        emit OfferingOpened();
    }

    /// @notice Buy `units` of tranche `tranche` at par, delivery versus payment: the caller
    ///         pays `units` settlement base units to the originator and receives the units in
    ///         the same transaction. The caller must be eligible (the token's mint checks).
    /// @param index tranche index, 0 = most senior.
    /// @param units units to buy, at most the tranche's unsold units.
    function subscribe(uint256 index, uint256 units) external {
        _requirePhase(Phase.Open);
        TrancheToken token = _token(index);
        _issue(index, units);
        emit Subscribed(msg.sender, index, units, msg.sender);
        settlement.safeTransferFrom(msg.sender, originator, units);
        token.mint(msg.sender, units);
    }

    /// @notice A placement agent's batch: the operator pays the total and each investor
    ///         receives its units in the same transaction (each must be eligible).
    /// @param index tranche index.
    /// @param investors receivers.
    /// @param units units per receiver.
    function allocate(uint256 index, address[] calldata investors, uint256[] calldata units)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _requirePhase(Phase.Open);
        TrancheToken token = _token(index);
        uint256 n = investors.length;
        if (units.length != n) revert LengthMismatch(n, units.length);
        uint256 total = 0;
        for (uint256 i; i < n; ++i) {
            _issue(index, units[i]);
            total += units[i];
            emit Subscribed(investors[i], index, units[i], msg.sender);
        }
        settlement.safeTransferFrom(msg.sender, originator, total);
        token.mintBatch(investors, units);
    }

    /// @notice Close the offering: every unsold unit goes to the originator and the initial
    ///         reserve is pulled from the originator (which must have approved this deal). Neither
    ///         a paused tranche nor the originator's registry status can block it.
    function close() external onlyRole(OPERATOR_ROLE) {
        _requirePhase(Phase.Open);
        uint256 n = trancheCount;
        uint256[] memory unsold = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            TrancheSlot storage t = _tranches[k];
            unsold[k] = t.face - t.issued;
            t.issued = t.face;
        }
        phase = Phase.Closed;
        reserve = uint128(initialReserve);
        emit OfferingClosed(unsold, initialReserve);
        if (initialReserve > 0) _receive(originator, initialReserve);
        for (uint256 k; k < n; ++k) {
            if (unsold[k] > 0) _token(k).mintUnsold(originator, unsold[k]);
        }
    }

    // -- servicing -------------------------------------------------------------------------------

    /// @notice Post period `period`'s report, pay I + P + R in from the caller and run the
    ///         waterfall. Refused unless `period` is the next one, D <= B0, P + D <= B0 and
    ///         `poolBalanceEnd` == B0 - P - D. The fee goes to the fee recipient; each
    ///         tranche's cash is credited to its holders (claim with `claim`).
    /// @param number the period number, periodCount + 1.
    /// @param interest I, interest collected.
    /// @param principal P, principal collected (scheduled and prepaid).
    /// @param recoveries R, recoveries on defaulted loans.
    /// @param defaults D, newly defaulted principal.
    /// @param poolBalanceEnd B1 as the servicer's loan-level tape adds up.
    /// @param loanRoot Merkle root of the period's loan-level tape.
    /// @param loanCount number of loans in that tape.
    function postReport(
        uint64 number,
        uint256 interest,
        uint256 principal,
        uint256 recoveries,
        uint256 defaults,
        uint256 poolBalanceEnd,
        bytes32 loanRoot,
        uint64 loanCount
    ) external onlyRole(SERVICER_ROLE) {
        _requirePhase(Phase.Closed);
        if (number != periodCount + 1) revert ReportOutOfOrder(periodCount + 1, number);
        uint256 b0 = poolBalance;
        if (defaults > b0) revert DefaultsExceedPoolBalance(defaults, b0);
        if (principal > b0 - defaults) revert PrincipalAndDefaultsExceedPoolBalance(principal, defaults, b0);
        uint256 b1 = b0 - principal - defaults;
        if (poolBalanceEnd != b1) revert PoolBalanceMismatch(b1, poolBalanceEnd);
        if (interest >= MAX_COLLECTION) revert CollectionTooLarge(interest);
        if (recoveries >= MAX_COLLECTION) revert CollectionTooLarge(recoveries);

        (Period memory p, TrancheResult[] memory r) = _waterfall(interest, principal, recoveries, defaults);
        p.period = number;
        p.loan_root = loanRoot;
        p.loan_count = loanCount;

        // effects
        uint256 n = r.length;
        periodCount = number;
        poolBalance = p.pool_balance_end;
        reserve = p.reserve_end;
        unpaidFee = p.fee_due - p.fee_paid;
        cumulativeDefaults = (uint256(cumulativeDefaults) + defaults).toUint128();
        triggerBreached = p.trigger_breached;
        _periods[number] = p;
        for (uint256 k; k < n; ++k) {
            TrancheSlot storage t = _tranches[k];
            t.balance = r[k].balance_end;
            t.unpaidInterest = r[k].interest_unpaid;
            _results[number][k] = r[k];
        }
        emit PeriodReported(number, p, r);

        // interactions: cash in, fee out, tranche cash credited (it stays here until claimed)
        uint256 collected = interest + principal + recoveries;
        if (collected > 0) _receive(msg.sender, collected);
        if (p.fee_paid > 0) settlement.safeTransfer(feeRecipient, p.fee_paid);
        for (uint256 k; k < n; ++k) {
            if (r[k].cash_paid > 0) _token(k).distribute(r[k].cash_paid);
        }
    }

    /// @dev Steps 1-6 of WATERFALL.md on the carried state; pure apart from storage reads.
    function _waterfall(uint256 interest, uint256 principal, uint256 recoveries, uint256 defaults)
        private
        view
        returns (Period memory p, TrancheResult[] memory r)
    {
        uint256 n = trancheCount;
        r = new TrancheResult[](n);
        uint256 b0 = poolBalance;
        uint256 b1 = b0 - principal - defaults;
        uint256 cash = interest + principal + recoveries;
        uint256 res = reserve;
        uint256 drawn = 0;
        p.interest_collected = uint128(interest);
        p.principal_collected = uint128(principal);
        p.recoveries = uint128(recoveries);
        p.defaulted_principal = uint128(defaults);
        p.pool_balance_start = uint128(b0);
        p.pool_balance_end = uint128(b1);
        p.reserve_start = uint128(res);

        // 1. Fee: from cash first, then the reserve; the rest is carried.
        uint256 due = b0 * servicerFeeBps / MONTHLY_BPS + unpaidFee;
        uint256 paid;
        (cash, res, drawn, paid) = _pay(due, cash, res, drawn);
        p.fee_due = due.toUint128();
        p.fee_paid = uint128(paid);

        // 2. Interest, senior first (the residual's coupon is 0 and nothing is carried).
        uint256 total = 0;
        uint256[] memory starts = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            TrancheSlot storage t = _tranches[k];
            starts[k] = t.balance;
            total += t.balance;
            due = uint256(t.balance) * t.couponBps / MONTHLY_BPS + t.unpaidInterest;
            (cash, res, drawn, paid) = _pay(due, cash, res, drawn);
            r[k].balance_start = t.balance;
            r[k].interest_due = due.toUint128();
            r[k].interest_paid = uint128(paid);
            r[k].interest_unpaid = uint128(due - paid);
            r[k].cash_paid = uint128(paid);
        }
        p.reserve_drawn = uint128(drawn);

        // 3. Reserve: release the excess over target into cash, or top up from cash.
        uint256 target = b1 * reserveTargetBps / BPS;
        uint256 released = res > target ? res - target : 0;
        cash += released;
        res -= released;
        uint256 added = target > res ? Math.min(cash, target - res) : 0;
        cash -= added;
        res += added;
        p.reserve_released = uint128(released);
        p.reserve_added = uint128(added);
        p.reserve_end = uint128(res);

        // Trigger: this period's defaults count; strictly exceeds; breached for good.
        p.trigger_breached = triggerBreached
            || (uint256(cumulativeDefaults) + defaults) * BPS > defaultTriggerBps * initialBalance;

        // 4. Principal, sequential; turbo once breached.
        uint256 owed = p.trigger_breached ? total : (total > b1 ? total - b1 : 0);
        uint256 pay = Math.min(cash, owed);
        uint256 residual = cash - pay;
        uint256 left = pay;
        for (uint256 k; k < n; ++k) {
            uint256 take = Math.min(left, starts[k]);
            left -= take;
            starts[k] -= take;
            r[k].principal_paid = uint128(take);
            r[k].cash_paid += uint128(take);
        }

        // 5. Losses, junior first, on the balances after principal.
        left = total - pay > b1 ? total - pay - b1 : 0;
        for (uint256 k = n; k > 0; --k) {
            uint256 take = Math.min(left, starts[k - 1]);
            left -= take;
            r[k - 1].loss = uint128(take);
            r[k - 1].balance_end = uint128(starts[k - 1] - take);
        }

        // 6. Residual to the last tranche.
        p.residual_paid = residual.toUint128();
        r[n - 1].cash_paid += uint128(residual);
    }

    function _pay(uint256 due, uint256 cash, uint256 res, uint256 drawn)
        private
        pure
        returns (uint256, uint256, uint256, uint256 paid)
    {
        uint256 fromCash = Math.min(cash, due);
        uint256 fromReserve = Math.min(res, due - fromCash);
        return (cash - fromCash, res - fromReserve, drawn + fromReserve, fromCash + fromReserve);
    }

    // -- holders ---------------------------------------------------------------------------------

    /// @notice Pay the caller everything it is owed across all tranches. Refused
    ///         (TrancheToken.ClaimRestricted) while the caller is frozen, not registered or
    ///         expired: the cash stays held for it.
    /// @return amount base units paid.
    function claim() external returns (uint256 amount) {
        return _claim(msg.sender, type(uint256).max);
    }

    /// @notice Pay `holder` everything it is owed across all tranches. Only the holder itself
    ///         or a PAYING_AGENT may call; the cash only ever goes to the holder.
    /// @param holder the holder.
    /// @return amount base units paid.
    function claimFor(address holder) external returns (uint256 amount) {
        return _claim(holder, type(uint256).max);
    }

    /// @notice Pay `holder` what it is owed in the tranches of `trancheMask` (bit k: tranche k).
    ///         A wallet that reads `claimable` first skips the tranches where nothing is owed
    ///         (each costs a cold call and a cold slot, about 5,000 gas). Only the holder itself
    ///         or a PAYING_AGENT may call.
    /// @param holder the holder.
    /// @param trancheMask which tranches to claim; bits beyond the last tranche are ignored.
    /// @return amount base units paid.
    function claimTranches(address holder, uint256 trancheMask) external returns (uint256 amount) {
        return _claim(holder, trancheMask);
    }

    /// @dev Each token emits Claimed(holder, amount) for its part (and refuses a restricted
    ///      holder); the settlement token's Transfer records the payment.
    function _claim(address holder, uint256 mask) private returns (uint256 amount) {
        if (holder != msg.sender) _checkRole(PAYING_AGENT_ROLE);
        uint256 n = trancheCount;
        for (uint256 k; k < n; ++k) {
            if (mask & (1 << k) != 0) amount += _token(k).redeem(holder);
        }
        if (amount == 0) revert NothingToClaim(holder);
        settlement.safeTransfer(holder, amount);
    }

    // -- admin -----------------------------------------------------------------------------------

    /// @notice Change where the servicer fee is paid.
    /// @param recipient the new fee recipient.
    function setFeeRecipient(address recipient) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (recipient == address(0)) revert ZeroAddress("feeRecipient");
        emit FeeRecipientChanged(feeRecipient, recipient);
        feeRecipient = recipient;
    }

    /// @notice Send `to` every settlement base unit the deal holds that nobody is owed; nothing
    ///         ends: reports (recoveries after the pool is paid down too), claims and later sweeps
    ///         go on as before, so it is harmless whenever it runs. It keeps the reserve and, per
    ///         tranche, everything credited and not claimed: while the pool balance is above 0
    ///         that includes the rounding carry (dust), which the next credit pays to holders.
    ///         Once the pool balance is 0 each tranche's carry is released first
    ///         (`TrancheToken.releaseCarry`; a later credit starts from none) and swept too.
    ///         What it takes: stray transfers, and the released carry.
    /// @param to receiver of the swept cash.
    /// @return amount base units swept.
    function sweep(address to) external onlyRole(DEFAULT_ADMIN_ROLE) returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress("to");
        bool paidDown = poolBalance == 0;
        uint256 kept = reserve;
        uint256 n = trancheCount;
        for (uint256 k; k < n; ++k) {
            TrancheToken token = _token(k);
            // credited and not claimed or released: owed + dust; the dust too once released
            kept += token.paidTotal() - token.claimedTotal() - token.releasedTotal();
            if (paidDown) kept -= token.dust();
        }
        uint256 held = settlement.balanceOf(address(this));
        amount = held > kept ? held - kept : 0;
        swept += amount;
        emit Swept(to, amount);
        if (paidDown) {
            for (uint256 k; k < n; ++k) {
                _token(k).releaseCarry();
            }
        }
        if (amount > 0) settlement.safeTransfer(to, amount);
    }

    // -- views -----------------------------------------------------------------------------------

    /// @notice The token of tranche `k`.
    /// @param k tranche index.
    function trancheToken(uint256 k) external view returns (TrancheToken) {
        return _token(k);
    }

    /// @notice Every tranche token, most senior first.
    function tokens() external view returns (address[] memory out) {
        uint256 n = trancheCount;
        out = new address[](n);
        for (uint256 k; k < n; ++k) {
            out[k] = address(_token(k));
        }
    }

    /// @notice Whether `token` is one of this deal's tranche tokens.
    /// @param token the address.
    function isTranche(address token) external view returns (bool) {
        uint256 n = trancheCount;
        for (uint256 k; k < n; ++k) {
            if (address(_token(k)) == token) return true;
        }
        return false;
    }

    /// @notice Tranche `k`'s terms and carried state.
    /// @param k tranche index.
    function tranche(uint256 k) external view returns (Tranche memory) {
        TrancheToken token = _token(k);
        TrancheSlot memory t = _tranches[k];
        return Tranche(token, t.face, t.couponBps, t.issued, t.balance, t.unpaidInterest);
    }

    /// @notice Period `n`'s pool-level figures (all zero for a period not yet run).
    /// @param n period number, from 1.
    function period(uint256 n) external view returns (Period memory) {
        return _periods[n];
    }

    /// @notice What period `n` did to tranche `k`.
    /// @param n period number.
    /// @param k tranche index.
    function trancheResult(uint256 n, uint256 k) external view returns (TrancheResult memory) {
        _token(k);
        return _results[n][k];
    }

    /// @notice What period `n` did to every tranche, most senior first.
    /// @param n period number.
    function periodTranches(uint256 n) external view returns (TrancheResult[] memory out) {
        uint256 count = trancheCount;
        out = new TrancheResult[](count);
        for (uint256 k; k < count; ++k) {
            out[k] = _results[n][k];
        }
    }

    /// @notice Base units `holder` can claim now, per tranche.
    /// @param holder the holder.
    function claimable(address holder) external view returns (uint256[] memory out) {
        uint256 n = trancheCount;
        out = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            out[k] = _token(k).claimableOf(holder);
        }
    }

    /// @notice `holder`'s outstanding principal in tranche `k`: units * T_k / face_k.
    /// @param k tranche index.
    /// @param holder the holder.
    function principalOf(uint256 k, address holder) external view returns (uint256) {
        TrancheToken token = _token(k);
        TrancheSlot memory t = _tranches[k];
        return token.balanceOf(holder) * t.balance / t.face;
    }

    /// @notice Per tranche: cumulative cash credited, claimed, owed to holders and dust (the
    ///         carry not yet released). paid == claimed + owed + dust + the token's
    ///         `releasedTotal` for every tranche.
    function cashLedger()
        external
        view
        returns (uint256[] memory paid, uint256[] memory claimed, uint256[] memory owed, uint256[] memory dust)
    {
        uint256 n = trancheCount;
        (paid, claimed, owed, dust) = (new uint256[](n), new uint256[](n), new uint256[](n), new uint256[](n));
        for (uint256 k; k < n; ++k) {
            TrancheToken token = _token(k);
            (paid[k], claimed[k], owed[k], dust[k]) =
                (token.paidTotal(), token.claimedTotal(), token.owedToHolders(), token.dust());
        }
    }

    // -- internals -------------------------------------------------------------------------------

    function _issue(uint256 k, uint256 units) private {
        if (units == 0) revert ZeroUnits();
        TrancheSlot storage t = _tranches[k];
        uint256 available = t.face - t.issued;
        if (units > available) revert ExceedsFace(k, available, units);
        t.issued += uint96(units);
    }

    function _token(uint256 k) private view returns (TrancheToken) {
        if (k >= trancheCount) revert UnknownTranche(k);
        if (k == 0) return _t0;
        if (k == 1) return _t1;
        if (k == 2) return _t2;
        if (k == 3) return _t3;
        return _t4;
    }

    /// @dev Pull `amount` from `from` and refuse unless exactly `amount` arrived.
    function _receive(address from, uint256 amount) private {
        uint256 before = settlement.balanceOf(address(this));
        // `from` is the originator (a party fixed at deployment, for the reserve it approved) or
        // the servicer paying its own report in; never a caller-chosen address.
        // slither-disable-next-line arbitrary-send-erc20
        settlement.safeTransferFrom(from, address(this), amount);
        uint256 received = settlement.balanceOf(address(this)) - before;
        if (received != amount) revert SettlementAmountMismatch(amount, received);
    }

    function _requirePhase(Phase required) private view {
        if (phase != required) revert WrongPhase(phase, required);
    }

    function _checkBps(string memory field, uint256 value) private pure {
        if (value > BPS) revert InvalidParameter(field, value);
    }

}
