"""Stateful property tests: a Hypothesis state machine drives one deployed deal on the embedded
chain through random subscriptions, closings (whatever the pauses and the originator's status),
transfers, exchange trades (some signed for a period already past), forced transfers (which
carry the sender's unclaimed cash with the units), freezes, registrations and revocations (a
freeze survives them), pauses, time travel past eligibility dates, period reports (zero
collections, total defaults, recoveries, refused reports), claims (refused to frozen, revoked or
expired holders and to callers other than the holder or the paying agent), stray transfers of
cash to the deal and, in any phase, the admin's sweep through its timelock (it takes exactly the
strays, and once the pool is paid down each tranche's carry; it ends nothing, reports go on).
After every step the whole deal is read back and six invariants are checked against the
machine's model:

- cash: the deal holds exactly reserve + owed + dust + strays - swept + released (the carry
  released to sweeps); paid = claimed + owed + dust + released per tranche; every tracked
  wallet's settlement balance is what the model says;
- units: holders' units add up to each tranche's totalSupply, holder by holder as modelled;
- claims: what holders can claim (exactly the TrancheToken entitlement rule) plus what they
  claimed never exceeds what the tranche was paid;
- balances: tranche balances add up to the pool balance, or less once the trigger turbo ran;
- eligibility: no frozen, expired or unregistered wallet gains units (the contract refuses them
  even as the receiver of a forced transfer); restricted transfers revert with their code;
- model: the carried state, every period's fields and each wallet's eligibility equal the
  reference model's (waterfall.py).

The deal is deployed once per module; each example starts from a snapshot of it (offering open)
and reverts to it afterwards. Expected failures are sent as mined transactions (explicit gas) so
"a refused step changes nothing" is checked against a block that really ran.

`make test` runs the fast profile; `make soak` (CHAINABS_SOAK=1) runs the long one: 320 examples
of up to 50 steps (CHAINABS_SOAK_EXAMPLES and CHAINABS_SOAK_STEPS change them). About a third
stop before 50 steps, when Hypothesis's data buffer for one example is 80 % used, so 320 give
some 200 that run all 50. Both print the counts of examples, steps and invariant checks, and
how many steps each example ran.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils.abi import collapse_if_tuple
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.contract import Contract
from web3.logs import DISCARD

from chainabs import deal as D
from chainabs.chain import GWEI, EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, WaterfallError
from chainabs.waterfall import DealParams, DealState, PeriodReport, TrancheSpec, check_conservation, run_period
from support import Entitlements

SOAK = os.environ.get("CHAINABS_SOAK") == "1"
EXAMPLES = int(os.environ.get("CHAINABS_SOAK_EXAMPLES", "320")) if SOAK else 10
STEPS = int(os.environ.get("CHAINABS_SOAK_STEPS", "50")) if SOAK else 15
PROFILE = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
COUNTS = {"examples": 0, "steps": 0, "checks": 0}
LENGTHS: list[int] = []  # steps each example ran
OUTCOMES: Counter[str] = Counter()  # "call: outcome" -> times, printed with the counts

# Odd faces so every credit leaves rounding to carry; a trigger that random defaults can breach.
PARAMS = DealParams(
    tranches=(TrancheSpec("Senior A", "A", 700_003, 400), TrancheSpec("Mezzanine B", "B", 199_999, 900),
              TrancheSpec("Equity C", "C", 100_001, 0)),
    servicer_fee_bps=75, reserve_target_bps=150, initial_reserve=12_345, default_trigger_bps=1_200)
N = len(PARAMS.tranches)
M = D.MAGNITUDE
DAY = 86_400
HALF_DAY = 43_200  # eligibility dates sit half a day off the whole-day time jumps: never ambiguous
ROOT = b"\x07" * 32
FAR_DEADLINE = 2**40
REFUSED_GAS = 1_500_000  # an explicit gas limit skips the pre-send simulation: the revert is mined
WALLET_CASH = 10**15
REPORT_KINDS = ("normal", "normal", "zero", "total_default", "recoveries", "prepay", "shortfall", "defaults_only",
                "exact_pool", "too_many_defaults", "too_much_principal", "bad_b1")


@dataclass(frozen=True)
class Env:
    chain: EmbeddedChain
    h: D.DealHandle
    wallets: tuple[str, ...]  # originator, four investors, a stranger never registered at the start
    initial_until: tuple[int, ...]  # 0: not registered
    start_cash: tuple[int, ...]
    fee_recipient: str
    views: Views


class Views:
    """Fixed view calls, ABI-encoded once and run straight on eth-tester: a web3 call through
    the provider costs about four times as much, and each step reads some sixty values."""

    def __init__(self, chain: EmbeddedChain, calls: dict[Any, tuple[Contract, str, tuple[Any, ...]]]) -> None:
        self.chain = chain
        self.sender = chain.accounts[0]
        self.calls = []
        for label, (contract, name, args) in calls.items():
            (abi,) = [i for i in contract.abi if i.get("type") == "function" and i["name"] == name
                      and len(i["inputs"]) == len(args)]
            types = [collapse_if_tuple(o) for o in abi["outputs"]]
            self.calls.append((label, contract.address, contract.encode_abi(name, args=list(args)), types))

    def read(self) -> dict[Any, Any]:
        base = self.chain.backend.chain.get_block().header.base_fee_per_gas
        out = {}
        for label, to, data, types in self.calls:
            raw = self.chain.tester.call({"from": self.sender, "to": to, "data": data, "gas": 10_000_000,
                                          "max_fee_per_gas": 2 * base + GWEI, "max_priority_fee_per_gas": 0})
            values = abi_decode(types, bytes.fromhex(raw.removeprefix("0x")))
            out[label] = values[0] if len(values) == 1 else values
        return out


@pytest.fixture(scope="module")
def deal_env(session_chain: EmbeddedChain, core: Manifest) -> Iterator[Env]:
    """The deal, deployed once: roles on a[0] (servicer, agent, compliance...), fees to a[1],
    originator a[2]; everyone funded and every allowance the machine needs given up front; four
    investors registered (one for 20 days only), a[7] not; the offering open."""
    chain = session_chain
    base = chain.snapshot()
    a = chain.accounts
    boss, fee_to, originator = a[0], a[1], a[2]
    roles = D.DealRoles(admin=boss, operator=boss, servicer=boss, originator=originator, fee_recipient=fee_to,
                        compliance=boss, agent=boss)
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[400_000, 600_003], originator=originator)
    h = D.deploy_deal(chain, manifest=core, pool=pool.address, params=PARAMS, roles=roles)
    wallets = tuple(a[2:8])
    chain.send(h.settlement.functions.mint(boss, 10**24), sender=core.deployer)
    chain.send(h.settlement.functions.approve(h.deal.address, 2**256 - 1), sender=boss)
    for who in wallets:
        chain.send(h.settlement.functions.mint(who, WALLET_CASH), sender=core.deployer)
        for spender in (h.deal.address, h.exchange.address):
            chain.send(h.settlement.functions.approve(spender, 2**256 - 1), sender=who)
        for token in h.tokens:
            chain.send(token.functions.approve(h.exchange.address, 2**256 - 1), sender=who)
    now = _now(chain)
    days = (3_650, 3_650, 3_650, 3_650, 20)
    until = tuple(now + d * DAY + HALF_DAY for d in days) + (0,)
    D.add_investors(h, investors=wallets[:5], eligible_until=list(until[:5]))
    D.open_offering(h)
    calls: dict[Any, tuple[Contract, str, tuple[Any, ...]]] = {}
    for w in wallets:
        calls[("cash", w)] = (h.settlement, "balanceOf", (w,))
        calls[("claimable", w)] = (h.deal, "claimable", (w,))
        calls[("eligible", w)] = (h.registry, "isEligible", (w,))
        for k, token in enumerate(h.tokens):
            calls[("units", k, w)] = (token, "balanceOf", (w,))
    for k, token in enumerate(h.tokens):
        calls[("supply", k)] = (token, "totalSupply", ())
        calls[("tranche", k)] = (h.deal, "tranche", (k,))
        calls[("points", k)] = (token, "pointsPerUnit", ())
        calls[("carry", k)] = (token, "carry", ())
        calls[("released", k)] = (token, "releasedTotal", ())
    calls[("cash", fee_to)] = (h.settlement, "balanceOf", (fee_to,))
    calls["held"] = (h.settlement, "balanceOf", (h.deal.address,))
    calls["ledger"] = (h.deal, "cashLedger", ())
    for name in ("phase", "periodCount", "poolBalance", "unpaidFee", "reserve", "cumulativeDefaults",
                 "triggerBreached", "swept"):
        calls[name] = (h.deal, name, ())
    env = Env(chain=chain, h=h, wallets=wallets, initial_until=until,
              start_cash=tuple(chain.call(h.settlement.functions.balanceOf(w)) for w in wallets),
              fee_recipient=fee_to, views=Views(chain, calls))
    yield env
    chain.revert(base)


def _now(chain: EmbeddedChain) -> int:
    """The time the next transaction will see (eth-tester stamps a block with the later of the
    wall clock and its parent's time + 1)."""
    latest = int(chain.w3.eth.get_block("latest")["timestamp"])
    return max(latest + 1, int(time.time()))


def _report(kind: str, x: int, y: int, b0: int) -> PeriodReport:
    """A report of `kind` on pool balance b0; x and y are raw draws."""
    if kind == "zero":
        return PeriodReport(0, 0, 0, 0)
    if kind == "total_default":
        return PeriodReport(x % 100, 0, 0, b0)
    if kind == "recoveries":
        return PeriodReport(x % 50, 0, 100 + y % 100_000, 0)
    if kind == "prepay":  # enough principal to pay senior tranches off
        return PeriodReport(x % 1_000, b0 * (50 + x % 51) // 100, 0, 0)
    if kind == "shortfall":  # nearly no cash: the reserve pays fee and interest, then carries
        return PeriodReport(x % 7, 0, 0, min(b0, y % 1_000))
    if kind == "defaults_only":
        return PeriodReport(0, 0, 0, b0 * (x % 30) // 100)
    if kind == "exact_pool":  # P + D == B0 exactly
        principal = b0 * (x % 101) // 100
        return PeriodReport(y % 2_000, principal, y % 300, b0 - principal)
    if kind == "too_many_defaults":
        return PeriodReport(0, y % 3, 0, b0 + 1 + x % 10)
    if kind == "too_much_principal":
        defaults = b0 * (x % 100) // 100
        return PeriodReport(y % 100, b0 - defaults + 1 + y % 5, 0, defaults)
    principal = min(b0, x % (b0 // 5 + 1))
    defaults = min(b0 - principal, y % (b0 // 20 + 1))
    return PeriodReport(b0 // 100 + x % 1_000, principal, y % 500, defaults)


wallet_ix = st.integers(0, 5)
tranche_ix = st.integers(0, N - 1)
report_kind = st.sampled_from(REPORT_KINDS)
raw = st.integers(0, 10**6)
amount = st.integers(0, 1_100)  # per mille of a balance; above 1_000: one unit more than held


class DealMachine(RuleBasedStateMachine):
    """The model: phase, issued units, per-wallet units, registry words (eligible-until and
    frozen), pauses, the waterfall's DealState, TrancheToken's entitlement rule (points per
    unit, carry, each holder's entitlement in 1/M base units), cash paid and claimed, and every
    tracked wallet's settlement balance."""

    def __init__(self, env: Env) -> None:
        super().__init__()
        COUNTS["examples"] += 1
        self.steps = 0
        self.env, self.h, self.chain = env, env.h, env.chain
        self.snap = env.chain.snapshot()
        self.w = env.wallets
        self.originator = self.w[0]
        self.phase = "open"
        self.issued = [0] * N
        self.book = Entitlements(N, self.w)  # units, points, carry, entitlements and cash paid per tranche
        self.units, self.ent, self.points, self.carry, self.paid = (self.book.units, self.book.ent, self.book.points,
                                                                    self.book.carry, self.book.paid)
        self.until = dict(zip(self.w, env.initial_until, strict=True))
        self.frozen = dict.fromkeys(self.w, False)
        self.paused = [False] * N
        self.state = DealState.offering(PARAMS)
        self.claimed = [0] * N
        self.released = [0] * N  # carry released to the sweep, per tranche
        self.strays = 0  # cash sent to the deal outside any closing or report
        self.swept = 0
        self.cash = dict(zip(self.w, env.start_cash, strict=True))
        self.cash[env.fee_recipient] = env.chain.call(self.h.settlement.functions.balanceOf(env.fee_recipient))
        self.before = [dict(u) for u in self.units]
        self.closing_grant: dict[tuple[int, str], int] = {}
        self._read: dict[Any, Any] | None = None

    def teardown(self) -> None:
        LENGTHS.append(self.steps)
        self.chain.revert(self.snap)

    # -- helpers ---------------------------------------------------------------------------------

    def _step(self) -> None:
        COUNTS["steps"] += 1
        self.steps += 1
        self.before = [dict(u) for u in self.units]
        self.closing_grant: dict[tuple[int, str], int] = {}
        self._read = None

    def _eligible(self, who: str, now: int) -> bool:
        until = self.until[who]
        assert until == 0 or abs(until - now) > 3_600, "an eligibility date too close to the clock to model"
        return not self.frozen[who] and now <= until

    def _code(self, k: int, src: str | None, dst: str, *, forced: bool, mint: bool = False) -> int:
        """The ERC-1404 code the model expects (TrancheToken's order of tests)."""
        now = _now(self.chain)
        if (not forced or mint) and self.paused[k]:
            return 1
        if not forced and src is not None:
            if self.frozen[src]:
                return 4
            if not self._eligible(src, now):
                return 2
        if self.frozen[dst]:
            return 5
        if not self._eligible(dst, now):
            return 3
        return 0

    def _refused(self, fn: Any, sender: str) -> ContractRevert:
        """Send a call expected to revert as a mined transaction; return its decoded error."""
        with pytest.raises(ContractRevert) as info:
            self.chain.send(fn, sender=sender, gas=REFUSED_GAS)
        err = info.value
        code = err.args_.get("code", "") if isinstance(err.args_, dict) else ""
        OUTCOMES[f"{fn.fn_name}: {err.name}{code}"] += 1
        return err

    @staticmethod
    def _done(what: str) -> None:
        OUTCOMES[f"{what}: ok"] += 1

    def _move(self, k: int, src: str, dst: str, units: int) -> None:
        """Units move with their correction: the sender keeps what was credited before."""
        self.units[k][src] -= units
        self.units[k][dst] += units

    def _units_for(self, k: int, who: str, per_mille: int) -> int:
        held = self.units[k][who]
        return held + 1 if per_mille > 1_000 else held * per_mille // 1_000

    def _view(self) -> dict[Any, Any]:
        if self._read is None:
            self._read = self.env.views.read()
        return self._read

    def _check(self) -> None:
        COUNTS["checks"] += 1

    # -- offering --------------------------------------------------------------------------------

    def _subscribe(self, who: str, k: int, per_mille: int) -> None:
        available = PARAMS.tranches[k].face - self.issued[k]
        units = available + 1 if per_mille > 1_000 or available == 0 else max(1, available * per_mille // 1_000)
        if units > available:
            err = self._refused(self.h.deal.functions.subscribe(k, units), who)
            assert err.name == "ExceedsFace" and err.args_ == {"tranche": k, "available": available, "requested": units}
            return
        code = self._code(k, None, who, forced=True, mint=True)
        if code:
            err = self._refused(self.h.deal.functions.subscribe(k, units), who)
            assert (err.name, err.args_) == ("TransferRestricted", {"code": code})
            return
        self._done("subscribe")
        D.subscribe(self.h, investor=who, tranche=k, units=units)
        self.issued[k] += units
        self.units[k][who] += units
        self.cash[who] -= units
        self.cash[self.originator] += units

    def _close(self) -> None:
        """Closing is never blocked by a pause or the originator's status: the unsold units go
        to the originator whatever they are."""
        unsold = [PARAMS.tranches[k].face - self.issued[k] for k in range(N)]
        blocked_before = any(unsold[k] and self._code(k, None, self.originator, forced=True, mint=True)
                             for k in range(N))
        self._done("close while paused or the originator ineligible" if blocked_before else "close")
        D.close(self.h)
        self.phase = "closed"
        self.state = DealState.initial(PARAMS)
        self.cash[self.originator] -= PARAMS.initial_reserve
        for k in range(N):
            self.units[k][self.originator] += unsold[k]
            self.closing_grant[(k, self.originator)] = unsold[k]
            self.issued[k] = PARAMS.tranches[k].face

    @initialize(subs=st.lists(st.tuples(wallet_ix, tranche_ix, amount), max_size=4),
                close_now=st.sampled_from([True, True, True, False]),
                reports=st.lists(st.tuples(report_kind, raw, raw), max_size=3))
    def offering(self, subs: list[tuple[int, int, int]], close_now: bool, reports: list[tuple[str, int, int]]) -> None:
        """A few subscriptions, then usually the closing and a few periods (Hypothesis's swarm
        testing switches whole rules off per example: this keeps periods in most examples);
        the open phase is left to the rules otherwise."""
        self._step()
        for i, k, per_mille in subs:
            self._subscribe(self.w[i], k, per_mille)
        if close_now:
            self._close()
            for kind, x, y in reports:
                if self.phase == "closed":
                    self._period(kind, x, y)

    @precondition(lambda self: self.phase == "open")
    @rule(i=wallet_ix, k=tranche_ix, per_mille=amount)
    def subscribe(self, i: int, k: int, per_mille: int) -> None:
        self._step()
        self._subscribe(self.w[i], k, per_mille)

    @precondition(lambda self: self.phase == "open")
    @rule()
    def close(self) -> None:
        self._step()
        self._close()

    # -- moving units ----------------------------------------------------------------------------

    @rule(k=tranche_ix, i=wallet_ix, j=wallet_ix, per_mille=amount)
    def transfer(self, k: int, i: int, j: int, per_mille: int) -> None:
        self._step()
        src, dst = self.w[i], self.w[j]
        units = self._units_for(k, src, per_mille)
        fn = self.h.token(k).functions.transfer(dst, units)
        code = self._code(k, src, dst, forced=False)
        if code:
            err = self._refused(fn, src)
            assert (err.name, err.args_) == ("TransferRestricted", {"code": code})
        elif units > self.units[k][src]:
            assert self._refused(fn, src).name == "ERC20InsufficientBalance"
        else:
            self._done("transfer")
            D.transfer(self.h, tranche=k, sender=src, to=dst, units=units)
            self._move(k, src, dst, units)

    @rule(k=tranche_ix, i=wallet_ix, j=wallet_ix, per_mille=amount, price=st.integers(0, 2_000_000),
          open_order=st.booleans(), stale=st.booleans())
    def trade(self, k: int, i: int, j: int, per_mille: int, price: int, open_order: bool, stale: bool) -> None:
        """The seller signs an exchange order, the buyer fills it: units and price swap
        atomically, or (restricted, short, signed for a period already past) neither moves."""
        self._step()
        seller, buyer = self.w[i], self.w[j]
        units = self._units_for(k, seller, per_mille)
        stale = stale and self.state.period > 0
        last = self.state.period - 1 if stale else self.state.period
        order = D.sign_order(self.h, seller=seller, tranche=k, units=units, price=price, deadline=FAR_DEADLINE,
                             buyer=None if open_order else buyer, last_period=last)
        fn = self.h.exchange.functions.fillOrder(order.as_tuple(), order.signature)
        code = self._code(k, seller, buyer, forced=False)
        if stale:
            err = self._refused(fn, buyer)
            assert (err.name, err.args_) == ("OrderPeriodPassed", {"lastPeriod": last, "current": self.state.period})
        elif code:
            err = self._refused(fn, buyer)
            assert (err.name, err.args_) == ("TransferRestricted", {"code": code})
        elif units > self.units[k][seller]:
            assert self._refused(fn, buyer).name == "ERC20InsufficientBalance"
        else:
            self._done("fillOrder")
            D.fill_order(self.h, order=order, buyer=buyer)
            self._move(k, seller, buyer, units)
            self.cash[buyer] -= price
            self.cash[seller] += price

    @rule(k=tranche_ix, i=wallet_ix, j=wallet_ix, per_mille=amount)
    def forced_transfer(self, k: int, i: int, j: int, per_mille: int) -> None:
        """The agent moves units whatever the sender's status and the pause; the receiver must
        still be eligible."""
        self._step()
        src, dst = self.w[i], self.w[j]
        units = self._units_for(k, src, per_mille)
        fn = self.h.token(k).functions.forcedTransfer(src, dst, units)
        code = self._code(k, src, dst, forced=True)
        if code:
            err = self._refused(fn, self.h.roles.agent)
            assert (err.name, err.args_) == ("TransferRestricted", {"code": code})
        elif units > self.units[k][src]:
            assert self._refused(fn, self.h.roles.agent).name == "ERC20InsufficientBalance"
        else:
            self._done("forcedTransfer")
            sent = D.forced_transfer(self.h, tranche=k, from_=src, to=dst, units=units)
            moved = self.book.move(k, src, dst, units, forced=True)  # the unclaimed cash goes along, pro rata
            events = self.h.token(k).events.EntitlementMoved().process_receipt(sent.receipt, errors=DISCARD)
            assert [e["args"]["amount"] for e in events] == ([moved] if moved else [])

    # -- compliance and the clock ----------------------------------------------------------------

    @rule(i=wallet_ix, frozen=st.booleans())
    def freeze(self, i: int, frozen: bool) -> None:
        self._step()
        D.freeze(self.h, investors=[self.w[i]], frozen=frozen)
        self.frozen[self.w[i]] = frozen

    @rule(i=wallet_ix, days=st.sampled_from([-3, 2, 15, 60, 400, 3_650]))
    def register(self, i: int, days: int) -> None:
        """Add or renew an investor (a negative term registers it already expired); a frozen
        investor stays frozen."""
        self._step()
        until = _now(self.chain) + days * DAY + HALF_DAY
        D.add_investors(self.h, investors=[self.w[i]], eligible_until=until)
        self.until[self.w[i]] = until

    @rule(i=wallet_ix)
    def revoke(self, i: int) -> None:
        """Revoke an investor; a freeze stays (only an unfreeze lifts it)."""
        self._step()
        D.revoke_investors(self.h, investors=[self.w[i]])
        self.until[self.w[i]] = 0

    @rule(days=st.sampled_from([1, 7, 19, 45, 120]))
    def time_travel(self, days: int) -> None:
        """Whole days forward: eligibility dates expire."""
        self._step()
        self.chain.time_travel(_now(self.chain) + days * DAY)

    @rule(k=tranche_ix)
    def toggle_pause(self, k: int) -> None:
        self._step()
        D.set_paused(self.h, tranche=k, paused=not self.paused[k])
        self.paused[k] = not self.paused[k]

    # -- servicing and claims --------------------------------------------------------------------

    @precondition(lambda self: self.phase == "closed")
    @rule(kind=report_kind, x=raw, y=raw)
    def report(self, kind: str, x: int, y: int) -> None:
        self._step()
        self._period(kind, x, y)

    @rule(i=wallet_ix, amount=st.integers(1, 1_000))
    def stray(self, i: int, amount: int) -> None:
        """Anyone may send the deal settlement tokens: nobody is owed them."""
        self._step()
        self._done("stray transfer")
        who = self.w[i]
        self.chain.send(self.h.settlement.functions.transfer(self.h.deal.address, amount), sender=who)
        self.cash[who] -= amount
        self.strays += amount

    def _dust(self, k: int) -> int:
        """TrancheToken.dust: credited, not claimable now and not released (the carry)."""
        supply = sum(self.units[k].values())
        return self.paid[k] - self.released[k] - self.points[k] * supply // M

    @precondition(lambda self: self.strays + sum(self.released) > self.swept or self.steps % 7 == 3
                  or (self.phase == "closed" and self.state.pool_balance == 0))
    @rule()
    def sweep(self) -> None:
        """The deal's admin sweeps through its timelock, in any phase: it takes the strays not yet
        swept and, once the pool balance is 0, releases and takes each tranche's carry; it ends
        nothing (a report still runs afterwards, by the report rule). Run when there is
        something to take, and now and then when there is not (it then takes 0)."""
        self._step()
        to = self.env.fee_recipient
        call = D.sweep(self.h, to=to, salt=self.steps.to_bytes(32, "big"))
        call.schedule()
        self.chain.time_travel(call.ready_at() + 10)
        paid_down = self.phase == "closed" and self.state.pool_balance == 0
        released = [self._dust(k) if paid_down else 0 for k in range(N)]
        expected = self.strays + sum(self.released) - self.swept + sum(released)
        sent = call.execute()
        (event,) = self.h.deal.events.Swept().process_receipt(sent.receipt, errors=DISCARD)
        assert event["args"]["amount"] == expected >= 0
        self._done("sweep of the carry" if any(released) else "sweep")
        if paid_down:
            for k in range(N):
                self.released[k] += released[k]
                self.carry[k] = 0
        self.swept += expected
        self.cash[to] += expected

    def _period(self, kind: str, x: int, y: int) -> None:
        """A period report: the chain must split it exactly as the model, field by field; a
        refused one must be refused by name and change nothing."""
        report = _report(kind, x, y, self.state.pool_balance)
        b1 = self.state.pool_balance - report.principal - report.defaults
        number = self.state.period + 1
        servicer = self.h.roles.servicer
        post = self.h.deal.functions.postReport
        try:
            expected, new_state = run_period(PARAMS, self.state, report)
        except WaterfallError:
            err = self._refused(post(number, report.interest, report.principal, report.recoveries, report.defaults,
                                     0, ROOT, 1), servicer)
            assert err.name in ("DefaultsExceedPoolBalance", "PrincipalAndDefaultsExceedPoolBalance")
            assert kind in ("too_many_defaults", "too_much_principal")
            return
        if kind == "bad_b1":
            err = self._refused(post(number, report.interest, report.principal, report.recoveries, report.defaults,
                                     b1 + 1, ROOT, 1), servicer)
            assert (err.name, err.args_) == ("PoolBalanceMismatch", {"expected": b1, "reported": b1 + 1})
            return
        check_conservation(expected)
        self._done("postReport")
        onchain = D.post_report(self.h, report=report, loan_root=ROOT, loan_count=1)
        assert onchain == expected
        assert D.read_period(self.h, n=number) == expected
        self.state = new_state
        assert D.read_state(self.h) == self.state
        self.cash[self.env.fee_recipient] += expected.fee_paid
        for k, t in enumerate(expected.tranches):
            self.book.credit(k, t.cash_paid)

    @rule(i=wallet_ix, caller=st.sampled_from(["holder", "paying agent", "other"]), owed_only=st.booleans())
    def claim(self, i: int, caller: str, owed_only: bool) -> None:
        """A holder (or the paying agent for it) claims exactly the whole base units of its
        entitlement; nothing owed is refused by name; a frozen, revoked or expired holder is
        refused (its cash stays), and so is any other caller. `owed_only` picks among the wallets
        owed something, when there are any."""
        self._step()
        owing = [w for w in self.w if any(self.ent[k][w] >= M for k in range(N))]
        who = owing[i % len(owing)] if owed_only and owing else self.w[i]
        owed = [self.ent[k][who] // M for k in range(N)]
        mask = sum(1 << k for k in range(N) if owed[k])
        if caller == "other":
            other = self.w[(self.w.index(who) + 1) % len(self.w)]
            err = self._refused(self.h.deal.functions.claimTranches(who, mask or 1), other)
            assert err.name == "AccessControlUnauthorizedAccount"
            return
        if not sum(owed):
            err = self._refused(self.h.deal.functions.claim(), who)
            assert err.name == "NothingToClaim"
            return
        sender = self.h.roles.operator if caller == "paying agent" else who
        if not self._eligible(who, _now(self.chain)):
            err = self._refused(self.h.deal.functions.claimTranches(who, mask), sender)
            code = 4 if self.frozen[who] else 2
            assert (err.name, err.args_) == ("ClaimRestricted", {"holder": who.lower(), "code": code})
            return
        self._done("claim")
        got = D.claim(self.h, holder=who, sender=sender)
        assert got == sum(owed)
        for k in range(N):
            self.ent[k][who] -= owed[k] * M
            self.claimed[k] += owed[k]
        self.cash[who] += got

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def cash_is_conserved(self) -> None:
        self._check()
        v = self._view()
        paid, claimed, owed, dust = v["ledger"]
        released = [v[("released", k)] for k in range(N)]
        assert v["held"] + v["swept"] == v["reserve"] + sum(owed) + sum(dust) + self.strays + sum(released)
        assert v["swept"] == self.swept
        for k in range(N):
            assert paid[k] == claimed[k] + owed[k] + dust[k] + released[k]
        assert list(paid) == self.paid and list(claimed) == self.claimed and released == self.released
        assert {w: v[("cash", w)] for w in self.cash} == self.cash

    @invariant()
    def units_add_up(self) -> None:
        self._check()
        v = self._view()
        for k in range(N):
            held = {w: v[("units", k, w)] for w in self.w}
            assert sum(held.values()) == v[("supply", k)] == self.issued[k]
            assert held == self.units[k]

    @invariant()
    def claims_never_exceed_payments(self) -> None:
        self._check()
        v = self._view()
        paid, claimed, owed, _ = v["ledger"]
        for k in range(N):
            claimable = [v[("claimable", w)][k] for w in self.w]
            assert sum(claimable) + claimed[k] <= paid[k]
            assert sum(claimable) <= owed[k]
            assert claimable == [self.ent[k][w] // M for w in self.w]
            assert (v[("points", k)], v[("carry", k)]) == (self.points[k], self.carry[k])

    @invariant()
    def tranches_add_up_to_the_pool(self) -> None:
        self._check()
        v = self._view()
        total = sum(v[("tranche", k)][4] for k in range(N))
        if v["triggerBreached"]:
            assert total <= v["poolBalance"]
        else:
            assert total == v["poolBalance"]

    @invariant()
    def ineligible_wallets_gain_nothing(self) -> None:
        self._check()
        v = self._view()
        now = _now(self.chain)
        for w in self.w:
            if not self._eligible(w, now):
                for k in range(N):
                    # the one exception, by design: closing gives the unsold units to the originator whatever its status
                    allowed = self.before[k][w] + self.closing_grant.get((k, w), 0)
                    assert v[("units", k, w)] <= allowed, f"ineligible {w} gained tranche {k} units"

    @invariant()
    def chain_equals_model(self) -> None:
        self._check()
        v = self._view()
        tranches = [v[("tranche", k)] for k in range(N)]
        onchain = DealState(period=v["periodCount"], pool_balance=v["poolBalance"],
                            tranche_balances=[t[4] for t in tranches], unpaid_interest=[t[5] for t in tranches],
                            unpaid_fee=v["unpaidFee"], reserve=v["reserve"],
                            cumulative_defaults=v["cumulativeDefaults"], trigger_breached=v["triggerBreached"])
        assert onchain == self.state
        assert D.PHASES[v["phase"]] == self.phase
        now = _now(self.chain)
        assert {w: v[("eligible", w)] for w in self.w} == {w: self._eligible(w, now) for w in self.w}


def test_random_deal_lives_keep_every_invariant(deal_env: Env) -> None:
    start = time.monotonic()
    try:
        run_state_machine_as_test(lambda: DealMachine(deal_env), settings=PROFILE)
    finally:
        print(f"\n{'soak' if SOAK else 'invariants'}: {COUNTS['examples']} examples, {COUNTS['steps']} steps, "
              f"{COUNTS['checks']} invariant checks in {time.monotonic() - start:.0f} s")
        if LENGTHS:
            ranked = sorted(LENGTHS)
            print(f"steps per example: min {ranked[0]}, median {ranked[len(ranked) // 2]}, max {ranked[-1]}; "
                  f"{sum(n >= STEPS for n in ranked)} examples ran all {STEPS} steps")
        print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(OUTCOMES.items())))
    assert COUNTS["steps"] > COUNTS["examples"] and COUNTS["checks"] >= 6 * COUNTS["steps"]


# -- the checks can fail -------------------------------------------------------------------------

INVARIANTS = ("cash_is_conserved", "units_add_up", "claims_never_exceed_payments", "tranches_add_up_to_the_pool",
              "ineligible_wallets_gain_nothing", "chain_equals_model")


def _failing(machine: DealMachine, edit: Callable[[dict[Any, Any]], None] | None = None) -> dict[str, str]:
    """The invariants that fail on the chain as it is now (or on its read-back after `edit`),
    with their assertion messages."""
    machine._read = None
    if edit is not None:
        edit(machine._view())
    failed = {}
    for name in INVARIANTS:
        try:
            getattr(machine, name)()
        except AssertionError as exc:
            failed[name] = str(exc)
    machine._read = None
    return failed


def test_each_invariant_catches_what_it_guards(deal_env: Env) -> None:
    """Change the chain behind the model's back, or what was read back from it, one thing at a
    time: the invariant that guards it fails (others may too); untouched, all pass."""
    machine = DealMachine(deal_env)
    chain, h, w = machine.chain, machine.h, machine.w
    boss = h.roles.admin
    try:
        machine.offering(subs=[(1, 0, 500), (2, 1, 1_000)], close_now=True, reports=[("normal", 123_456, 654_321)])
        machine.claim(i=1, caller="holder", owed_only=False)
        assert _failing(machine) == {}

        def on_chain(change: Callable[[], object]) -> dict[str, str]:
            snap = chain.snapshot()
            try:
                change()
                return _failing(machine)
            finally:
                chain.revert(snap)

        def donate() -> None:  # the deal then holds more than reserve + owed + dust
            chain.send(h.settlement.functions.transfer(h.deal.address, 1), sender=boss)

        def sneak() -> None:  # w[5], never registered, ends up holding units it was never eligible for
            D.add_investors(h, investors=[w[5]], eligible_until=_now(chain) + 10 * DAY)
            D.transfer(h, tranche=0, sender=w[1], to=w[5], units=1)
            D.revoke_investors(h, investors=[w[5]])

        assert "cash_is_conserved" in on_chain(donate)
        assert "units_add_up" in on_chain(lambda: D.transfer(h, tranche=0, sender=w[1], to=w[2], units=1))
        assert "ineligible_wallets_gain_nothing" in on_chain(sneak)
        unmodelled = on_chain(lambda: D.post_report(h, report=PeriodReport(1_000, 0, 0, 0), loan_root=ROOT,
                                                    loan_count=1))
        assert {"chain_equals_model", "claims_never_exceed_payments", "cash_is_conserved"} <= set(unmodelled)
        assert "chain_equals_model" in on_chain(lambda: D.freeze(h, investors=[w[3]]))

        def overpay(v: dict[Any, Any]) -> None:  # holders could claim more than the tranche was paid
            claimable = list(v[("claimable", w[0])])
            claimable[2] = v["ledger"][0][2] + 1
            v[("claimable", w[0])] = tuple(claimable)

        assert "<=" in _failing(machine, overpay)["claims_never_exceed_payments"]

        def below_pool(v: dict[Any, Any]) -> None:  # tranche A one unit short, trigger not breached
            t = list(v[("tranche", 0)])
            t[4] -= 1
            v[("tranche", 0)] = tuple(t)

        assert "tranches_add_up_to_the_pool" in _failing(machine, below_pool)
        assert _failing(machine) == {}
    finally:
        machine.teardown()
