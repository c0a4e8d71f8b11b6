"""Issue 14, the deal side: one test per finding of the outside review (3, 4, 6, 7, 8, 11 and the
"also" list), each written so that it fails on 21951ec's contracts and passes now. The roles
(finding 4) are checked statement by statement in test_access_matrix.py; this module shows the
review's proof of concept failing end to end.

One deal is deployed per module (offering open, subscriptions placed, as in test_deal.py);
every test runs from a snapshot of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from web3.logs import DISCARD

from chainabs import deal as D
from chainabs.audit import chain_periods, read_deal_events, verify_deal
from chainabs.chain import EmbeddedChain
from chainabs.cli import main
from chainabs.context import open_context
from chainabs.dealfile import parse_deal_file
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, DealError
from chainabs.service import open_deal
from chainabs.tapegen import write_tape
from chainabs.waterfall import CREDIT_CAPACITY, LIFETIME_CASH_MULTIPLE, DealParams, PeriodReport, TrancheSpec
from support import DealEnv as Env
from support import demo_deal, open_offering

REPO = Path(__file__).resolve().parents[2]

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


def test_also_the_admin_sweeps_strays_any_time_and_the_final_carry_once_the_pool_is_paid_down(closed: Env) -> None:
    """On 21951ec rounding dust and each tranche's final carry stayed in the deal for good. Now
    the deal's admin, through its timelock (its own key is refused), sweeps what nobody is owed:
    a stray transfer at any time; once the pool is paid down, each tranche's carry too
    (released: a later credit starts from none). Holders still claim everything afterwards."""
    env = closed
    h, chain = env.h, env.chain
    to = env.roles.fee_recipient
    assert _refused(lambda: chain.send(h.deal.functions.sweep(to), sender=env.roles.admin)).name == \
        "AccessControlUnauthorizedAccount"  # the admin's key itself cannot: only its timelock, after the delay
    D.transfer(h, tranche=0, sender=env.alice, to=env.dave, units=77_777)  # odd holdings: rounding
    _period(env, PeriodReport(12_345, 400_001, 7, 3_333))
    chain.send(h.settlement.functions.transfer(h.deal.address, 5), sender=env.bob)  # a stray transfer
    ledger = D.cash_ledger(h)
    assert sum(ledger.dust) > 0
    assert _sweep(env, to, 1) == 5  # the pool is not paid down: the carry stays for the next credit
    assert D.cash_ledger(h).dust == ledger.dust
    _period(env, PeriodReport(4_321, 596_666, 0, 0))  # the pool is paid down
    assert D.read_state(h).pool_balance == 0
    ledger = D.cash_ledger(h)
    dust = sum(ledger.dust)
    assert dust > 0 and _cash(env, h.deal.address) == D.read_state(h).reserve + sum(ledger.owed) + dust
    assert _sweep(env, to, 2) == dust
    assert D.cash_ledger(h).dust == (0, 0, 0) and chain.call(h.deal.functions.swept()) == dust + 5
    assert [chain.call(t.functions.releasedTotal()) for t in h.tokens] == list(ledger.dust)
    assert D.phase(h) == "closed"  # nothing ended
    for who in (env.alice, env.bob, env.carol, env.dave, env.roles.originator):
        D.claim(h, holder=who)  # every holder is still paid in full
    assert all(c == 0 for w in (env.alice, env.bob, env.dave) for c in D.claimable(h, holder=w))
    assert _cash(env, h.deal.address) == D.read_state(h).reserve + sum(D.cash_ledger(h).owed)


def _sweep(env: Env, to: str, salt: int) -> int:
    """The deal admin's sweep to `to`, through its timelock; the amount its Swept event names
    (checked against what `to` received)."""
    call = D.sweep(env.h, to=to, salt=salt.to_bytes(32, "big"))
    call.schedule()
    env.chain.time_travel(call.ready_at() + 10)
    before = _cash(env, to)
    (swept,) = env.h.deal.events.Swept().process_receipt(call.execute().receipt, errors=DISCARD)
    assert swept["args"]["to"] == to and _cash(env, to) - before == swept["args"]["amount"]
    return int(swept["args"]["amount"])


def _ledger_holds(env: Env) -> None:
    """Per tranche paid = claimed + owed + dust + released, and the deal holds reserve + owed +
    dust (no stray left)."""
    ledger = D.cash_ledger(env.h)
    released = [env.chain.call(t.functions.releasedTotal()) for t in env.h.tokens]
    for p, c, o, d, r in zip(ledger.paid, ledger.claimed, ledger.owed, ledger.dust, released, strict=True):
        assert p == c + o + d + r
    assert _cash(env, env.h.deal.address) == D.read_state(env.h).reserve + sum(ledger.owed) + sum(ledger.dust)


# -- the review of the fixes above (issue 14, second round) ------------------------------------

def test_review_1_the_sweep_never_cuts_off_recoveries(closed: Env) -> None:
    """The sweep used to end the deal once the pool balance was 0: a recovery report on the
    written-off loans was then refused (WrongPhase) and recoveries sent afterwards went to the
    admin's next sweep; and a sweep scheduled on day 0 (its execute reverted, DealNotEnded) stayed
    ready and ran at once, months later, with no fresh notice. Now the sweep ends nothing:
    scheduled early it runs (taking nothing nobody is owed), reports go on, and after the pool is
    written off and swept a recovery report is accepted and paid to holders, solvent to the unit."""
    env = closed
    h, chain = env.h, env.chain
    admin = env.roles.admin
    assert _sweep(env, admin, 1) == 0  # on day 0: nothing to take, and nothing ends
    assert D.phase(h) == "closed"
    _period(env)
    D.transfer(h, tranche=0, sender=env.alice, to=env.dave, units=77_777)
    _period(env, PeriodReport(1_000, 0, 0, 915_000))  # the rest of the pool defaults
    assert D.read_state(h).pool_balance == 0
    assert _sweep(env, admin, 2) == sum(chain.call(t.functions.releasedTotal()) for t in h.tokens)
    residual_holder = env.roles.originator  # holds tranche C (unsold), the only one left after the write-off
    before = D.claimable(h, holder=residual_holder)[2]
    result = D.post_report(h, report=PeriodReport(0, 0, 300_000, 0), loan_root=ROOT, loan_count=1)
    assert result.period == 3 and result.tranches[2].cash_paid >= 300_000  # the reserve's release too
    assert D.claimable(h, holder=residual_holder)[2] >= before + 300_000
    _ledger_holds(env)
    assert _sweep(env, admin, 3) >= 0  # the new carry; still nothing ends
    D.post_report(h, report=PeriodReport(0, 0, 1_234, 0), loan_root=ROOT, loan_count=1)  # and more recoveries
    for who in (env.alice, env.bob, env.carol, env.dave, env.roles.originator):
        D.claim(h, holder=who)
    _ledger_holds(env)
    assert D.phase(h) == "closed" and D.read_state(h).period == 4


def test_review_2_deal_create_gives_each_role_to_the_party_the_deal_file_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`chainabs deal create` put one key (accounts[0]) in every seat and role, so that key alone
    could force-transfer a holder's units and cash to itself at once. Now the deal file's [roles]
    names each party: each contract's roles are held by the named account and the deploying
    account holds none; a role whose key this chainabs lacks is refused before anything is sent."""
    tape = tmp_path / "tape.csv"
    write_tape(tape, 60, 5, "csv")
    data = tmp_path / "data"
    deal_file = REPO / "examples" / "deal.toml"
    assert main(["--data-dir", str(data), "pool", "create", "--tape", str(tape), "--deal", str(deal_file)]) == 0
    ctx = open_context(data_dir=data, create=False)
    a = ctx.chain.accounts
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    names = ("admin", "token_admin", "registry_admin", "operator", "servicer", "originator", "fee_recipient",
             "compliance", "agent")
    chosen = dict(zip(names, a[1:10], strict=True))
    outsider = "0x" + "ab" * 20  # nobody's key here
    capsys.readouterr()

    def roles_file(roles: dict[str, str]) -> Path:
        path = tmp_path / f"deal-{len(list(tmp_path.glob('deal-*')))}.toml"
        path.write_text(deal_file.read_text() + "\n[roles]\n" + "".join(f'{k} = "{v}"\n' for k, v in roles.items()))
        return path

    ctx = open_context(data_dir=data, create=False)
    head = ctx.chain.block_number()
    ctx.chain.journal.close()  # type: ignore[attr-defined]
    assert main(["--data-dir", str(data), "deal", "create", "--deal", str(roles_file({**chosen, "compliance": outsider}))]) == 1
    err = capsys.readouterr().err
    assert "roles.compliance" in err and "not an account this chainabs can sign for" in err
    assert main(["--data-dir", str(data), "deal", "create", "--deal", str(roles_file(chosen))]) == 0
    ctx = open_context(data_dir=data, create=False)
    assert ctx.chain.block_number() > head
    h, _ = open_deal(ctx)
    chain = ctx.chain  # the deploying account, a[0], is in no list below
    assert {k: getattr(h.roles, k) for k in names} == chosen
    role = lambda contract, name: chain.call(getattr(contract.functions, name)())  # noqa: E731
    seats = {"deal": h.deal, "tokens": h.tokens[0], "registry": h.registry}
    for seat, key in (("deal", "admin"), ("tokens", "token_admin"), ("registry", "registry_admin")):
        timelock = h.timelocks[seat]
        assert chain.call(seats[seat].functions.defaultAdmin()) == timelock.address
        proposers = [w for w in a if chain.call(timelock.functions.hasRole(role(timelock, "PROPOSER_ROLE"), w))]
        assert proposers == [chosen[key]]
    for token in h.tokens:
        assert chain.call(token.functions.defaultAdmin()) == h.timelocks["tokens"].address
    holders = {
        "OPERATOR": (h.deal, "OPERATOR_ROLE", chosen["operator"]), "PAYING_AGENT": (h.deal, "PAYING_AGENT_ROLE",
                                                                                   chosen["operator"]),
        "SERVICER": (h.deal, "SERVICER_ROLE", chosen["servicer"]),
        "COMPLIANCE": (h.registry, "COMPLIANCE_ROLE", chosen["compliance"]),
        **{f"AGENT {k}": (t, "AGENT_ROLE", chosen["agent"]) for k, t in enumerate(h.tokens)},
    }
    for contract, name, holder in holders.values():
        assert [w for w in a if chain.call(contract.functions.hasRole(role(contract, name), w))] == [holder]
    assert chain.call(h.deal.functions.feeRecipient()) == chosen["fee_recipient"]
    assert chain.call(h.deal.functions.originator()) == chosen["originator"]
    assert D.phase(h) == "open" and D.is_eligible(h, investor=chosen["originator"])
    ctx.chain.journal.close()  # type: ignore[attr-defined]


