// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {FlooredAdminRules} from "./access/FlooredAdminRules.sol";
import {IEligibilityMirror} from "./InvestorRegistry.sol";

/// @title TrancheToken
/// @notice One restricted ERC-20 per tranche of a deal (ERC-1404 restriction codes), carrying
///         each holder's cash entitlement (the dividend-per-share pattern). Minted only by its
///         deal, which also credits each period's cash and redeems holders' claims.
///
///         Restriction codes (`detectTransferRestriction`; a refused transfer reverts with
///         `TransferRestricted(code)`), tested in this order:
///           0 SUCCESS                 the transfer is allowed
///           1 PAUSED                  an agent paused the token
///           4 SENDER_FROZEN           the sender is frozen in the investor registry
///           2 SENDER_NOT_ELIGIBLE     the sender is not registered, revoked, or expired
///           5 RECEIVER_FROZEN         the receiver is frozen
///           3 RECEIVER_NOT_ELIGIBLE   the receiver is not registered, revoked, or expired
///         A subscription's mint checks 1, 5 and 3. A forced transfer by an agent skips 1, 4 and
///         2 (it recovers units from a lost, frozen or expired wallet, also while paused) but
///         still checks 5 and 3: no ineligible wallet ever receives units by a transfer. The
///         closing's mint of unsold units to the originator checks nothing: neither a pause nor
///         the originator's status can block the closing.
///
///         Claims. A holder that is frozen, or not registered or expired, cannot claim
///         (`ClaimRestricted` with code 4 or 2): its cash keeps accruing and is held here until
///         it is eligible again, or until an agent moves it to a recovery wallet: with the units
///         (`forcedTransfer`), or alone (`moveEntitlement`, for a wallet that no longer holds the
///         units its cash was earned on).
///
///         Storage. One slot per holder packs everything a transfer touches:
///           bits   0..95   balance (uint96; the deal caps every face below 2**96)
///           bits  96..127  eligibleUntil, mirrored from the registry (uint32, clamped: a
///                          registry date after 2106-02-07 reads as that date here)
///           bit   128      frozen, mirrored from the registry
///           bits 129..255  correction (int127, in units of 1 / MAGNITUDE of a base unit)
///         and one global slot packs pointsPerUnit (uint128), claimed (uint120) and paused.
///         A transfer therefore reads three cold slots (sender, receiver, global) and writes two,
///         against a plain ERC-20's two and two; the registry's eligibility is already in the
///         holder slots (the registry writes it through on every change).
///
///         Entitlements. Each credited period adds floor((cash * MAGNITUDE + carry) / supply) to
///         pointsPerUnit and keeps the remainder as `carry` for the next period, so the
///         undistributed rounding never exceeds supply / MAGNITUDE base units in total. A
///         holder is entitled to (pointsPerUnit * balance + correction) / MAGNITUDE base units;
///         every balance change moves pointsPerUnit * amount of correction from receiver to
///         sender, so entitlement follows the units held when each period was credited, and a
///         claim lowers the correction by what it pays. A forced transfer also moves the
///         sender's unclaimed entitlement in proportion to the units moved (`EntitlementMoved`).
///         Once the pool is paid down the deal may release the carry (`releaseCarry`): the
///         undistributed rounding (`dust`) leaves the accounting and the next credit starts from
///         no carry, so paid == claimed + owed + dust + releasedTotal always.
///         A credit that would make pointsPerUnit * supply reach 2**126 is refused, which bounds
///         every correction to int127; since pointsPerUnit * supply never exceeds the cash ever
///         credited times MAGNITUDE, a tranche can be credited CREDIT_CAPACITY base units in its
///         life, and the deal refuses, when it is created, a pool too large for that.
///
///         Roles. DEFAULT_ADMIN (one holder, handed over in two steps after `defaultAdminDelay`,
///         never under a day; FlooredAdminRules) grants and revokes AGENT_ROLE. It is not the
///         deal's admin: the deal passes its own `tokenAdmin` party.
contract TrancheToken is ERC20, FlooredAdminRules, IEligibilityMirror {
    /// @notice Forced transfers, entitlement moves, pause and unpause.
    bytes32 public constant AGENT_ROLE = keccak256("AGENT_ROLE");
    /// @notice Scale of pointsPerUnit and of corrections.
    uint256 public constant MAGNITUDE = 2 ** 32;
    /// @notice Most base units a tranche can be credited in its life: (2**126 - 1) / MAGNITUDE.
    uint256 public constant CREDIT_CAPACITY = 2 ** 94 - 1;

    /// @notice ERC-1404 code: the transfer is allowed.
    uint8 public constant SUCCESS = 0;
    /// @notice ERC-1404 code: the token is paused.
    uint8 public constant PAUSED = 1;
    /// @notice ERC-1404 code: the sender is not registered, revoked, or past its eligibility date.
    uint8 public constant SENDER_NOT_ELIGIBLE = 2;
    /// @notice ERC-1404 code: the receiver is not registered, revoked, or past its eligibility date.
    uint8 public constant RECEIVER_NOT_ELIGIBLE = 3;
    /// @notice ERC-1404 code: the sender is frozen.
    uint8 public constant SENDER_FROZEN = 4;
    /// @notice ERC-1404 code: the receiver is frozen.
    uint8 public constant RECEIVER_FROZEN = 5;

    uint256 private constant _BALANCE_MASK = (1 << 96) - 1;
    uint256 private constant _UNTIL_SHIFT = 96;
    uint256 private constant _UNTIL_MAX = (1 << 32) - 1;
    uint256 private constant _FROZEN_BIT = 1 << 128;
    uint256 private constant _ELIGIBILITY_MASK = ((1 << 33) - 1) << 96;
    uint256 private constant _CORRECTION_SHIFT = 129;
    int256 private constant _CORRECTION_MAX = int256(1 << 126) - 1;
    int256 private constant _CORRECTION_MIN = -int256(1 << 126);
    uint256 private constant _POINTS_CAPACITY = 1 << 126;
    uint256 private constant _CLAIMED_SHIFT = 128;
    uint256 private constant _PAUSED_BIT = 1 << 248;
    // registry word layout (InvestorRegistry): eligibleUntil bits 0..39, frozen bit 56
    uint256 private constant _REGISTRY_UNTIL_MASK = (1 << 40) - 1;
    uint256 private constant _REGISTRY_FROZEN_BIT = 1 << 56;

    /// @notice The deal that mints, credits cash and redeems claims.
    address public immutable deal;
    /// @notice The investor registry whose words this token mirrors.
    address public immutable registry;
    /// @notice The tranche's face: total units that can ever exist.
    uint256 public immutable face;
    uint8 private immutable _decimals;

    mapping(address holder => uint256 word) private _holders;
    uint256 private _global; // pointsPerUnit bits 0..127 | claimed bits 128..247 | paused bit 248
    uint256 private _ledger; // supply bits 0..95 | carry bits 96..191
    uint256 private _paid; // cumulative cash credited, base units
    uint256 private _released; // cumulative carry released to the deal (releaseCarry), base units

    /// @notice A transfer or mint is refused; `code` is an ERC-1404 restriction code.
    error TransferRestricted(uint8 code);
    /// @notice Only the deal may call this.
    error OnlyDeal(address caller);
    /// @notice Only the registry may call this.
    error OnlyRegistry(address caller);
    /// @notice Minting would take the supply beyond the face.
    error FaceExceeded(uint256 supply, uint256 minting, uint256 face);
    /// @notice Units cannot be burned.
    error BurnNotSupported();
    /// @notice Cash cannot be credited before any unit exists.
    error NoUnitsIssued();
    /// @notice The credit would overflow the packed entitlement accounting.
    error EntitlementCapacityExceeded(uint256 pointsPerUnit, uint256 supply);
    /// @notice The face does not fit the packed balance (96 bits) or is zero.
    error InvalidFace(uint256 face);
    /// @notice Two batch arrays have different lengths.
    error LengthMismatch(uint256 a, uint256 b);
    /// @notice The token is paused.
    error EnforcedPause();
    /// @notice The token is not paused.
    error ExpectedPause();
    /// @notice The holder may not claim now: `code` 4 (frozen) or 2 (not registered or expired).
    error ClaimRestricted(address holder, uint8 code);

    /// @notice An agent moved units without the sender's consent.
    event ForcedTransfer(address indexed from, address indexed to, uint256 value, address indexed agent);
    /// @notice `amount` of unclaimed entitlement (1 / MAGNITUDE base units) moved from `from` to
    ///         `to`: by a forced transfer, in proportion to the units it moved, or by
    ///         `moveEntitlement`, all of it.
    event EntitlementMoved(address indexed from, address indexed to, uint256 amount);
    /// @notice The deal released the carry: `amount` base units of dust left the accounting
    ///         (the deal swept them) and the carry of `carry` / MAGNITUDE base units was cleared.
    event CarryReleased(uint256 amount, uint256 carry);
    /// @notice The deal credited a period's cash to this tranche's holders.
    event Distributed(uint256 cash, uint256 pointsPerUnit, uint256 carry);
    /// @notice A holder's entitlement was redeemed (the deal paid it in settlement tokens).
    event Claimed(address indexed holder, uint256 amount);
    /// @notice An agent paused transfers.
    event Paused(address account);
    /// @notice An agent unpaused transfers.
    event Unpaused(address account);

    /// @dev Deployed by the deal, which becomes `deal`.
    /// @param name_ token name.
    /// @param symbol_ token symbol.
    /// @param decimals_ the settlement token's decimals (one unit is one base unit of face).
    /// @param face_ the tranche's face.
    /// @param registry_ the investor registry mirrored here.
    /// @param admin receives DEFAULT_ADMIN_ROLE (the token admin, not the deal's admin).
    /// @param adminDelay the wait before a new admin can accept the role (at least MIN_ADMIN_DELAY).
    /// @param agent receives AGENT_ROLE.
    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        uint256 face_,
        address registry_,
        address admin,
        uint48 adminDelay,
        address agent
    ) ERC20(name_, symbol_) FlooredAdminRules(adminDelay, admin) {
        if (face_ == 0 || face_ > _BALANCE_MASK) revert InvalidFace(face_);
        deal = msg.sender;
        registry = registry_;
        face = face_;
        _decimals = decimals_;
        _grantRole(AGENT_ROLE, agent);
    }

    modifier onlyDeal() {
        if (msg.sender != deal) revert OnlyDeal(msg.sender);
        _;
    }

    // -- ERC-20 ----------------------------------------------------------------------------------

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc ERC20
    function totalSupply() public view override returns (uint256) {
        return _ledger & _BALANCE_MASK;
    }

    /// @inheritdoc ERC20
    function balanceOf(address account) public view override returns (uint256) {
        return _holders[account] & _BALANCE_MASK;
    }

    /// @dev Every balance change goes through here (mints) or `_move` (transfers), which keep
    ///      the corrections exact. Burning is not part of a tranche's life.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0)) {
            _mintUnits(to, value, true);
        } else if (to == address(0)) {
            revert BurnNotSupported();
        } else {
            _move(from, to, value, false);
        }
    }

    // -- ERC-1404 --------------------------------------------------------------------------------

    /// @notice The restriction code a transfer of `value` from `from` to `to` would meet now
    ///         (0 when allowed; balance and allowance are not restrictions, ERC-20 errors).
    /// @param from sender.
    /// @param to receiver.
    /// @param value units (unused: restrictions do not depend on the amount).
    function detectTransferRestriction(address from, address to, uint256 value) external view returns (uint8) {
        value;
        return _restriction(_global, _holders[from], _holders[to], false);
    }

    /// @notice A human sentence for a restriction code.
    /// @param code an ERC-1404 code of this token.
    function messageForTransferRestriction(uint8 code) external pure returns (string memory) {
        if (code == SUCCESS) return "SUCCESS";
        if (code == PAUSED) return "PAUSED: transfers of this tranche are paused";
        if (code == SENDER_NOT_ELIGIBLE) return "SENDER_NOT_ELIGIBLE: sender is not a registered investor or its eligibility expired";
        if (code == RECEIVER_NOT_ELIGIBLE) return "RECEIVER_NOT_ELIGIBLE: receiver is not a registered investor or its eligibility expired";
        if (code == SENDER_FROZEN) return "SENDER_FROZEN: sender is frozen";
        if (code == RECEIVER_FROZEN) return "RECEIVER_FROZEN: receiver is frozen";
        return "UNKNOWN_RESTRICTION";
    }

    // -- agent -----------------------------------------------------------------------------------

    /// @notice Move units from any holder to an eligible, unfrozen receiver (wallet recovery,
    ///         court order). Works while paused and whatever the sender's status. The sender's
    ///         unclaimed entitlement moves with the units, in proportion (all of it when all the
    ///         units move): a recovered wallet's accrued cash is claimable by the new wallet.
    /// @param from the holder.
    /// @param to the receiver.
    /// @param value units.
    /// @return true.
    function forcedTransfer(address from, address to, uint256 value) external onlyRole(AGENT_ROLE) returns (bool) {
        if (from == address(0)) revert ERC20InvalidSender(address(0));
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 moved = _move(from, to, value, true);
        emit ForcedTransfer(from, to, value, msg.sender);
        if (moved > 0) emit EntitlementMoved(from, to, moved);
        return true;
    }

    /// @notice Move all of `from`'s unclaimed entitlement, without units, to an eligible,
    ///         unfrozen receiver: the recovery of cash accrued by a wallet that has since sold its
    ///         units and was then lost or frozen, which no forced transfer can reach (it moves
    ///         cash in proportion to units). The same rules as a forced transfer's: works while
    ///         paused and whatever the sender's status; a frozen or ineligible receiver is refused
    ///         (`TransferRestricted` 5 or 3). Conserves entitlement exactly: what `from` loses,
    ///         `to` gains, to 1 / MAGNITUDE of a base unit.
    /// @param from the wallet whose cash moves.
    /// @param to the receiver.
    /// @return moved the entitlement moved, 1 / MAGNITUDE base units (0: nothing to move).
    function moveEntitlement(address from, address to) external onlyRole(AGENT_ROLE) returns (uint256 moved) {
        if (from == address(0)) revert ERC20InvalidSender(address(0));
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 g = _global;
        uint256 wFrom = _holders[from];
        uint256 wTo = _holders[to];
        uint8 code = _restriction(g, wFrom, wTo, true);
        if (code != SUCCESS) revert TransferRestricted(code);
        int256 cFrom = int256(wFrom) >> _CORRECTION_SHIFT;
        // the unclaimed entitlement is >= 0 and < 2**126 (see the contract's notice)
        moved = uint256(int256(uint128(g) * (wFrom & _BALANCE_MASK)) + cFrom);
        if (from == to || moved == 0) return 0;
        _holders[from] = _withCorrection(wFrom, cFrom - int256(moved));
        _holders[to] = _withCorrection(wTo, (int256(wTo) >> _CORRECTION_SHIFT) + int256(moved));
        emit EntitlementMoved(from, to, moved);
    }

    /// @notice Halt transfers and mints (forced transfers still work).
    function pause() external onlyRole(AGENT_ROLE) {
        uint256 g = _global;
        if (g & _PAUSED_BIT != 0) revert EnforcedPause();
        _global = g | _PAUSED_BIT;
        emit Paused(msg.sender);
    }

    /// @notice Resume transfers and mints.
    function unpause() external onlyRole(AGENT_ROLE) {
        uint256 g = _global;
        if (g & _PAUSED_BIT == 0) revert ExpectedPause();
        _global = g & ~_PAUSED_BIT;
        emit Unpaused(msg.sender);
    }

    /// @notice Whether transfers and mints are paused.
    function paused() external view returns (bool) {
        return _global & _PAUSED_BIT != 0;
    }

    // -- registry mirror -------------------------------------------------------------------------

    /// @inheritdoc IEligibilityMirror
    function mirrorEligibility(address[] calldata investors, uint256[] calldata words) external {
        if (msg.sender != registry) revert OnlyRegistry(msg.sender);
        uint256 n = investors.length;
        if (words.length != n) revert LengthMismatch(n, words.length);
        for (uint256 i; i < n; ++i) {
            uint256 word = words[i];
            uint256 until = word & _REGISTRY_UNTIL_MASK;
            if (until > _UNTIL_MAX) until = _UNTIL_MAX;
            uint256 bits = (until << _UNTIL_SHIFT) | (word & _REGISTRY_FROZEN_BIT != 0 ? _FROZEN_BIT : 0);
            address who = investors[i];
            _holders[who] = (_holders[who] & ~_ELIGIBILITY_MASK) | bits;
        }
    }

    /// @notice The registry data this token holds for `holder`.
    /// @param holder the address.
    /// @return eligibleUntil the mirrored eligibility date (clamped to uint32).
    /// @return frozen the mirrored frozen flag.
    function eligibilityOf(address holder) external view returns (uint256 eligibleUntil, bool frozen) {
        uint256 w = _holders[holder];
        return ((w >> _UNTIL_SHIFT) & _UNTIL_MAX, w & _FROZEN_BIT != 0);
    }

    // -- deal ------------------------------------------------------------------------------------

    /// @notice Mint units to a subscriber; checks codes 1, 5, 3.
    /// @param to receiver.
    /// @param value units.
    function mint(address to, uint256 value) external onlyDeal {
        _mint(to, value);
    }

    /// @notice Mint the unsold units to the originator at closing. No restriction applies: a
    ///         pause, or the originator frozen or expired, cannot block the closing (a frozen
    ///         originator then holds units it can neither move nor claim on until unfrozen).
    /// @param to the originator.
    /// @param value units.
    function mintUnsold(address to, uint256 value) external onlyDeal {
        _mintUnits(to, value, false);
    }

    /// @notice Mint units to several investors.
    /// @param to receivers.
    /// @param values units per receiver.
    function mintBatch(address[] calldata to, uint256[] calldata values) external onlyDeal {
        uint256 n = to.length;
        if (values.length != n) revert LengthMismatch(n, values.length);
        for (uint256 i; i < n; ++i) {
            _mint(to[i], values[i]);
        }
    }

    /// @notice Credit `cash` base units, shared pro rata over the units outstanding now.
    /// @param cash base units the deal now holds for this tranche's holders.
    function distribute(uint256 cash) external onlyDeal {
        uint256 ledger = _ledger;
        uint256 supply = ledger & _BALANCE_MASK;
        if (supply == 0) revert NoUnitsIssued();
        uint256 scaled = cash * MAGNITUDE + (ledger >> 96);
        uint256 g = _global;
        uint256 points = uint128(g) + scaled / supply;
        if (points * supply >= _POINTS_CAPACITY) revert EntitlementCapacityExceeded(points, supply);
        uint256 remainder = scaled % supply;
        _global = (g & ~uint256(type(uint128).max)) | points;
        _ledger = supply | (remainder << 96);
        _paid += cash;
        emit Distributed(cash, points, remainder);
    }

    /// @notice Release the carry: the dust (credited cash no holder can claim) leaves the
    ///         accounting and the carry restarts at 0. The deal calls it only once the pool
    ///         balance is 0, to sweep the dust; a later credit (recoveries) starts from no carry,
    ///         so the deal always holds what holders are owed. `CarryReleased` names the amount
    ///         (nothing is emitted when there was neither dust nor carry).
    function releaseCarry() external onlyDeal {
        uint256 amount = dust();
        uint256 ledger = _ledger;
        uint256 carried = ledger >> 96;
        if (amount == 0 && carried == 0) return;
        _ledger = ledger & _BALANCE_MASK;
        _released += amount;
        emit CarryReleased(amount, carried);
    }

    /// @notice Redeem everything `holder` is owed in whole base units; the deal pays it.
    ///         Refused (`ClaimRestricted`) while the holder is frozen, or not registered or
    ///         expired, when it is owed anything: the cash stays held for it.
    /// @param holder the holder.
    /// @return amount base units owed, now recorded as claimed.
    function redeem(address holder) external onlyDeal returns (uint256 amount) {
        uint256 w = _holders[holder];
        if (w & ~_ELIGIBILITY_MASK == 0) return 0; // no units and nothing carried
        uint256 g = _global;
        int256 correction = int256(w) >> _CORRECTION_SHIFT;
        // Floor to whole base units, then charge exactly those units back to the correction:
        // the fraction below one unit stays with the holder, so this is intended.
        // slither-disable-next-line divide-before-multiply
        amount = uint256(int256(uint128(g) * (w & _BALANCE_MASK)) + correction) / MAGNITUDE;
        if (amount == 0) return 0;
        if (w & _FROZEN_BIT != 0) revert ClaimRestricted(holder, SENDER_FROZEN);
        if ((w >> _UNTIL_SHIFT) & _UNTIL_MAX < block.timestamp) revert ClaimRestricted(holder, SENDER_NOT_ELIGIBLE);
        _holders[holder] = _withCorrection(w, correction - int256(amount * MAGNITUDE));
        _global = g + (amount << _CLAIMED_SHIFT);
        emit Claimed(holder, amount);
    }

    // -- entitlement views -----------------------------------------------------------------------

    /// @notice Base units `holder` can claim now from this tranche.
    /// @param holder the holder.
    function claimableOf(address holder) external view returns (uint256) {
        return entitlementOf(holder) / MAGNITUDE;
    }

    /// @notice `holder`'s unclaimed entitlement in 1 / MAGNITUDE base units (exact).
    /// @param holder the holder.
    function entitlementOf(address holder) public view returns (uint256) {
        uint256 w = _holders[holder];
        return uint256(int256(uint128(_global) * (w & _BALANCE_MASK)) + (int256(w) >> _CORRECTION_SHIFT));
    }

    /// @notice Cumulative points per unit (1 / MAGNITUDE base units per unit).
    function pointsPerUnit() external view returns (uint256) {
        return uint128(_global);
    }

    /// @notice Cash credited and not yet assigned to units: carry / MAGNITUDE base units.
    function carry() external view returns (uint256) {
        return _ledger >> 96;
    }

    /// @notice Total base units credited to this tranche.
    function paidTotal() external view returns (uint256) {
        return _paid;
    }

    /// @notice Total base units of dust released to the deal (`releaseCarry`).
    function releasedTotal() external view returns (uint256) {
        return _released;
    }

    /// @notice Total base units claimed by holders of this tranche.
    function claimedTotal() external view returns (uint256) {
        return _global >> _CLAIMED_SHIFT & type(uint120).max;
    }

    /// @notice Base units assigned to holders and not claimed: an upper bound of the sum of
    ///         every holder's `claimableOf` (each holder's fraction of a unit stays its own).
    function owedToHolders() public view returns (uint256) {
        uint256 g = _global;
        return uint128(g) * (_ledger & _BALANCE_MASK) / MAGNITUDE - (g >> _CLAIMED_SHIFT & type(uint120).max);
    }

    /// @notice Rounding dust: base units credited that no holder can claim now (paidTotal -
    ///         claimedTotal - owedToHolders - releasedTotal): the carry, which the next credit
    ///         pays to holders. Stays in the deal until `releaseCarry`.
    function dust() public view returns (uint256) {
        return _paid - _released - uint128(_global) * (_ledger & _BALANCE_MASK) / MAGNITUDE;
    }

    // -- internals -------------------------------------------------------------------------------

    function _restriction(uint256 g, uint256 wFrom, uint256 wTo, bool forced) private view returns (uint8) {
        if (!forced) {
            if (g & _PAUSED_BIT != 0) return PAUSED;
            if (wFrom & _FROZEN_BIT != 0) return SENDER_FROZEN;
            if ((wFrom >> _UNTIL_SHIFT) & _UNTIL_MAX < block.timestamp) return SENDER_NOT_ELIGIBLE;
        }
        if (wTo & _FROZEN_BIT != 0) return RECEIVER_FROZEN;
        if ((wTo >> _UNTIL_SHIFT) & _UNTIL_MAX < block.timestamp) return RECEIVER_NOT_ELIGIBLE;
        return SUCCESS;
    }

    /// @dev Returns the unclaimed entitlement moved with the units (forced transfers only).
    function _move(address from, address to, uint256 value, bool forced) private returns (uint256 entitlement) {
        uint256 g = _global;
        uint256 wFrom = _holders[from];
        uint256 wTo = from == to ? wFrom : _holders[to];
        uint8 code = _restriction(g, wFrom, wTo, forced);
        if (code != SUCCESS) revert TransferRestricted(code);
        uint256 balance = wFrom & _BALANCE_MASK;
        if (balance < value) revert ERC20InsufficientBalance(from, balance, value);
        if (from != to) {
            // value <= balance < 2**96 and points < 2**128: the product fits; balances cannot
            // overflow 96 bits because the supply does not.
            int256 cFrom = int256(wFrom) >> _CORRECTION_SHIFT;
            int256 moved = int256(uint128(g) * value);
            if (forced && value > 0) {
                // the sender's unclaimed entitlement (>= 0, < 2**126) in proportion to the units
                entitlement = uint256(int256(uint128(g) * balance) + cFrom) * value / balance;
                moved -= int256(entitlement);
            }
            _holders[from] = _withCorrection(wFrom - value, cFrom + moved);
            _holders[to] = _withCorrection(wTo + value, (int256(wTo) >> _CORRECTION_SHIFT) - moved);
        }
        emit Transfer(from, to, value);
    }

    function _mintUnits(address to, uint256 value, bool restricted) private {
        uint256 g = _global;
        uint256 wTo = _holders[to];
        if (restricted) {
            if (g & _PAUSED_BIT != 0) revert TransferRestricted(PAUSED);
            uint8 code = _restriction(g, 0, wTo, true);
            if (code != SUCCESS) revert TransferRestricted(code);
        }
        uint256 ledger = _ledger;
        uint256 supply = (ledger & _BALANCE_MASK) + value;
        if (supply > face) revert FaceExceeded(ledger & _BALANCE_MASK, value, face);
        _ledger = (ledger & ~_BALANCE_MASK) | supply;
        _holders[to] = _withCorrection(wTo + value, (int256(wTo) >> _CORRECTION_SHIFT) - int256(uint128(g) * value));
        emit Transfer(address(0), to, value);
    }

    /// @dev `word` with its correction replaced; the invariant |correction| <= points * supply
    ///      < 2**126 makes the range check unreachable, it guards the packing only.
    function _withCorrection(uint256 word, int256 correction) private pure returns (uint256) {
        if (correction > _CORRECTION_MAX || correction < _CORRECTION_MIN) {
            revert EntitlementCapacityExceeded(0, 0);
        }
        return (word & ((1 << _CORRECTION_SHIFT) - 1)) | (uint256(correction) << _CORRECTION_SHIFT);
    }
}
