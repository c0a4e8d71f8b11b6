"""Tranche tokens and the investor registry replayed from their events: the arithmetic of
`TrancheToken` and `InvestorRegistry`, in plain Python ints, with no chain and no web3.

`TokenBook` follows one TrancheToken: units per holder (Transfer), points per unit and carry
(Distributed), each holder's correction (Transfer, Claimed, EntitlementMoved) and so what each
holder can claim, exactly as `claimableOf` computes it: (pointsPerUnit * balance + correction)
// MAGNITUDE. The token's own rules change nothing here: a frozen, revoked or expired holder's
claim is refused (no Claimed event), so its cash stays in its correction and stays claimable;
a forced transfer moves units (Transfer) and unclaimed entitlement (EntitlementMoved); the
deal's sweep takes only what no holder is owed and emits nothing on the token.

`RegistryBook` follows the registry: each investor's eligibility date and frozen flag from
InvestorSet, InvestorRevoked (the date is cleared, a freeze stays) and InvestorFrozen.

`audit verify` replays the chain's events through these books (chainabs.audit.tokens); the
audit API replays the index's (chainabs.figures). Event args are read with int() and str(), so
either decoding (ints, or decimal strings for values beyond JSON's safe integers) works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ZERO = "0x" + "0" * 40
MAGNITUDE = 2**32  # TrancheToken.MAGNITUDE: entitlements are kept in 1 / MAGNITUDE base units
UNTIL_MAX = 2**32 - 1  # the token mirrors a registry date clamped to uint32


@dataclass
class TokenBook:
    """One tranche token replayed from its events: units, and entitlements in 1/MAGNITUDE.
    Addresses are as the events carry them; callers use one case throughout (lower)."""

    balances: dict[str, int] = field(default_factory=dict)
    corrections: dict[str, int] = field(default_factory=dict)
    claimed_by: dict[str, int] = field(default_factory=dict)
    supply: int = 0
    points: int = 0
    carry: int = 0
    paid: int = 0
    claimed: int = 0
    released: int = 0  # dust released to the deal's sweep (CarryReleased)
    minted: int = 0
    overdrafts: list[str] = field(default_factory=list)          # a Transfer of more than was held
    bad_distributions: list[str] = field(default_factory=list)   # emitted points/carry not the arithmetic

    def transfer(self, sender: str, receiver: str, value: int) -> None:
        moved = self.points * value
        if sender == ZERO:
            self.supply += value
            self.minted += value
        else:
            left = self.balances.get(sender, 0) - value
            if left < 0:
                self.overdrafts.append(f"{sender} sends {value} holding {left + value}")
            self.balances[sender] = left
            self.corrections[sender] = self.corrections.get(sender, 0) + moved
        self.balances[receiver] = self.balances.get(receiver, 0) + value
        self.corrections[receiver] = self.corrections.get(receiver, 0) - moved

    def distribute(self, cash: int, points: int, carry: int) -> None:
        scaled = cash * MAGNITUDE + self.carry
        expected = (self.points + scaled // self.supply, scaled % self.supply) if self.supply else None
        if expected != (points, carry):
            self.bad_distributions.append(f"Distributed({cash}) emitted points {points}, carry {carry}; "
                                          f"expected {expected}")
        self.points, self.carry, self.paid = points, carry, self.paid + cash

    def release(self, amount: int, carry: int) -> None:
        """CarryReleased: the dust leaves the book and the carry restarts at 0."""
        dust = self.paid - self.released - self.points * self.supply // MAGNITUDE
        if (amount, carry) != (dust, self.carry):
            self.bad_distributions.append(f"CarryReleased({amount}, {carry}); expected ({dust}, {self.carry})")
        self.carry, self.released = 0, self.released + amount

    def move_entitlement(self, sender: str, receiver: str, amount: int) -> None:
        """EntitlementMoved (a forced transfer or moveEntitlement): `amount` (1/MAGNITUDE units)
        changes hands."""
        self.corrections[sender] = self.corrections.get(sender, 0) - amount
        self.corrections[receiver] = self.corrections.get(receiver, 0) + amount

    def claim(self, holder: str, amount: int) -> None:
        self.corrections[holder] = self.corrections.get(holder, 0) - amount * MAGNITUDE
        self.claimed += amount
        self.claimed_by[holder] = self.claimed_by.get(holder, 0) + amount

    def apply(self, name: str, args: Mapping[str, Any]) -> None:
        """One event of the token, by name (events that move no units or cash are ignored)."""
        if name == "Transfer":
            self.transfer(str(args["from"]).lower(), str(args["to"]).lower(), int(args["value"]))
        elif name == "Distributed":
            self.distribute(int(args["cash"]), int(args["pointsPerUnit"]), int(args["carry"]))
        elif name == "Claimed":
            self.claim(str(args["holder"]).lower(), int(args["amount"]))
        elif name == "EntitlementMoved":
            self.move_entitlement(str(args["from"]).lower(), str(args["to"]).lower(), int(args["amount"]))
        elif name == "CarryReleased":
            self.release(int(args["amount"]), int(args["carry"]))

    def claimable(self, holder: str) -> int:
        """TrancheToken.claimableOf(holder): whole base units owed now."""
        return (self.points * self.balances.get(holder, 0) + self.corrections.get(holder, 0)) // MAGNITUDE


@dataclass(frozen=True)
class Investor:
    eligible_until: int   # unix time; 0 when never registered or revoked
    jurisdiction: int
    frozen: bool

    def eligible_at(self, timestamp: int) -> bool:
        """The registry's `isEligible` at `timestamp`: registered, not expired, not frozen."""
        return not self.frozen and timestamp <= self.eligible_until


NOBODY = Investor(0, 0, False)


@dataclass
class RegistryBook:
    """The investor registry's records replayed from its events."""

    investors: dict[str, Investor] = field(default_factory=dict)

    def apply(self, name: str, args: Mapping[str, Any]) -> None:
        who = str(args.get("investor", "")).lower()
        if not who:
            return
        now = self.investors.get(who, NOBODY)
        if name == "InvestorSet":
            self.investors[who] = Investor(int(args["eligibleUntil"]), int(args["jurisdiction"]), now.frozen)
        elif name == "InvestorRevoked":
            self.investors[who] = Investor(0, 0, now.frozen)  # a freeze survives a revoke
        elif name == "InvestorFrozen":
            self.investors[who] = Investor(now.eligible_until, now.jurisdiction, bool(args["frozen"]))

    def investor(self, who: str) -> Investor:
        return self.investors.get(who.lower(), NOBODY)

    def mirrored(self, who: str) -> tuple[int, bool]:
        """(eligibleUntil, frozen) as a tranche token mirrors them (TrancheToken.eligibilityOf):
        the date clamped to uint32."""
        record = self.investor(who)
        return min(record.eligible_until, UNTIL_MAX), record.frozen