def test_review_2_a_bad_roles_section_names_the_key() -> None:
    text = (REPO / "examples" / "deal.toml").read_text() + "\n[roles]\n"
    for body, field, words in (('agent = "0x12"\n', "roles.agent", "40 hex"),
                               ('agnet = "0x' + "ab" * 20 + '"\n', "roles.agnet", "did you mean 'agent'"),
                               ('servicer = "0x' + "00" * 20 + '"\n', "roles.servicer", "zero address")):
        with pytest.raises(DealError) as info:
            parse_deal_file(text + body)
        assert info.value.field == field and words in str(info.value)


def test_review_4_compliance_attaches_only_tranches_of_a_deal_using_the_registry(env: Env) -> None:
    """COMPLIANCE could attach any contract whose registry() was this registry, the Deal itself
    for one: it has no mirrorEligibility, so every later freeze, unfreeze, add, revoke and sync
    reverted for good. Now only a tranche of a deal that uses this registry is attached; the
    registry's admin (its timelock) can detach a token."""
    h, chain, core = env.h, env.chain, env.core
    compliance = env.roles.compliance
    for bad in (h.deal.address, h.exchange.address, h.registry.address, env.stranger, h.token(0).address):
        err = _refused(lambda: chain.send(h.registry.functions.attachToken(bad), sender=compliance))
        assert (err.name, err.args_) == ("CannotAttach", {"token": bad.lower()})  # the last: already attached
    # a tranche of a deal over another registry is refused; one of another deal sharing this registry is not
    other = D.deploy_deal(chain, manifest=core, params=PARAMS, roles=env.roles, attach=False,
                          pool=D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000]).address)
    err = _refused(lambda: chain.send(h.registry.functions.attachToken(other.tokens[0].address), sender=compliance))
    assert err.name == "CannotAttach"
    sharing = D.deploy_deal(chain, manifest=core, params=PARAMS, roles=env.roles, attach=False,
                            registry=h.registry.address,
                            pool=D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000]).address)
    chain.send(h.registry.functions.attachToken(sharing.tokens[0].address), sender=compliance)
    D.freeze(h, investors=[env.alice])  # every write still works
    D.freeze(h, investors=[env.alice], frozen=False)
    assert D.restriction(h, tranche=0, sender=env.alice, to=env.bob) == 0
    # detaching: the registry's admin only, through its timelock; writes then skip the token
    detach = h.registry.functions.detachToken(sharing.tokens[0].address)
    for who in (compliance, env.roles.registry_admin, env.roles.admin):
        assert _refused(lambda: chain.send(detach, sender=who)).name == "AccessControlUnauthorizedAccount"
    call = D.admin_call(h, seat="registry", call=detach)
    call.schedule()
    chain.time_travel(call.ready_at() + 10)
    (event,) = h.registry.events.TokenDetached().process_receipt(call.execute().receipt, errors=DISCARD)
    assert event["args"]["token"] == sharing.tokens[0].address
    assert sharing.tokens[0].address not in chain.call(h.registry.functions.tokens())
    D.freeze(h, investors=[env.bob])
    assert chain.call(h.token(0).functions.eligibilityOf(env.bob))[1] is True
    assert chain.call(sharing.tokens[0].functions.eligibilityOf(env.bob))[1] is False
    err = _refused(lambda: _through(env, "registry", detach))
    assert err.name == "NotAttached"


