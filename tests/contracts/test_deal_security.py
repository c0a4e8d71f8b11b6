"""Issue 14, the deal side: one test per finding of the outside review (3, 4, 6, 7, 8, 11 and the
"also" list), each written so that it fails on 21951ec's contracts and passes now. The roles
(finding 4) are checked statement by statement in test_access_matrix.py; this module shows the
review's proof of concept failing end to end.

One deal is deployed per module (offering open, subscriptions placed, as in test_deal.py);
every test runs from a snapshot of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3.logs import DISCARD

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.dealfile import parse_deal_file
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, DealError
from chainabs.waterfall import CREDIT_CAPACITY, LIFETIME_CASH_MULTIPLE, DealParams, PeriodReport, TrancheSpec
from support import DealEnv as Env
from support import open_offering

PARAMS = DealParams(
    tranches=(TrancheSpec("Senior A", "A", 800_000, 400), TrancheSpec("Mezzanine B", "B", 120_000, 800),
              TrancheSpec("Equity C", "C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500,
)
PERIOD = PeriodReport(15_000, 80_000, 0, 5_000)
ROOT = b"\x03" * 32


@pytest.fixture(scope="module")
def deal_env(session_chain: EmbeddedChain, core: Manifest) -> Iterator[Env]:
    """Offering open: alice 500,000 A, bob 300,000 A, carol 120,000 B; C unsold."""
    base = session_chain.snapshot()
    yield open_offering(session_chain, core, params=PARAMS, outstanding=[1_000_000],
                        subscriptions=[("alice", 0, 500_000), ("bob", 0, 300_000), ("carol", 1, 120_000)])
    session_chain.revert(base)


def _refused(thunk: Any) -> ContractRevert:
    with pytest.raises(ContractRevert) as info:
        thunk()
    return info.value


def _cash(env: Env, who: str) -> int:
    return int(env.chain.call(env.h.settlement.functions.balanceOf(who)))


def _claim(env: Env, who: str, mask: int = 7, sender: str | None = None) -> Any:
    return env.chain.send(env.h.deal.functions.claimTranches(who, mask), sender=sender or who)


def _period(env: Env, report: PeriodReport = PERIOD) -> None:
    D.post_report(env.h, report=report, loan_root=ROOT, loan_count=1)


# -- finding 3: claims by frozen, revoked or expired holders; claimFor; forced transfers ----------

def test_3_frozen_revoked_or_expired_holders_cannot_claim_and_their_cash_is_held(closed: Env) -> None:
    """On 21951ec every claim below was paid. Now each is refused by name, the cash stays owed
    (and keeps accruing), and it is paid in full once the holder is eligible again."""
    env = closed
    h = env.h
    _period(env)
    owed = {w: D.claimable(h, holder=w) for w in (env.alice, env.bob, env.carol)}
    assert all(sum(o) > 0 for o in owed.values())

    D.freeze(h, investors=[env.alice])
    err = _refused(lambda: _claim(env, env.alice))
    assert (err.name, err.args_) == ("ClaimRestricted", {"holder": env.alice.lower(), "code": 4})
    err = _refused(lambda: _claim(env, env.alice, sender=env.roles.operator))  # nor for it, by the paying agent
    assert err.name == "ClaimRestricted"
    D.revoke_investors(h, investors=[env.bob])
    assert _refused(lambda: _claim(env, env.bob)).args_ == {"holder": env.bob.lower(), "code": 2}
    D.add_investors(h, investors=[env.carol], eligible_until=env.now() + 100)
    env.chain.time_travel(env.now() + 1_000)
    assert _refused(lambda: _claim(env, env.carol, mask=2)).args_ == {"holder": env.carol.lower(), "code": 2}

    _period(env, PeriodReport(9_000, 10_000, 0, 0))  # a frozen holder keeps earning: its cash is held
    grown = D.claimable(h, holder=env.alice)
    assert grown[0] > owed[env.alice][0]
    D.freeze(h, investors=[env.alice], frozen=False)
    D.add_investors(h, investors=[env.bob, env.carol], eligible_until=env.until)
    before = _cash(env, env.alice)
    assert D.claim(h, holder=env.alice) == sum(grown) == _cash(env, env.alice) - before
    assert D.claim(h, holder=env.bob) > 0 and D.claim(h, holder=env.carol) > 0


def test_3_only_the_holder_or_a_paying_agent_can_trigger_a_claim(closed: Env) -> None:
    """On 21951ec anyone could claim for anyone."""
    env = closed
    _period(env)
    owed = sum(D.claimable(env.h, holder=env.alice))
    for who in (env.stranger, env.bob, env.roles.admin, env.roles.servicer):
        for fn in (env.h.deal.functions.claimFor(env.alice), env.h.deal.functions.claimTranches(env.alice, 1)):
            assert _refused(lambda: env.chain.send(fn, sender=who)).name == "AccessControlUnauthorizedAccount"
    before = _cash(env, env.alice)
    env.chain.send(env.h.deal.functions.claimFor(env.alice), sender=env.roles.operator)  # the paying agent
    assert _cash(env, env.alice) - before == owed and _cash(env, env.roles.operator) > 0


def test_3_a_forced_transfer_moves_the_unclaimed_cash_with_the_units(closed: Env) -> None:
    """Wallet recovery: on 21951ec the cash accrued before the agent moved the units stayed
    payable to the lost wallet only. Now it moves with the units, pro rata, with an event."""
    env = closed
    h, chain = env.h, env.chain
    _period(env)
    token = h.token(0)
    ent = int(chain.call(token.functions.entitlementOf(env.alice)))
    owed = D.claimable(h, holder=env.alice)[0]
    assert owed > 0
    # a partial move (court order for a fifth of the units) carries a fifth of the cash
    sent = D.forced_transfer(h, tranche=0, from_=env.alice, to=env.dave, units=100_000)
    (event,) = token.events.EntitlementMoved().process_receipt(sent.receipt, errors=DISCARD)
    assert dict(event["args"]) == {"from": env.alice, "to": env.dave, "amount": ent // 5}
    # the recovery of the lost wallet: everything left goes, the whole entitlement with it
    D.freeze(h, investors=[env.alice])
    D.forced_transfer(h, tranche=0, from_=env.alice, to=env.dave, units=400_000)
    assert chain.call(token.functions.entitlementOf(env.alice)) == 0
    assert chain.call(token.functions.entitlementOf(env.dave)) == ent
    before = _cash(env, env.dave)
    assert D.claim(h, holder=env.dave) == owed == _cash(env, env.dave) - before
    D.freeze(h, investors=[env.alice], frozen=False)
    assert D.claim(h, holder=env.alice) == 0  # nothing left behind
    ledger = D.cash_ledger(h)
    assert all(p == c + o + d for p, c, o, d in zip(ledger.paid, ledger.claimed, ledger.owed, ledger.dust, strict=True))


# -- finding 4: the deal's admin cannot take the holders' cash -----------------------------------

def test_4_the_deal_admin_cannot_force_units_to_itself_and_every_role_change_is_announced(closed: Env) -> None:
    """The review's proof of concept: the deal admin granted itself AGENT on a tranche token,
    forced units to its own wallet and, as SERVICER, posted a report paying the reserve out.
    Now the deal's admin seat (a timelock) holds no role on the tokens and cannot grant one,
    and granting itself SERVICER on the deal is public for two days before it can run."""
    env = closed
    h, chain = env.h, env.chain
    agent = chain.call(h.token(0).functions.AGENT_ROLE())
    steal = h.token(0).functions.grantRole(agent, env.roles.admin)
    assert _refused(lambda: chain.send(steal, sender=env.roles.admin)).name == "AccessControlUnauthorizedAccount"
    call = D.admin_call(h, seat="deal", call=steal)
    call.schedule()
    chain.time_travel(call.ready_at() + 10)
    err = _refused(call.execute)
    assert err.name == "AccessControlUnauthorizedAccount"
    assert err.args_["account"] == h.timelocks["deal"].address.lower()
    servicer = chain.call(h.deal.functions.SERVICER_ROLE())
    grant = D.admin_call(h, seat="deal", call=h.deal.functions.grantRole(servicer, env.roles.admin))
    sent = grant.schedule()
    assert len(h.timelocks["deal"].events.CallScheduled().process_receipt(sent.receipt, errors=DISCARD)) == 1
    assert grant.ready_at() >= env.now() + D.ADMIN_DELAY - 60
    assert not chain.call(h.deal.functions.hasRole(servicer, env.roles.admin))


# -- finding 6: faces and lifetime cash against the credit capacity -------------------------------

LARGEST = CREDIT_CAPACITY // LIFETIME_CASH_MULTIPLE  # faces + initial reserve of the largest deal


def _params(total: int, reserve: int = 0) -> DealParams:
    senior = total * 9 // 10
    return DealParams(tranches=(TrancheSpec("A", "A", senior, 400), TrancheSpec("C", "C", total - senior, 0)),
                      servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=reserve, default_trigger_bps=500)


def test_6_deal_parameters_beyond_the_credit_capacity_are_refused_before_the_chain() -> None:
    """On 21951ec faces up to 2**96 were accepted, but a tranche can be credited only ~2**94 in
    its life: a large deal's reports were refused later and its cash stayed with the servicer."""
    _params(LARGEST - 5, reserve=5).validate()
    with pytest.raises(DealError) as info:
        _params(LARGEST - 5, reserve=6).validate()
    assert info.value.field == "tranches" and "capacity" in str(info.value)
    with pytest.raises(DealError) as info:
        _params(2**97).validate()
    assert info.value.field == "tranches[0].face"


