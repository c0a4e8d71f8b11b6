// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {NoncesKeyed} from "@openzeppelin/contracts/utils/NoncesKeyed.sol";

/// @notice What the exchange needs to know about a deal.
interface IDealTranches {
    /// @notice The deal's settlement token.
    function settlement() external view returns (IERC20);
    /// @notice Whether `token` is one of the deal's tranche tokens.
    function isTranche(address token) external view returns (bool);
    /// @notice Periods the deal has run so far.
    function periodCount() external view returns (uint64);
}

/// @title TrancheExchange
/// @notice Secondary trades of a deal's tranche units against its settlement token, delivery
///         versus payment: a seller signs an EIP-712 order, a buyer fills it, and both legs move
///         in one transaction or neither does. The seller approves this contract on the tranche
///         token, the buyer on the settlement token; the tranche token's restrictions apply to
///         both parties as in any transfer. Nonces are keyed (OpenZeppelin NoncesKeyed): the
///         top 192 bits pick an independent sequence, so a seller can keep several orders live.
///         An order names the last period it is valid for: once the deal has run a later
///         period, the order cannot be filled, so neither side can race a period report (which
///         changes what a unit is worth) with a price agreed before it.
contract TrancheExchange is EIP712, NoncesKeyed {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type of an order.
    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address seller,address tranche,uint256 units,uint256 price,address buyer,uint256 nonce,uint256 deadline,uint256 lastPeriod)"
    );

    /// @notice A seller's offer: `units` of `tranche` for `price` settlement base units.
    struct Order {
        address seller;
        address tranche;
        uint256 units;
        uint256 price;
        address buyer; // zero: anyone may fill
        uint256 nonce; // key (top 192 bits) and sequence (low 64 bits)
        uint256 deadline; // last unix second the order can be filled
        uint256 lastPeriod; // the order can be filled while the deal's periodCount <= lastPeriod
    }

    /// @notice The deal whose tranches trade here.
    IDealTranches public immutable deal;
    /// @notice The deal's settlement token.
    IERC20 public immutable settlement;

    /// @notice The order's deadline has passed.
    error OrderExpired(uint256 deadline);
    /// @notice The order names another buyer.
    error NotOrderBuyer(address buyer, address caller);
    /// @notice The signature is not the seller's.
    error InvalidSignature(address seller);
    /// @notice The order's token is not a tranche of this deal.
    error UnknownTranche(address token);
    /// @notice The deal has run period `current`, after the order's last period.
    error OrderPeriodPassed(uint256 lastPeriod, uint256 current);

    /// @notice An order was filled: units to the buyer, price to the seller.
    event OrderFilled(
        bytes32 indexed orderHash, address indexed seller, address indexed buyer, address tranche, uint256 units, uint256 price, uint256 nonce
    );
    /// @notice A seller cancelled the order with this nonce.
    event OrderCancelled(address indexed seller, uint256 nonce);

    /// @param deal_ the deal.
    constructor(IDealTranches deal_) EIP712("chainabs TrancheExchange", "1") {
        deal = deal_;
        settlement = deal_.settlement();
    }

    /// @notice Fill `order` as its buyer: units move seller -> caller, price caller -> seller.
    ///         Refused after the order's deadline or once the deal has run a period after its
    ///         `lastPeriod`.
    /// @param order the seller's order.
    /// @param signature the seller's EIP-712 signature (or an ERC-1271 contract signature).
    function fillOrder(Order calldata order, bytes calldata signature) external {
        if (block.timestamp > order.deadline) revert OrderExpired(order.deadline);
        uint256 current = deal.periodCount();
        if (current > order.lastPeriod) revert OrderPeriodPassed(order.lastPeriod, current);
        if (order.buyer != address(0) && order.buyer != msg.sender) revert NotOrderBuyer(order.buyer, msg.sender);
        if (!deal.isTranche(order.tranche)) revert UnknownTranche(order.tranche);
        bytes32 digest = hashOrder(order);
        if (!SignatureChecker.isValidSignatureNow(order.seller, digest, signature)) revert InvalidSignature(order.seller);
        _useCheckedNonce(order.seller, order.nonce);
        emit OrderFilled(digest, order.seller, msg.sender, order.tranche, order.units, order.price, order.nonce);
        // `order.seller` signed this order (EIP-712, checked above) and approved the exchange.
        // slither-disable-next-line arbitrary-send-erc20
        IERC20(order.tranche).safeTransferFrom(order.seller, msg.sender, order.units);
        settlement.safeTransferFrom(msg.sender, order.seller, order.price);
    }

    /// @notice Cancel the caller's order with `nonce` (it must be its key's next nonce).
    /// @param nonce the order's nonce.
    function cancelOrder(uint256 nonce) external {
        _useCheckedNonce(msg.sender, nonce);
        emit OrderCancelled(msg.sender, nonce);
    }

    /// @notice The EIP-712 digest a seller signs for `order`.
    /// @param order the order.
    function hashOrder(Order calldata order) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ORDER_TYPEHASH,
                    order.seller,
                    order.tranche,
                    order.units,
                    order.price,
                    order.buyer,
                    order.nonce,
                    order.deadline,
                    order.lastPeriod
                )
            )
        );
    }
}