def _through(env: Env, seat: str, fn: Any) -> Any:
    call = D.admin_call(env.h, seat=seat, call=fn, salt=b"\x02" * 32)
    call.schedule()
    env.chain.time_travel(call.ready_at() + 10)
    return call.execute()


def test_review_6_the_agent_moves_the_cash_of_a_wallet_that_holds_no_units(closed: Env) -> None:
    """A holder that sold every unit and was then lost or frozen kept an entitlement no forced
    transfer could move (it moves cash in proportion to units). Now the agent moves it all, with
    an event, to the unit; the receiver must be eligible and unfrozen, as for a forced transfer."""
    env = closed
    h, chain = env.h, env.chain
    token = h.token(0)
    _period(env, PeriodReport(15_007, 80_003, 11, 5_000))
    D.transfer(h, tranche=0, sender=env.alice, to=env.bob, units=500_000)  # alice sells everything
    D.freeze(h, investors=[env.alice])  # and is then lost
    ent = int(chain.call(token.functions.entitlementOf(env.alice)))
    owed = D.claimable(h, holder=env.alice)[0]
    assert owed > 0 and chain.call(token.functions.balanceOf(env.alice)) == 0
    holders = (env.alice, env.bob, env.carol, env.dave, env.roles.originator)
    total = sum(int(chain.call(token.functions.entitlementOf(w))) for w in holders)
    owed_to_holders = chain.call(token.functions.owedToHolders())
    move = token.functions.moveEntitlement(env.alice, env.dave)
    for who in (env.stranger, env.roles.admin, env.roles.token_admin, env.roles.compliance, env.dave):
        assert _refused(lambda: chain.send(move, sender=who)).name == "AccessControlUnauthorizedAccount"
    D.freeze(h, investors=[env.dave])
    err = _refused(lambda: D.move_entitlement(h, tranche=0, from_=env.alice, to=env.dave))
    assert (err.name, err.args_) == ("TransferRestricted", {"code": 5})
    err = _refused(lambda: D.move_entitlement(h, tranche=0, from_=env.alice, to=env.stranger))
    assert (err.name, err.args_) == ("TransferRestricted", {"code": 3})
    D.freeze(h, investors=[env.dave], frozen=False)
    D.set_paused(h, tranche=0, paused=True)  # works while paused, as a forced transfer does
    dave = int(chain.call(token.functions.entitlementOf(env.dave)))
    sent = D.move_entitlement(h, tranche=0, from_=env.alice, to=env.dave)
    (event,) = token.events.EntitlementMoved().process_receipt(sent.receipt, errors=DISCARD)
    assert dict(event["args"]) == {"from": env.alice, "to": env.dave, "amount": ent}
    assert chain.call(token.functions.entitlementOf(env.alice)) == 0
    assert chain.call(token.functions.entitlementOf(env.dave)) == dave + ent
    assert sum(int(chain.call(token.functions.entitlementOf(w))) for w in holders) == total
    assert chain.call(token.functions.owedToHolders()) == owed_to_holders
    again = D.move_entitlement(h, tranche=0, from_=env.alice, to=env.dave)  # nothing left: no event
    assert not token.events.EntitlementMoved().process_receipt(again.receipt, errors=DISCARD)
    D.set_paused(h, tranche=0, paused=False)
    before = _cash(env, env.dave)
    assert D.claim(h, holder=env.dave) >= owed and _cash(env, env.dave) - before >= owed
    _ledger_holds(env)