def test_6_a_deal_file_too_large_for_the_capacity_names_the_field() -> None:
    """`deal create` resolves the deal file against the pool balance: refused there, by field."""
    dealfile = parse_deal_file('[pool]\nname = "big"\ncurrency = "USD"\ndecimals = 18\ncutoff_date = 2025-01-31\n\n'
                               '[deal]\nservicer_fee_bps = 100\nreserve_target_bps = 100\ninitial_reserve = "0"\n'
                               'default_trigger_bps = 500\n\n'
                               '[[tranches]]\nname = "A"\nsymbol = "A"\nface = "90%"\ncoupon_bps = 400\n\n'
                               '[[tranches]]\nname = "C"\nsymbol = "C"\nface = "rest"\ncoupon_bps = 0\n')
    dealfile.deal_params(LARGEST)
    with pytest.raises(DealError) as info:
        dealfile.deal_params(LARGEST + 1)
    assert info.value.field == "tranches"


def test_6_the_constructor_refuses_a_pool_beyond_the_capacity_and_the_largest_deal_runs(chain: EmbeddedChain,
                                                                                       core: Manifest) -> None:
    """The constructor refuses by name what Python refuses; the largest deal it accepts takes
    its whole principal and fifteen times its pool in interest without a refused report."""
    admin = chain.accounts[0]
    roles = D.DealRoles.single(admin)
    too_big = D.deploy_filled_pool(chain, manifest=core, outstanding=[LARGEST + 1])
    timelock = D.deploy_timelock(chain, proposer=admin)
    reg = chain.deploy("InvestorRegistry", timelock.address, D.ADMIN_DELAY, admin, sender=admin)
    p = _params(LARGEST + 1)
    args = (core.contracts["SettlementToken"], too_big.address, reg.address,
            [(t.name, t.symbol, t.face, t.coupon_bps) for t in p.tranches], (100, 100, 0, 500),
            (timelock.address, timelock.address, admin, admin, admin, admin, admin), D.ADMIN_DELAY)
    err = _refused(lambda: chain.deploy("Deal", *args, sender=admin))
    assert (err.name, err.args_) == ("CreditCapacityExceeded", {"lifetimeCash": (LARGEST + 1) * 16,
                                                               "capacity": CREDIT_CAPACITY})
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[LARGEST])
    h = D.deploy_deal(chain, manifest=core, pool=pool.address, params=_params(LARGEST), roles=roles)
    chain.send(h.settlement.functions.mint(admin, 2**100), sender=core.deployer)
    D.add_investors(h, investors=[admin], eligible_until=2**39)
    D.open_offering(h)
    D.close(h)
    for _ in range(3):  # 15 x the pool in interest, then all the principal: every report runs
        D.post_report(h, report=PeriodReport(LARGEST * 5, 0, 0, 0), loan_root=ROOT, loan_count=1)
    last = D.post_report(h, report=PeriodReport(0, LARGEST, 0, 0), loan_root=ROOT, loan_count=1)
    assert last.pool_balance_end == 0
    assert D.claim(h, holder=admin) > LARGEST * 15


