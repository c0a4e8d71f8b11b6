// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FlooredAdminRules} from "./access/FlooredAdminRules.sol";
import {IDealOfRegistry, ITrancheOfDeal} from "./interfaces/IRegistryClients.sol";

/// @title IEligibilityMirror
/// @notice Implemented by tranche tokens that keep a copy of each investor's registry word
///         beside the investor's balance, so a transfer reads eligibility at no extra SLOAD.
interface IEligibilityMirror {
    /// @notice Overwrite the mirrored registry words of `investors` (only the registry may call).
    /// @param investors the investors whose words changed.
    /// @param words their new registry words, in the registry's packed layout.
    function mirrorEligibility(address[] calldata investors, uint256[] calldata words) external;

    /// @notice The registry this token mirrors.
    function registry() external view returns (address);
}

/// @title InvestorRegistry
/// @notice Who may hold a deal's tranches. One storage slot per investor packs
///         `eligibleUntil` (uint40 unix seconds, bits 0..39), `jurisdiction` (uint16, an
///         ISO 3166-1 numeric country code, bits 40..55) and `frozen` (bit 56). An investor is
///         eligible while `block.timestamp <= eligibleUntil` and not frozen; an address never
///         added has eligibleUntil 0 and is never eligible.
///
///         Write-through mirror: a transfer must not pay for a call into this contract
///         (2,600 gas cold account + 2 x 2,100 cold slots would put a tranche transfer at about
///         1.3x a plain ERC-20 transfer). So every change made here is also pushed, in the same
///         transaction, to each attached tranche token, which stores the word's expiry and frozen
///         bit inside the holder's balance slot. This contract stays the record: it emits the
///         events and answers `isEligible`; the tokens' copies are never written by anyone else.
///         Attach tokens before adding investors, or call `sync` afterwards for the investors
///         added earlier (anyone may: it only copies words that are already here).
///
///         A freeze is independent of registration: revoking an investor clears its date and
///         jurisdiction but keeps the frozen bit, so a frozen wallet stays frozen when it is
///         revoked and added again; only `setFrozen(..., false)` unfreezes.
///
///         Attached tokens. Every write here calls every attached token, so an attached contract
///         that reverts would block them all: COMPLIANCE attaches only a tranche token of a deal
///         that uses this registry (the token's `registry()` is this contract, its `deal()` names
///         it as a tranche, and that deal's `registry()` is this contract), and the admin can
///         detach one (`detachToken`, through its timelock).
///
///         Roles. DEFAULT_ADMIN (one holder, handed over in two steps after `defaultAdminDelay`,
///         never under a day; FlooredAdminRules) grants and revokes COMPLIANCE_ROLE and detaches
///         tokens; it is not the deal's admin.
contract InvestorRegistry is FlooredAdminRules {
    /// @notice Adds, updates, revokes, freezes and unfreezes investors; attaches tranche tokens.
    bytes32 public constant COMPLIANCE_ROLE = keccak256("COMPLIANCE_ROLE");
    /// @notice At most this many tokens mirror one registry (each change writes all of them).
    uint256 public constant MAX_TOKENS = 10;
    uint256 private constant _UNTIL_MASK = (1 << 40) - 1;
    uint256 private constant _JURISDICTION_SHIFT = 40;
    uint256 private constant _FROZEN_BIT = 1 << 56;

    mapping(address who => uint256 word) private _words;
    address[] private _tokens;

    /// @notice Two batch arrays have different lengths.
    error LengthMismatch(uint256 investors, uint256 values);
    /// @notice The zero address cannot be an investor.
    error ZeroInvestor(uint256 index);
    /// @notice The token is not a tranche of a deal that uses this registry, is already
    ///         attached, or the limit is reached.
    error CannotAttach(address token);
    /// @notice The token is not attached.
    error NotAttached(address token);

    /// @notice An investor's eligibility and jurisdiction were set (added or updated).
    event InvestorSet(address indexed investor, uint40 eligibleUntil, uint16 jurisdiction);
    /// @notice An investor was removed: no longer eligible, jurisdiction cleared; a freeze stays.
    event InvestorRevoked(address indexed investor);
    /// @notice An investor was frozen or unfrozen.
    event InvestorFrozen(address indexed investor, bool frozen);
    /// @notice A tranche token now mirrors this registry.
    event TokenAttached(address indexed token);
    /// @notice A token no longer mirrors this registry.
    event TokenDetached(address indexed token);
    /// @notice Investors' words were copied to every attached token again.
    event InvestorsSynced(uint256 count);

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes COMPLIANCE_ROLE).
    /// @param adminDelay the wait before a new admin can accept the role (at least MIN_ADMIN_DELAY).
    /// @param compliance receives COMPLIANCE_ROLE.
    constructor(address admin, uint48 adminDelay, address compliance) FlooredAdminRules(adminDelay, admin) {
        _grantRole(COMPLIANCE_ROLE, compliance);
    }

    // -- compliance ------------------------------------------------------------------------------

    /// @notice Add or update investors in one batch; a frozen investor stays frozen.
    /// @param investors the investors, any number the block allows.
    /// @param eligibleUntil per investor, the last unix second at which it is eligible.
    /// @param jurisdictions per investor, an ISO 3166-1 numeric country code.
    function setInvestors(address[] calldata investors, uint40[] calldata eligibleUntil, uint16[] calldata jurisdictions)
        external
        onlyRole(COMPLIANCE_ROLE)
    {
        uint256 n = investors.length;
        if (eligibleUntil.length != n) revert LengthMismatch(n, eligibleUntil.length);
        if (jurisdictions.length != n) revert LengthMismatch(n, jurisdictions.length);
        uint256[] memory words = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            address who = investors[i];
            if (who == address(0)) revert ZeroInvestor(i);
            uint256 word = (_words[who] & _FROZEN_BIT) | uint256(eligibleUntil[i])
                | (uint256(jurisdictions[i]) << _JURISDICTION_SHIFT);
            _words[who] = word;
            words[i] = word;
            emit InvestorSet(who, eligibleUntil[i], jurisdictions[i]);
        }
        _push(investors, words);
    }

    /// @notice Remove investors: not eligible, jurisdiction cleared; a frozen investor stays
    ///         frozen (a revoke and a new add never lift a freeze).
    /// @param investors the investors to remove.
    function revokeInvestors(address[] calldata investors) external onlyRole(COMPLIANCE_ROLE) {
        uint256 n = investors.length;
        uint256[] memory words = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            address who = investors[i];
            uint256 word = _words[who] & _FROZEN_BIT;
            _words[who] = word;
            words[i] = word;
            emit InvestorRevoked(who);
        }
        _push(investors, words);
    }

    /// @notice Freeze or unfreeze investors: a frozen investor can neither send nor receive.
    /// @param investors the investors.
    /// @param frozen_ true to freeze, false to unfreeze.
    function setFrozen(address[] calldata investors, bool frozen_) external onlyRole(COMPLIANCE_ROLE) {
        uint256 n = investors.length;
        uint256[] memory words = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            address who = investors[i];
            if (who == address(0)) revert ZeroInvestor(i);
            uint256 word = frozen_ ? _words[who] | _FROZEN_BIT : _words[who] & ~_FROZEN_BIT;
            _words[who] = word;
            words[i] = word;
            emit InvestorFrozen(who, frozen_);
        }
        _push(investors, words);
    }

    // -- tokens ----------------------------------------------------------------------------------

    /// @notice Attach a tranche token that mirrors this registry (at most MAX_TOKENS): a
    ///         tranche of a deal that uses this registry, not yet attached.
    /// @dev Investors added before the token was attached reach it through `sync`.
    /// @param token the token: its `registry()` is this contract, its `deal()` says it is one of
    ///        its tranches (`isTranche`) and that deal's `registry()` is this contract.
    function attachToken(address token) external onlyRole(COMPLIANCE_ROLE) {
        uint256 n = _tokens.length;
        if (n >= MAX_TOKENS || !_isOurTranche(token)) revert CannotAttach(token);
        for (uint256 i; i < n; ++i) {
            if (_tokens[i] == token) revert CannotAttach(token);
        }
        _tokens.push(token);
        emit TokenAttached(token);
    }

    /// @notice Stop writing to an attached token (the admin, through its timelock): the way out
    ///         if an attached contract ever refuses the registry's writes. The token keeps its
    ///         last copy of every investor's word.
    /// @param token an attached token.
    function detachToken(address token) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 n = _tokens.length;
        uint256 i;
        while (i < n && _tokens[i] != token) ++i;
        if (i == n) revert NotAttached(token);
        _tokens[i] = _tokens[n - 1];
        _tokens.pop();
        emit TokenDetached(token);
    }

    /// @notice Copy these investors' words to every attached token again. Anyone may call.
    /// @param investors the investors to copy.
    function sync(address[] calldata investors) external {
        uint256 n = investors.length;
        uint256[] memory words = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            words[i] = _words[investors[i]];
        }
        _push(investors, words);
        emit InvestorsSynced(n);
    }

    // -- views -----------------------------------------------------------------------------------

    /// @notice Whether `investor_` is eligible now: registered, not expired, not frozen.
    /// @param investor_ the address.
    function isEligible(address investor_) external view returns (bool) {
        uint256 word = _words[investor_];
        return word & _FROZEN_BIT == 0 && block.timestamp <= word & _UNTIL_MASK;
    }

    /// @notice An investor's record.
    /// @param investor_ the address.
    /// @return eligibleUntil last eligible unix second (0: never added or revoked).
    /// @return jurisdiction ISO 3166-1 numeric country code.
    /// @return frozen whether frozen.
    function investor(address investor_) external view returns (uint40 eligibleUntil, uint16 jurisdiction, bool frozen) {
        uint256 word = _words[investor_];
        return (uint40(word), uint16(word >> _JURISDICTION_SHIFT), word & _FROZEN_BIT != 0);
    }

    /// @notice The raw packed word of an investor (layout in the contract's notice).
    /// @param investor_ the address.
    function wordOf(address investor_) external view returns (uint256) {
        return _words[investor_];
    }

    /// @notice The attached tokens, in attachment order.
    function tokens() external view returns (address[] memory) {
        return _tokens;
    }

    /// @dev Whether `token` is a tranche of a deal that uses this registry; any call that
    ///      reverts or answers otherwise is a no.
    function _isOurTranche(address token) private view returns (bool) {
        if (token.code.length == 0) return false;
        try IEligibilityMirror(token).registry() returns (address mirrored) {
            if (mirrored != address(this)) return false;
        } catch {
            return false;
        }
        address deal = address(0);
        try ITrancheOfDeal(token).deal() returns (address d) {
            deal = d;
        } catch {
            return false;
        }
        if (deal.code.length == 0) return false;
        try IDealOfRegistry(deal).isTranche(token) returns (bool yes) {
            if (!yes) return false;
        } catch {
            return false;
        }
        try IDealOfRegistry(deal).registry() returns (address used) {
            return used == address(this);
        } catch {
            return false;
        }
    }

    function _push(address[] calldata investors, uint256[] memory words) private {
        uint256 n = _tokens.length;
        for (uint256 i; i < n; ++i) {
            IEligibilityMirror(_tokens[i]).mirrorEligibility(investors, words);
        }
    }
}