def test_review_6_audit_verify_passes_with_a_stray_and_fails_on_tampering(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """One base unit sent to the deal by anyone made `audit verify`'s cash checks fail. Strays
    are now counted (they are what the sweep is for): the checks pass with a stray, after its
    sweep, and still fail when the events disagree with the chain (a claim's payment, a report's
    collections or a sweep the chain never made)."""
    demo = demo_deal(tmp_path_factory, "stray", loans=12, periods=1)
    try:
        h, chain = demo.handle, demo.handle.chain

        def cash_checks(ev: Any = None) -> list[Any]:
            return [c for c in verify_deal(h, demo.files, events=ev) if c.name.startswith("cash")]

        assert all(c.ok for c in cash_checks())
        stranger = chain.accounts[7]
        chain.send(h.settlement.functions.mint(stranger, 1), sender=chain.accounts[0])
        chain.send(h.settlement.functions.transfer(h.deal.address, 1), sender=stranger)
        checks = cash_checks()
        assert all(c.ok for c in checks), [(c.name, c.figures) for c in checks]
        assert checks[0].figures["strays"] == 1 and checks[1].figures["strays not swept"] == 1
        call = D.sweep(h, to=h.roles.admin)
        call.schedule()
        chain.time_travel(call.ready_at() + 10)  # type: ignore[attr-defined]
        call.execute()
        checks = cash_checks()
        assert all(c.ok for c in checks) and checks[1].figures["strays not swept"] == 0
        assert all(c.ok for c in verify_deal(h, demo.files))

        ev = read_deal_events(h, demo.files)
        deal = ev.deal
        claim = next(e for e in ev.cash_moves if e.args["from"] == deal and e.args["to"] != h.roles.admin.lower())
        report = next(e for e, _ in chain_periods(ev))
        collections = next(e for e in ev.cash_moves if e.args["to"] == deal and e.tx_hash == report.tx_hash)
        swept = ev.named("Swept", deal)[0]
        tampered = [
            replace(ev, cash_moves=[e for e in ev.cash_moves if e is not claim]),  # a payment hidden
            replace(ev, cash_moves=[e for e in ev.cash_moves if e is not collections]),  # collections never came
            replace(ev, events=[*ev.events, replace(swept, log_index=swept.log_index + 10_000,
                                                    args={**swept.args, "amount": 5})]),  # a sweep the chain never made
        ]
        for events in tampered:
            assert not all(c.ok for c in cash_checks(events))
    finally:
        demo.store.close()