# -- finding 7: received amounts checked by balance difference ------------------------------------

def test_7_a_fee_on_transfer_settlement_token_is_refused(chain: EmbeddedChain, core: Manifest) -> None:
    """On 21951ec the deal counted what it asked for, not what arrived: with a token that takes
    a fee on transfer it credited cash it did not hold, and the last claim reverted."""
    a = chain.accounts
    roles = D.DealRoles.single(a[0])
    fot = chain.deploy("FeeOnTransferToken", 6, sender=a[0])
    for reserve, step in ((10_000, "close"), (0, "report")):
        snap = chain.snapshot()
        pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000])
        params = DealParams(tranches=PARAMS.tranches, servicer_fee_bps=100, reserve_target_bps=100,
                            initial_reserve=reserve, default_trigger_bps=500)
        h = D.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=roles, settlement=fot.address)
        chain.send(fot.functions.mint(a[0], 10**12), sender=a[0])
        D.add_investors(h, investors=[a[0]], eligible_until=2**39)
        D.open_offering(h)
        if step == "close":
            err = _refused(lambda: D.close(h))
            assert (err.name, err.args_) == ("SettlementAmountMismatch", {"expected": 10_000, "received": 9_900})
            assert D.phase(h) == "open"
        else:
            D.close(h)
            err = _refused(lambda: _period_of(h, PERIOD))
            assert (err.name, err.args_) == ("SettlementAmountMismatch", {"expected": 95_000, "received": 94_050})
            assert D.read_state(h).period == 0
        chain.revert(snap)


