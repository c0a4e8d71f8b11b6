"""The tranche tokens replayed from their events, and the checks on them.

- units: holder units rebuilt from Transfer events equal totalSupply and every balanceOf;
  Subscribed plus OfferingClosed's unsold units account for every mint.
- registry: investor records rebuilt from InvestorSet/Revoked/Frozen equal the registry's,
  and every unit receiver was registered, unexpired and unfrozen when it received.
- claims: per-holder entitlements replayed from Distributed, Transfer, Claimed,
  EntitlementMoved and CarryReleased equal claimableOf; claimed + claimable + released never
  exceed what each tranche was paid.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from chainabs import deal as deals
from chainabs.audit.events import DealEvents
from chainabs.audit.report import Check, first
from chainabs.entitlements import TokenBook

__all__ = ["TokenBook", "check_claims", "check_registry", "check_units", "replay_tokens"]


def replay_tokens(ev: DealEvents, upto: int | None = None) -> list[TokenBook]:
    """Every tranche token's book from its events (up to block `upto`, default all)."""
    books = {t: TokenBook() for t in ev.tokens}
    for e in ev.events:
        book = books.get(e.address)
        if book is None or (upto is not None and e.block_number > upto):
            continue
        book.apply(e.name, e.args)
    return [books[t] for t in ev.tokens]


def check_units(handle: deals.DealHandle, ev: DealEvents, books: list[TokenBook]) -> Check:
    chain, head = handle.chain, ev.head
    problems: list[str] = []
    per_tranche = []
    subscribed = [0] * len(ev.tokens)
    for e in ev.named("Subscribed", ev.deal):
        subscribed[int(e.args["tranche"])] += int(e.args["units"])
    closed = ev.named("OfferingClosed", ev.deal)
    unsold = [int(u) for u in closed[0].args["unsold"]] if closed else [0] * len(ev.tokens)
    for k, (token, book) in enumerate(zip(handle.tokens, books, strict=True)):
        supply = int(chain.call(token.functions.totalSupply(), block=head))
        wrong = [h for h in sorted(book.balances)
                 if int(chain.call(token.functions.balanceOf(to_checksum_address(h)), block=head)) != book.balances[h]]
        if supply != book.supply or sum(book.balances.values()) != supply:
            problems.append(f"tranche {k}: totalSupply {supply}, rebuilt {book.supply}")
        problems += [f"tranche {k}: balanceOf({h}) differs from its transfers" for h in first(wrong)]
        if book.minted != subscribed[k] + unsold[k]:
            problems.append(f"tranche {k}: minted {book.minted}, subscribed {subscribed[k]} + unsold {unsold[k]}")
        problems += [f"tranche {k}: {m}" for m in book.overdrafts]
        per_tranche.append({"supply": book.supply, "holders": sum(1 for u in book.balances.values() if u)})
    moves = [(e.tx_hash, e.address, e.args["from"], e.args["to"], e.args["value"])
             for e in ev.events if e.name == "Transfer" and e.address in ev.tokens]
    transfers = set(moves)
    forced = ev.named("ForcedTransfer")
    unmatched = [e.tx_hash for e in forced
                 if (e.tx_hash, e.address, e.args["from"], e.args["to"], e.args["value"]) not in transfers]
    problems += [f"ForcedTransfer in {tx} has no matching Transfer" for tx in first(unmatched)]
    return Check("units: holder units rebuilt from Transfer events equal totalSupply and balanceOf", not problems,
                 {"tranches": per_tranche, "transfers": len(moves), "forced": len(forced),
                  "subscribed": subscribed, "unsold": unsold, "differences": first(problems)})


def check_registry(handle: deals.DealHandle, ev: DealEvents) -> Check:
    chain, head = handle.chain, ev.head
    records: dict[str, list[Any]] = {}  # investor -> [eligible_until, jurisdiction, frozen]
    problems: list[str] = []
    stamps: dict[int, int] = {}
    receipts = 0
    for e in ev.events:
        if e.address == ev.registry:
            who = str(e.args.get("investor", ""))
            rec = records.setdefault(who, [0, 0, False]) if who else None
            if e.name == "InvestorSet" and rec is not None:
                rec[0], rec[1] = int(e.args["eligibleUntil"]), int(e.args["jurisdiction"])
            elif e.name == "InvestorRevoked" and rec is not None:
                rec[0], rec[1] = 0, 0  # a freeze survives a revoke
            elif e.name == "InvestorFrozen" and rec is not None:
                rec[2] = bool(e.args["frozen"])
        elif e.address in ev.tokens and e.name == "Transfer":
            receipts += 1
            to = str(e.args["to"])
            until, _, frozen = records.get(to, [0, 0, False])
            if e.block_number not in stamps:
                stamps[e.block_number] = int(chain.w3.eth.get_block(e.block_number)["timestamp"])
            if frozen or until < stamps[e.block_number]:
                problems.append(f"{to} received units in block {e.block_number} while "
                                f"{'frozen' if frozen else 'not registered or expired'}")
    for who, rec in records.items():
        onchain = list(chain.call(handle.registry.functions.investor(to_checksum_address(who)), block=head))
        if [int(onchain[0]), int(onchain[1]), bool(onchain[2])] != rec:
            problems.append(f"registry record of {who} differs from its events")
    return Check("registry: investor records rebuilt from events equal the registry's; receivers were eligible",
                 not problems, {"investors": len(records), "unit receipts": receipts,
                                "frozen now": sum(1 for r in records.values() if r[2]),
                                "differences": first(problems)})


def check_claims(handle: deals.DealHandle, ev: DealEvents, books: list[TokenBook]) -> Check:
    chain, head = handle.chain, ev.head
    problems: list[str] = []
    paid, claimed = chain.call(handle.deal.functions.cashLedger(), block=head)[:2]
    claimable_totals = []
    for k, (token, book) in enumerate(zip(handle.tokens, books, strict=True)):
        problems += [f"tranche {k}: {m}" for m in book.bad_distributions]
        owed = 0
        for holder in sorted(book.balances):
            mine = book.claimable(holder)
            owed += mine
            if int(chain.call(token.functions.claimableOf(to_checksum_address(holder)), block=head)) != mine:
                problems.append(f"tranche {k}: claimableOf({holder}) differs from the replayed {mine}")
        claimable_totals.append(owed)
        if book.claimed + owed + book.released > book.paid:
            problems.append(f"tranche {k}: claimed {book.claimed} + claimable {owed} + released {book.released} "
                            f"> paid {book.paid}")
        if (paid[k], claimed[k]) != (book.paid, book.claimed):
            problems.append(f"tranche {k}: cashLedger paid/claimed {paid[k]}/{claimed[k]} "
                            f"differ from the events' {book.paid}/{book.claimed}")
    return Check("claims: claimed + claimable never exceed what each tranche was paid", not problems,
                 {"paid": [b.paid for b in books], "claimed": [b.claimed for b in books],
                  "claimable": claimable_totals, "differences": first(problems)})
