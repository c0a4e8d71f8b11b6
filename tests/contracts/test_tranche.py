"""Tranche tokens, investor registry and exchange: every ERC-1404 restriction code, expiry,
freeze, pause, forced transfer, mint only by the deal, the face limit, DvP atomicity, and every
state-changing function refused to a stranger.

One deal is deployed once (offering open, subscriptions placed); each test runs from a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from chainabs import deal as D
from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert
from chainabs.waterfall import DealParams, PeriodReport, TrancheSpec
from support import DealEnv as Env
from support import open_offering

PARAMS = DealParams(
    tranches=(TrancheSpec("Senior A", "A", 800_000, 400), TrancheSpec("Mezzanine B", "B", 120_000, 800),
              TrancheSpec("Equity C", "C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500,
)
ROOT = b"\x02" * 32
CODES = {"SUCCESS": 0, "PAUSED": 1, "SENDER_NOT_ELIGIBLE": 2, "RECEIVER_NOT_ELIGIBLE": 3, "SENDER_FROZEN": 4,
         "RECEIVER_FROZEN": 5}


@pytest.fixture(scope="module")
def deal_env(session_chain: EmbeddedChain, core: Manifest) -> Iterator[Env]:
    """Offering open: alice 400,000 A, bob 200,000 A, carol 60,000 B. Reverted after the module."""
    base = session_chain.snapshot()
    yield open_offering(session_chain, core, params=PARAMS, outstanding=[1_000_000],
                        subscriptions=[("alice", 0, 400_000), ("bob", 0, 200_000), ("carol", 1, 60_000)])
    session_chain.revert(base)


def _units(env: Env, k: int, who: str) -> int:
    return int(env.chain.call(env.h.token(k).functions.balanceOf(who)))


def _cash(env: Env, who: str) -> int:
    return int(env.chain.call(env.h.settlement.functions.balanceOf(who)))


def _refused(thunk: Any) -> ContractRevert:
    with pytest.raises(ContractRevert) as info:
        thunk()
    return info.value


def _transfer_refused(env: Env, k: int, src: str, dst: str, code: int) -> None:
    before = (_units(env, k, src), _units(env, k, dst))
    assert D.restriction(env.h, tranche=k, sender=src, to=dst, units=1) == code
    err = _refused(lambda: D.transfer(env.h, tranche=k, sender=src, to=dst, units=1))
    assert err.name == "TransferRestricted" and err.args_ == {"code": code}
    assert (_units(env, k, src), _units(env, k, dst)) == before


# -- ERC-1404 ------------------------------------------------------------------------------------

def test_restriction_codes_and_messages(env: Env) -> None:
    token = env.h.token(0)
    for name, code in CODES.items():
        assert env.chain.call(getattr(token.functions, name)()) == code
        message = env.chain.call(token.functions.messageForTransferRestriction(code))
        assert message.startswith(name)
        assert D.RESTRICTIONS[code] == name
    assert env.chain.call(token.functions.messageForTransferRestriction(6)) == "UNKNOWN_RESTRICTION"


def test_every_restriction_code_on_transfer(closed: Env) -> None:
    env = closed
    h, alice, bob, dave = env.h, env.alice, env.bob, env.dave
    assert D.restriction(h, tranche=0, sender=alice, to=bob) == 0
    D.transfer(h, tranche=0, sender=alice, to=bob, units=1)
    assert _units(env, 0, bob) == 200_001
    # 3: receiver never registered; then revoked
    _transfer_refused(env, 0, alice, env.stranger, 3)
    D.revoke_investors(h, investors=[dave])
    _transfer_refused(env, 0, alice, dave, 3)
    # 2: sender revoked
    D.revoke_investors(h, investors=[bob])
    _transfer_refused(env, 0, bob, alice, 2)
    D.add_investors(h, investors=[bob, dave], eligible_until=env.until)
    # 4 and 5: frozen sender / receiver; frozen wins over not eligible on the sender side
    D.freeze(h, investors=[bob])
    _transfer_refused(env, 0, bob, alice, 4)
    _transfer_refused(env, 0, alice, bob, 5)
    D.revoke_investors(h, investors=[bob])  # revoking keeps the freeze
    assert list(env.chain.call(h.registry.functions.investor(bob))) == [0, 0, True]
    _transfer_refused(env, 0, bob, alice, 4)  # frozen and not registered: the freeze is reported first
    _transfer_refused(env, 0, alice, bob, 5)
    D.add_investors(h, investors=[bob], eligible_until=env.until)  # nor does adding it again lift it
    _transfer_refused(env, 0, bob, alice, 4)
    D.freeze(h, investors=[bob], frozen=False)
    D.revoke_investors(h, investors=[bob])  # unfrozen and revoked: not eligible
    _transfer_refused(env, 0, bob, alice, 2)
    D.add_investors(h, investors=[bob], eligible_until=env.until)
    D.freeze(h, investors=[dave])
    _transfer_refused(env, 0, env.stranger, dave, 2)  # sender checked before receiver
    D.freeze(h, investors=[dave], frozen=False)
    # 1: paused wins over everything
    D.set_paused(h, tranche=0, paused=True)
    _transfer_refused(env, 0, alice, bob, 1)
    _transfer_refused(env, 0, env.stranger, env.stranger, 1)
    assert D.restriction(h, tranche=1, sender=env.carol, to=alice) == 0  # pause is per tranche
    D.set_paused(h, tranche=0, paused=False)
    D.transfer(h, tranche=0, sender=bob, to=alice, units=1)
    assert (_units(env, 0, alice), _units(env, 0, bob)) == (400_000, 200_000)


def test_transfer_from_is_restricted_too(closed: Env) -> None:
    env = closed
    token = env.h.token(0)
    env.chain.send(token.functions.approve(env.bob, 1_000), sender=env.alice)
    D.freeze(env.h, investors=[env.alice])
    err = _refused(lambda: env.chain.send(token.functions.transferFrom(env.alice, env.bob, 10), sender=env.bob))
    assert err.name == "TransferRestricted" and err.args_ == {"code": 4}
    D.freeze(env.h, investors=[env.alice], frozen=False)
    err = _refused(lambda: env.chain.send(token.functions.transferFrom(env.alice, env.stranger, 10), sender=env.bob))
    assert err.args_ == {"code": 3}
    env.chain.send(token.functions.transferFrom(env.alice, env.bob, 10), sender=env.bob)
    assert _units(env, 0, env.bob) == 200_010


def test_expiry(closed: Env) -> None:
    env = closed
    h = env.h
    now = env.now()
    D.add_investors(h, investors=[env.bob], eligible_until=now + 1_000)
    assert list(env.chain.call(h.token(0).functions.eligibilityOf(env.bob))) == [now + 1_000, False]
    assert D.restriction(h, tranche=0, sender=env.bob, to=env.alice) == 0
    D.transfer(h, tranche=0, sender=env.bob, to=env.alice, units=5)
    env.chain.time_travel(now + 2_000)
    assert not D.is_eligible(h, investor=env.bob)
    assert D.is_eligible(h, investor=env.alice)
    _transfer_refused(env, 0, env.bob, env.alice, 2)
    _transfer_refused(env, 0, env.alice, env.bob, 3)
    # a renewal makes it eligible again, in every tranche at once
    D.add_investors(h, investors=[env.bob], eligible_until=env.until)
    D.transfer(h, tranche=0, sender=env.bob, to=env.alice, units=5)
    assert _units(env, 0, env.alice) == 400_010


def test_far_eligibility_dates_are_clamped_not_wrapped(closed: Env) -> None:
    env = closed
    D.add_investors(env.h, investors=[env.dave], eligible_until=2**40 - 1)
    until, frozen = env.chain.call(env.h.token(0).functions.eligibilityOf(env.dave))
    assert until == 2**32 - 1 and not frozen
    D.transfer(env.h, tranche=0, sender=env.alice, to=env.dave, units=3)
    assert _units(env, 0, env.dave) == 3


def test_pause_only_by_agent(closed: Env) -> None:
    env = closed
    token = env.h.token(0)
    for who in (env.stranger, env.roles.admin, env.alice):
        err = _refused(lambda: env.chain.send(token.functions.pause(), sender=who))
        assert err.name == "AccessControlUnauthorizedAccount"
    sent = D.set_paused(env.h, tranche=0, paused=True)
    (event,) = token.events.Paused().process_receipt(sent.receipt, errors=DISCARD)
    assert event["args"]["account"] == env.roles.agent
    assert env.chain.call(token.functions.paused())
    assert _refused(lambda: D.set_paused(env.h, tranche=0, paused=True)).name == "EnforcedPause"
    err = _refused(lambda: env.chain.send(token.functions.unpause(), sender=env.stranger))
    assert err.name == "AccessControlUnauthorizedAccount"
    sent = D.set_paused(env.h, tranche=0, paused=False)
    assert len(token.events.Unpaused().process_receipt(sent.receipt, errors=DISCARD)) == 1
    assert _refused(lambda: D.set_paused(env.h, tranche=0, paused=False)).name == "ExpectedPause"
    D.transfer(env.h, tranche=0, sender=env.alice, to=env.bob, units=1)


def test_forced_transfer(closed: Env) -> None:
    env = closed
    h = env.h
    token = h.token(0)
    now = env.now()
    # the sender frozen, the token paused: the agent still recovers the units
    D.freeze(h, investors=[env.alice])
    D.set_paused(h, tranche=0, paused=True)
    sent = D.forced_transfer(h, tranche=0, from_=env.alice, to=env.dave, units=1_000)
    (event,) = token.events.ForcedTransfer().process_receipt(sent.receipt, errors=DISCARD)
    assert dict(event["args"]) == {"from": env.alice, "to": env.dave, "value": 1_000, "agent": env.roles.agent}
    assert len(token.events.Transfer().process_receipt(sent.receipt, errors=DISCARD)) == 1
    assert (_units(env, 0, env.alice), _units(env, 0, env.dave)) == (399_000, 1_000)
    D.set_paused(h, tranche=0, paused=False)
    # an expired or revoked sender
    D.add_investors(h, investors=[env.bob], eligible_until=now + 100)
    env.chain.time_travel(now + 500)
    assert D.restriction(h, tranche=0, sender=env.bob, to=env.dave) == 2
    D.forced_transfer(h, tranche=0, from_=env.bob, to=env.dave, units=200_000)
    assert (_units(env, 0, env.bob), _units(env, 0, env.dave)) == (0, 201_000)
    # but never to an ineligible or frozen receiver, and never more than the balance
    for to, code in ((env.stranger, 3), (env.bob, 3), (env.alice, 5)):
        err = _refused(lambda: D.forced_transfer(h, tranche=0, from_=env.dave, to=to, units=1))
        assert err.name == "TransferRestricted" and err.args_ == {"code": code}
    err = _refused(lambda: D.forced_transfer(h, tranche=0, from_=env.dave, to=env.carol, units=201_001))
    assert err.name == "ERC20InsufficientBalance"
    # only the agent
    for who in (env.stranger, env.roles.admin, env.dave):
        err = _refused(lambda: D.forced_transfer(h, tranche=0, from_=env.dave, to=env.carol, units=1, sender=who))
        assert err.name == "AccessControlUnauthorizedAccount"
    assert _units(env, 0, env.dave) == 201_000


def test_mint_and_deal_hooks_only_by_deal(env: Env) -> None:
    token = env.h.token(0)
    f = token.functions
    calls = (f.mint(env.alice, 1), f.mintBatch([env.alice], [1]), f.distribute(1), f.redeem(env.alice))
    for who in (env.roles.admin, env.roles.operator, env.roles.agent, env.stranger):
        for fn in calls:
            err = _refused(lambda: env.chain.send(fn, sender=who))
            assert err.name == "OnlyDeal" and err.args_["caller"].lower() == who.lower()
    err = _refused(lambda: env.chain.send(f.mirrorEligibility([env.stranger], [2**39]), sender=env.roles.compliance))
    assert err.name == "OnlyRegistry"
    assert env.chain.call(f.totalSupply()) == 600_000


def test_subscriptions(env: Env) -> None:
    h = env.h
    f = h.deal.functions
    # beyond face refused (200,000 A units left)
    D.subscribe(h, investor=env.dave, tranche=0, units=150_000)
    err = _refused(lambda: D.subscribe(h, investor=env.dave, tranche=0, units=50_001))
    assert err.name == "ExceedsFace" and err.args_ == {"tranche": 0, "available": 50_000, "requested": 50_001}
    err = _refused(lambda: D.allocate(h, tranche=0, allocations=[(env.bob, 25_000), (env.carol, 25_001)]))
    assert err.name == "ExceedsFace"
    for payer in (env.dave, env.roles.operator):  # a refused payment leaves no approval behind
        assert env.chain.call(h.settlement.functions.allowance(payer, h.deal.address)) == 0
    assert _refused(lambda: env.chain.send(f.subscribe(3, 1), sender=env.dave)).name == "UnknownTranche"
    assert _refused(lambda: env.chain.send(f.subscribe(1, 0), sender=env.dave)).name == "ZeroUnits"
    # DvP: the investor pays the originator, atomically with the units
    before = (_cash(env, env.dave), _cash(env, env.roles.originator))
    D.subscribe(h, investor=env.dave, tranche=0, units=50_000)
    assert (_cash(env, env.dave), _cash(env, env.roles.originator)) == (before[0] - 50_000, before[1] + 50_000)
    assert _units(env, 0, env.dave) == 200_000
    assert env.chain.call(f.tranche(0))[3] == 800_000
    # an ineligible, frozen, or unfunded subscriber gets nothing and pays nothing
    err = _refused(lambda: D.subscribe(h, investor=env.stranger, tranche=1, units=10))
    assert err.args_ == {"code": 3}
    D.freeze(h, investors=[env.carol])
    assert _refused(lambda: D.subscribe(h, investor=env.carol, tranche=1, units=10)).args_ == {"code": 5}
    D.freeze(h, investors=[env.carol], frozen=False)
    D.set_paused(h, tranche=1, paused=True)
    assert _refused(lambda: D.subscribe(h, investor=env.carol, tranche=1, units=10)).args_ == {"code": 1}
    D.set_paused(h, tranche=1, paused=False)
    env.chain.send(h.settlement.functions.transfer(env.alice, _cash(env, env.carol)), sender=env.carol)
    env.chain.send(h.settlement.functions.approve(h.deal.address, 10), sender=env.carol)
    err = _refused(lambda: env.chain.send(f.subscribe(1, 10), sender=env.carol))
    assert err.name == "ERC20InsufficientBalance"
    assert _units(env, 1, env.carol) == 60_000 and _units(env, 1, env.stranger) == 0
    # after closing: no more subscriptions; unsold units went to the originator
    D.close(h)
    assert _refused(lambda: D.subscribe(h, investor=env.alice, tranche=1, units=1)).name == "WrongPhase"
    assert _units(env, 1, env.roles.originator) == 60_000
    assert _units(env, 2, env.roles.originator) == 80_000


# -- DvP trades ----------------------------------------------------------------------------------

def _snapshot_balances(env: Env, seller: str, buyer: str) -> tuple[int, ...]:
    return (_units(env, 0, seller), _units(env, 0, buyer), _cash(env, seller), _cash(env, buyer))


def test_trade_fills_atomically(closed: Env) -> None:
    env = closed
    h, seller, buyer = env.h, env.alice, env.bob
    deadline = env.now() + 3_600
    before = _snapshot_balances(env, seller, buyer)
    order = D.sign_order(h, seller=seller, tranche=0, units=10_000, price=9_900, deadline=deadline, buyer=buyer)
    sent = D.fill_order(h, order=order, buyer=buyer)
    (event,) = h.exchange.events.OrderFilled().process_receipt(sent.receipt, errors=DISCARD)
    assert event["args"]["units"] == 10_000 and event["args"]["price"] == 9_900
    assert _snapshot_balances(env, seller, buyer) == (before[0] - 10_000, before[1] + 10_000, before[2] + 9_900,
                                                      before[3] - 9_900)
    # replay refused
    err = _refused(lambda: D.fill_order(h, order=order, buyer=buyer))
    assert err.name == "InvalidAccountNonce"


def test_trade_failing_legs_leave_both_sides_unchanged(closed: Env) -> None:
    env = closed
    h, chain, seller = env.h, env.chain, env.alice
    deadline = env.now() + 3_600
    nonce0 = chain.call(h.exchange.functions.nonces(seller))

    def allowances(buyer: str) -> tuple[int, int]:
        return (chain.call(h.token(0).functions.allowance(seller, h.exchange.address)),
                chain.call(h.settlement.functions.allowance(buyer, h.exchange.address)))

    def fails(order: D.SignedOrder, buyer: str, name: str, **args: Any) -> None:
        before = _snapshot_balances(env, seller, buyer)
        err = _refused(lambda: D.fill_order(h, order=order, buyer=buyer))
        assert err.name == name, err
        if args:
            assert err.args_ == args
        assert _snapshot_balances(env, seller, buyer) == before
        assert allowances(buyer) == (0, 0)  # fill_order approved both legs, then took the approvals back
        assert chain.call(h.exchange.functions.nonces(seller)) == nonce0

    # the buyer lacks the cash (its units leg would have gone first)
    poor = D.sign_order(h, seller=seller, tranche=0, units=1_000, price=10**13, deadline=deadline, buyer=env.bob)
    fails(poor, env.bob, "ERC20InsufficientBalance")
    # the buyer is not eligible, or frozen
    anyone = D.sign_order(h, seller=seller, tranche=0, units=1_000, price=1_000, deadline=deadline)
    fails(anyone, env.stranger, "TransferRestricted", code=3)
    D.freeze(h, investors=[env.dave])
    fails(anyone, env.dave, "TransferRestricted", code=5)
    D.freeze(h, investors=[env.dave], frozen=False)
    # the seller is frozen; the tranche paused
    D.freeze(h, investors=[seller])
    fails(anyone, env.dave, "TransferRestricted", code=4)
    D.freeze(h, investors=[seller], frozen=False)
    D.set_paused(h, tranche=0, paused=True)
    fails(anyone, env.dave, "TransferRestricted", code=1)
    D.set_paused(h, tranche=0, paused=False)
    # the seller lacks the units
    big = D.sign_order(h, seller=seller, tranche=0, units=400_001, price=1, deadline=deadline)
    fails(big, env.dave, "ERC20InsufficientBalance")
    # another buyer named; a forged signature; a token that is not a tranche
    named = D.sign_order(h, seller=seller, tranche=0, units=1, price=1, deadline=deadline, buyer=env.bob)
    fails(named, env.dave, "NotOrderBuyer")
    forged = D.SignedOrder(**{**named.__dict__, "units": 2})
    fails(forged, env.bob, "InvalidSignature")
    fake = D.SignedOrder(**{**named.__dict__, "tranche": h.settlement.address})
    with pytest.raises(ContractRevert) as info:
        chain.send(h.exchange.functions.fillOrder(fake.as_tuple(), fake.signature), sender=env.bob)
    assert info.value.name == "UnknownTranche"
    # an expired order
    soon = D.sign_order(h, seller=seller, tranche=0, units=1, price=1, deadline=env.now() + 100, buyer=env.bob)
    env.chain.time_travel(env.now() + 1_000)
    fails(soon, env.bob, "OrderExpired")
    # a cancelled order
    live = D.sign_order(h, seller=seller, tranche=0, units=1, price=1, deadline=env.now() + 3_600, buyer=env.bob)
    chain.send(h.exchange.functions.cancelOrder(live.nonce), sender=seller)
    assert _refused(lambda: D.fill_order(h, order=live, buyer=env.bob)).name == "InvalidAccountNonce"


def test_trade_keeps_entitlements(closed: Env) -> None:
    env = closed
    h = env.h
    D.post_report(h, report=PeriodReport(15_000, 80_000, 0, 5_000), loan_root=ROOT, loan_count=1)
    owed = (D.claimable(h, holder=env.alice)[0], D.claimable(h, holder=env.bob)[0])
    order = D.sign_order(h, seller=env.alice, tranche=0, units=100_000, price=90_000, deadline=env.now() + 3_600)
    D.fill_order(h, order=order, buyer=env.bob)
    assert (D.claimable(h, holder=env.alice)[0], D.claimable(h, holder=env.bob)[0]) == owed


# -- a stranger can change nothing ---------------------------------------------------------------

ANYONE = {
    # ERC-20 (restricted by eligibility, tested above) and OpenZeppelin's own-role renounce
    "TrancheToken": {"transfer", "transferFrom", "approve", "renounceRole"},
    # subscribe needs eligibility; claim pays only the caller (claimFor and claimTranches for
    # another holder need PAYING_AGENT: the dummy holder is alice, refused to the stranger)
    "Deal": {"subscribe", "claim", "renounceRole"},
    # sync only copies words already in the registry
    "InvestorRegistry": {"sync", "renounceRole"},
    # a fill needs the seller's signature; a cancel burns only the caller's own nonce
    "TrancheExchange": {"fillOrder", "cancelOrder"},
}
# acceptDefaultAdminTransfer: only the pending admin (AccessControlDefaultAdminRules)
ACCESS_ERRORS = {"AccessControlUnauthorizedAccount", "AccessControlInvalidDefaultAdmin", "OnlyDeal", "OnlyRegistry"}
ADMIN_RULES = {"beginDefaultAdminTransfer", "cancelDefaultAdminTransfer", "acceptDefaultAdminTransfer",
               "changeDefaultAdminDelay", "rollbackDefaultAdminDelay", "grantRole", "revokeRole"}


def _dummy(param: dict[str, Any], env: Env) -> Any:
    kind = param["type"]
    if kind.endswith("[]"):
        return [_dummy({**param, "type": kind[:-2]}, env)]
    if kind == "tuple":
        return tuple(_dummy(c, env) for c in param["components"])
    if kind == "address":
        return env.alice
    if kind == "bool":
        return True
    if kind.startswith(("uint", "int")):
        return 1
    if kind == "bytes32":
        return b"\x11" * 32
    if kind == "bytes":
        return b"\x00" * 65
    if kind == "string":
        return "x"
    raise AssertionError(f"no dummy for {kind}")


def _mutating(name: str) -> list[dict[str, Any]]:
    return [item for item in load_artifact(name)["abi"]
            if item["type"] == "function" and item["stateMutability"] in ("nonpayable", "payable")]


@pytest.mark.parametrize("phase", ["open", "closed"])
def test_every_mutating_function_refused_to_a_stranger(env: Env, phase: str) -> None:
    h = env.h
    if phase == "closed":
        D.close(h)
        D.post_report(h, report=PeriodReport(15_000, 80_000, 0, 5_000), loan_root=ROOT, loan_count=1)
    contracts = {"Deal": h.deal, "InvestorRegistry": h.registry, "TrancheExchange": h.exchange}
    contracts.update({f"TrancheToken:{k}": t for k, t in enumerate(h.tokens)})
    refused: set[str] = set()
    for label, contract in contracts.items():
        artifact = label.split(":")[0]
        for item in _mutating(artifact):
            if item["name"] in ANYONE[artifact]:
                continue
            args = [_dummy(p, env) for p in item["inputs"]]
            fn = contract.get_function_by_signature(
                f"{item['name']}({','.join(_sig(p) for p in item['inputs'])})")(*args)
            err = _refused(lambda: env.chain.send(fn, sender=env.stranger))
            assert err.name in ACCESS_ERRORS, (label, item["name"], err)
            refused.add(f"{artifact}.{item['name']}")
    admin = {f"{c}.{f}" for c in ("Deal", "InvestorRegistry", "TrancheToken") for f in ADMIN_RULES}
    assert refused == admin | {
        "Deal.open", "Deal.allocate", "Deal.close", "Deal.postReport", "Deal.setFeeRecipient", "Deal.sweep",
        "Deal.claimFor", "Deal.claimTranches",
        "InvestorRegistry.setInvestors", "InvestorRegistry.revokeInvestors", "InvestorRegistry.setFrozen",
        "InvestorRegistry.attachToken", "InvestorRegistry.detachToken",
        "TrancheToken.forcedTransfer", "TrancheToken.moveEntitlement", "TrancheToken.releaseCarry", "TrancheToken.pause", "TrancheToken.unpause", "TrancheToken.mint",
        "TrancheToken.mintBatch", "TrancheToken.mintUnsold", "TrancheToken.distribute", "TrancheToken.redeem",
        "TrancheToken.mirrorEligibility",
    }, "the ABI changed: classify the new function (stranger-refused or ANYONE)"


def _sig(param: dict[str, Any]) -> str:
    kind = param["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_sig(c) for c in param['components'])}){kind[5:]}"
    return kind


def test_functions_open_to_anyone_change_only_the_callers_own_state(closed: Env) -> None:
    env = closed
    h, chain, s = env.h, env.chain, env.stranger
    D.post_report(h, report=PeriodReport(15_000, 80_000, 0, 5_000), loan_root=ROOT, loan_count=1)
    token = h.token(0)
    # transfers and subscriptions: a stranger is not eligible
    assert _refused(lambda: chain.send(token.functions.transfer(env.alice, 0), sender=s)).args_ == {"code": 2}
    chain.send(token.functions.approve(s, 10**6), sender=env.alice)  # alice lets the stranger pull
    err = _refused(lambda: chain.send(token.functions.transferFrom(env.alice, s, 1), sender=s))
    assert err.args_ == {"code": 3}
    chain.send(token.functions.transferFrom(env.alice, env.bob, 1), sender=s)  # her allowance, eligible sides
    assert _units(env, 0, env.bob) == 200_001
    chain.send(h.settlement.functions.approve(h.deal.address, 10**6), sender=s)
    assert _refused(lambda: chain.send(h.deal.functions.subscribe(0, 1), sender=s)).name == "WrongPhase"
    # claims pay holders only, and only the holder (or a paying agent) can trigger one
    assert _refused(lambda: chain.send(h.deal.functions.claim(), sender=s)).name == "NothingToClaim"
    owed = sum(D.claimable(h, holder=env.bob))
    err = _refused(lambda: chain.send(h.deal.functions.claimTranches(env.bob, 7), sender=s))
    assert err.name == "AccessControlUnauthorizedAccount"
    assert sum(D.claimable(h, holder=env.bob)) == owed > 0
    # sync copies the registry's own words: a revoked investor stays revoked
    D.revoke_investors(h, investors=[env.carol])
    chain.send(h.registry.functions.sync([env.carol, s]), sender=s)
    assert D.restriction(h, tranche=1, sender=env.carol, to=env.alice) == 2
    assert D.restriction(h, tranche=1, sender=env.alice, to=s) == 3
    # renouncing a role one does not hold changes nothing; renouncing for another is refused
    role = chain.call(h.deal.functions.SERVICER_ROLE())
    chain.send(h.deal.functions.renounceRole(role, s), sender=s)
    err = _refused(lambda: chain.send(h.deal.functions.renounceRole(role, env.roles.servicer), sender=s))
    assert err.name == "AccessControlBadConfirmation"
    assert chain.call(h.deal.functions.hasRole(role, env.roles.servicer))
    # cancelling burns only the stranger's own nonce
    chain.send(h.exchange.functions.cancelOrder(0), sender=s)
    assert chain.call(h.exchange.functions.nonces(s)) == 1
    assert chain.call(h.exchange.functions.nonces(env.alice)) == 0


def test_registry_batches_emit_an_event_per_change_and_mirror_every_tranche(env: Env) -> None:
    h, chain = env.h, env.chain
    reg = h.registry
    new = [Account.create().address for _ in range(3)]
    sent = D.add_investors(h, investors=new, eligible_until=[env.until, env.until - 1, 5], jurisdiction=[276, 250, 840])
    events = reg.events.InvestorSet().process_receipt(sent[0].receipt, errors=DISCARD)
    assert [(e["args"]["investor"], e["args"]["eligibleUntil"], e["args"]["jurisdiction"]) for e in events] == [
        (new[0], env.until, 276), (new[1], env.until - 1, 250), (new[2], 5, 840)]
    assert [D.is_eligible(h, investor=w) for w in new] == [True, True, False]
    for token in h.tokens:
        assert list(chain.call(token.functions.eligibilityOf(new[1]))) == [env.until - 1, False]
    sent = D.freeze(h, investors=new[:2])
    events = reg.events.InvestorFrozen().process_receipt(sent.receipt, errors=DISCARD)
    assert [(e["args"]["investor"], e["args"]["frozen"]) for e in events] == [(new[0], True), (new[1], True)]
    D.add_investors(h, investors=[new[0]], eligible_until=env.until)  # an update keeps the freeze
    assert list(chain.call(reg.functions.investor(new[0]))) == [env.until, 840, True]
    assert all(chain.call(t.functions.eligibilityOf(new[0]))[1] for t in h.tokens)
    sent = D.revoke_investors(h, investors=new[:1])
    assert len(reg.events.InvestorRevoked().process_receipt(sent.receipt, errors=DISCARD)) == 1
    assert list(chain.call(h.token(2).functions.eligibilityOf(new[0]))) == [0, True]  # still frozen
    err = _refused(lambda: D.add_investors(h, investors=[D.ZERO_ADDRESS], eligible_until=env.until))
    assert err.name == "ZeroInvestor"
    err = _refused(lambda: chain.send(reg.functions.setInvestors(new, [1], [1, 2, 3]), sender=env.roles.compliance))
    assert err.name == "LengthMismatch"
    # tokens: attached (by compliance) once each, only tokens that mirror this registry
    for token in h.tokens:
        err = _refused(lambda: chain.send(reg.functions.attachToken(token.address), sender=env.roles.compliance))
        assert err.name == "CannotAttach"
    assert chain.call(reg.functions.tokens()) == [t.address for t in h.tokens]