def _period_of(h: D.DealHandle, report: PeriodReport) -> None:
    D.post_report(h, report=report, loan_root=ROOT, loan_count=1)


# -- finding 8: one pool, one deal -------------------------------------------------------------------

def test_8_a_pool_backs_one_deal(chain: EmbeddedChain, core: Manifest) -> None:
    """On 21951ec any number of deals could be deployed and opened over one pool."""
    admin = chain.accounts[0]
    roles = D.DealRoles.single(admin)
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000])
    first = D.deploy_deal(chain, manifest=core, pool=pool.address, params=PARAMS, roles=roles, attach=False)
    second = D.deploy_deal(chain, manifest=core, pool=pool.address, params=PARAMS, roles=roles, attach=False)
    # not pledged yet: neither opens
    err = _refused(lambda: D.open_offering(first))
    assert (err.name, err.args_) == ("PoolNotPledged", {"pool": pool.address.lower(), "pledgedTo": D.ZERO_ADDRESS})
    # a pledge needs the pool's originator, a filled pool, and a deal over this pool
    err = _refused(lambda: D.pledge_pool(first, sender=chain.accounts[5]))
    assert err.name == "AccessControlUnauthorizedAccount"
    err = _refused(lambda: chain.send(pool.functions.pledge(first.registry.address), sender=admin))
    assert err.name == "CannotPledge"  # not a deal at all
    other = D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000])
    err = _refused(lambda: chain.send(other.functions.pledge(first.deal.address), sender=admin))
    assert err.name == "CannotPledge"
    sent = D.pledge_pool(first)
    assert sent is not None
    (event,) = pool.events.Pledged().process_receipt(sent.receipt, errors=DISCARD)
    assert event["args"]["deal"] == first.deal.address
    assert D.pledge_pool(first) is None  # idempotent
    # the second deal can neither take the pool nor open
    err = _refused(lambda: D.pledge_pool(second))
    assert (err.name, err.args_) == ("AlreadyPledged", {"deal": first.deal.address.lower()})
    err = _refused(lambda: D.open_offering(second))
    assert err.args_ == {"pool": pool.address.lower(), "pledgedTo": first.deal.address.lower()}
    D.open_offering(first)
    # and no third deal is even deployed over it
    err = _refused(lambda: D.deploy_deal(chain, manifest=core, pool=pool.address, params=PARAMS, roles=roles))
    assert (err.name, err.args_) == ("PoolAlreadyPledged", {"pool": pool.address.lower(),
                                                            "deal": first.deal.address.lower()})


# -- finding 11: orders carry the last period they are valid for ----------------------------------

def test_11_an_order_cannot_be_filled_after_its_last_period(closed: Env) -> None:
    """On 21951ec a signed order stayed fillable across period reports, so either side could
    race a report (which changes what a unit is worth) with a price agreed before it."""
    env = closed
    h = env.h
    deadline = env.now() + 30 * 86_400
    now_order = D.sign_order(h, seller=env.alice, tranche=0, units=1_000, price=990, deadline=deadline,
                             buyer=env.bob)
    assert now_order.last_period == 0  # by default: until the next report
    ahead = [D.sign_order(h, seller=env.alice, tranche=0, units=1_000, price=990, deadline=deadline,
                          buyer=env.bob, nonce=key << 64, last_period=1) for key in (1, 2)]
    _period(env)
    err = _refused(lambda: D.fill_order(h, order=now_order, buyer=env.bob))
    assert (err.name, err.args_) == ("OrderPeriodPassed", {"lastPeriod": 0, "current": 1})
    D.fill_order(h, order=ahead[0], buyer=env.bob)  # valid through period 1
    _period(env, PeriodReport(1_000, 0, 0, 0))
    err = _refused(lambda: D.fill_order(h, order=ahead[1], buyer=env.bob))
    assert (err.name, err.args_) == ("OrderPeriodPassed", {"lastPeriod": 1, "current": 2})
    # the period is part of what the seller signed: raising it breaks the signature
    forged = D.SignedOrder(**{**now_order.__dict__, "last_period": 5})
    assert _refused(lambda: D.fill_order(h, order=forged, buyer=env.bob)).name == "InvalidSignature"


# -- also: the freeze survives revoke and re-add; closing cannot be blocked; the sweep -------------

def test_also_a_freeze_survives_revoke_and_re_add(env: Env) -> None:
    """On 21951ec revoking cleared the frozen bit, so revoke + add unfroze a wallet."""
    h, chain = env.h, env.chain
    D.freeze(h, investors=[env.bob])
    D.revoke_investors(h, investors=[env.bob])
    D.add_investors(h, investors=[env.bob], eligible_until=env.until)
    assert list(chain.call(h.registry.functions.investor(env.bob))) == [env.until, 840, True]
    assert not D.is_eligible(h, investor=env.bob)
    for token in h.tokens:
        assert list(chain.call(token.functions.eligibilityOf(env.bob))) == [env.until, True]
    assert D.restriction(h, tranche=0, sender=env.bob, to=env.alice) == 4
    D.freeze(h, investors=[env.bob], frozen=False)
    assert D.restriction(h, tranche=0, sender=env.bob, to=env.alice) == 0


def test_also_close_cannot_be_blocked_by_a_pause_or_the_originators_status(env: Env) -> None:
    """On 21951ec a paused tranche or a frozen, revoked or expired originator made close()
    revert (TransferRestricted), and with it every later report."""
    h, chain, originator = env.h, env.chain, env.roles.originator
    for k in range(len(h.tokens)):
        D.set_paused(h, tranche=k, paused=True)
    D.freeze(h, investors=[originator])
    D.revoke_investors(h, investors=[originator])
    sent = D.close(h)
    assert D.phase(h) == "closed" and sent.receipt["status"] == 1
    assert [chain.call(t.functions.balanceOf(originator)) for t in h.tokens] == [0, 0, 80_000]
    for k in range(len(h.tokens)):
        D.set_paused(h, tranche=k, paused=False)
    _period(env)  # reports run; the frozen originator's residual cash is held for it
    owed = D.claimable(h, holder=originator)[2]
    assert owed > 0
    assert _refused(lambda: _claim(env, originator, mask=4)).name == "ClaimRestricted"
    D.freeze(h, investors=[originator], frozen=False)
    D.add_investors(h, investors=[originator], eligible_until=env.until)
    assert D.claim(h, holder=originator) == owed


def test_also_the_admin_sweeps_dust_and_final_carry_only_after_the_deal_ends(closed: Env) -> None:
    """On 21951ec rounding dust and each tranche's final carry stayed in the deal for good. Now
    the deal's admin, through its timelock, sweeps what no holder is owed once the pool is paid
    down; that ends the deal; holders still claim everything they are owed afterwards."""
    env = closed
    h, chain = env.h, env.chain
    to = env.roles.fee_recipient
    early = D.sweep(h, to=to)
    early.schedule()
    chain.time_travel(early.ready_at() + 10)
    assert (_refused(early.execute).name, D.phase(h)) == ("DealNotEnded", "closed")
    assert _refused(lambda: chain.send(h.deal.functions.sweep(to), sender=env.roles.admin)).name == \
        "AccessControlUnauthorizedAccount"  # the admin's key itself cannot: only its timelock, after the delay
    D.transfer(h, tranche=0, sender=env.alice, to=env.dave, units=77_777)  # odd holdings: rounding
    _period(env, PeriodReport(12_345, 400_001, 7, 3_333))
    _period(env, PeriodReport(4_321, 596_666, 0, 0))  # the pool is paid down
    assert D.read_state(h).pool_balance == 0
    ledger = D.cash_ledger(h)
    held = _cash(env, h.deal.address)
    dust = sum(ledger.dust)
    assert dust > 0 and held == D.read_state(h).reserve + sum(ledger.owed) + dust
    chain.send(h.settlement.functions.transfer(h.deal.address, 5), sender=env.bob)  # a stray transfer
    sweep = D.sweep(h, to=to, salt=b"\x01" * 32)
    sweep.schedule()
    chain.time_travel(sweep.ready_at() + 10)
    before = _cash(env, to)
    sent = sweep.execute()
    (ended,) = h.deal.events.DealEnded().process_receipt(sent.receipt, errors=DISCARD)
    (swept,) = h.deal.events.Swept().process_receipt(sent.receipt, errors=DISCARD)
    assert ended["args"]["periods"] == 2
    assert dict(swept["args"]) == {"to": to, "amount": dust + 5} and _cash(env, to) - before == dust + 5
    assert D.phase(h) == "ended" and chain.call(h.deal.functions.swept()) == dust + 5
    assert _refused(lambda: _period(env, PeriodReport(0, 0, 0, 0))).name == "WrongPhase"
    for who in (env.alice, env.bob, env.carol, env.dave, env.roles.originator):
        D.claim(h, holder=who)  # every holder is still paid in full
    assert all(c == 0 for w in (env.alice, env.bob, env.dave) for c in D.claimable(h, holder=w))
    assert _cash(env, h.deal.address) == sum(D.cash_ledger(h).owed)  # only holders' sub-unit fractions remain
