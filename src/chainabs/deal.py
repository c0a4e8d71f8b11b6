"""A deal on chain: deploy it over a filled LoanPool, issue and trade its tranches, post
period reports and read every period back as the reference model's `PeriodResult`.

The contracts are InvestorRegistry (who may hold), Deal (offering, waterfall, claims; it
deploys one TrancheToken per tranche) and TrancheExchange (signed-order DvP trades). Every
function here takes the `DealHandle` first and everything else by keyword; reverts surface as
`ContractRevert` naming the custom error (for example `TransferRestricted(code=3)`).

Admin seats. The deal, its tranche tokens and its registry each have their own admin, and each
admin seat is an AdminTimelock (OpenZeppelin's TimelockController) whose proposer is the
party in `DealRoles` (`admin`, `token_admin`, `registry_admin`): every role change, fee
recipient change or sweep is scheduled in public and runs only `admin_delay` seconds later
(`admin_call(...).schedule()`, then `.execute()`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from eth_utils import to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD

from chainabs import merkle
from chainabs.build import load_artifact
from chainabs.chain import Chain, Sent
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert, DealError, NotFound
from chainabs.pool import batch_end, mint_batch
from chainabs.waterfall import DealParams, DealState, PeriodReport, PeriodResult, TrancheResult, TrancheSpec

MAGNITUDE = 2**32  # TrancheToken.MAGNITUDE: entitlements are kept in 1 / MAGNITUDE base units
RESTRICTIONS = {
    0: "SUCCESS",
    1: "PAUSED",
    2: "SENDER_NOT_ELIGIBLE",
    3: "RECEIVER_NOT_ELIGIBLE",
    4: "SENDER_FROZEN",
    5: "RECEIVER_FROZEN",
}
PHASES = ("pending", "open", "closed")  # Deal.Phase; nothing ends a closed deal: reports never stop
DEFAULT_BATCH = 400  # investors per registry or allocation transaction
ORDER_TYPES = {
    "Order": [
        {"name": "seller", "type": "address"},
        {"name": "tranche", "type": "address"},
        {"name": "units", "type": "uint256"},
        {"name": "price", "type": "uint256"},
        {"name": "buyer", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
        {"name": "lastPeriod", "type": "uint256"},
    ]
}
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_SALT = b"\x00" * 32
ADMIN_DELAY = 2 * 86_400  # default wait of every admin seat's timelock (and of an admin handover)
MIN_ADMIN_DELAY = 86_400  # the contracts' floor on both (FlooredAdminRules, AdminTimelock.MIN_DELAY)
SEATS = ("deal", "tokens", "registry")  # the admin seats: one timelock each


@dataclass(frozen=True)
class DealRoles:
    """Who does what in a deal. `compliance` manages the registry, `agent` the tokens.

    `admin`, `token_admin` and `registry_admin` propose on the timelocks that hold the admin
    seats of the deal, of its tranche tokens and of its registry ("" = the same as `admin`).
    The field names are the keys of a deal file's [roles] section."""

    admin: str
    operator: str
    servicer: str
    originator: str
    fee_recipient: str
    compliance: str
    agent: str
    token_admin: str = ""
    registry_admin: str = ""

    @classmethod
    def single(cls, address: str) -> DealRoles:
        """One address in every role (a demo or a test)."""
        return cls(*(address,) * len(fields(cls)))

    @classmethod
    def with_default(cls, default: str, chosen: Mapping[str, str]) -> DealRoles:
        """`chosen` roles by field name; every role not named is held by `default`."""
        return cls(**{f.name: chosen.get(f.name) or default for f in fields(cls)})

    def proposer(self, seat: str) -> str:
        """Who proposes on the timelock of `seat` ("deal", "tokens" or "registry")."""
        chosen = {"deal": self.admin, "tokens": self.token_admin, "registry": self.registry_admin}[seat]
        return chosen or self.admin


@dataclass
class DealHandle:
    """A deployed deal: its contracts and what it was deployed with."""

    chain: Chain
    params: DealParams
    roles: DealRoles
    deal: Contract
    registry: Contract
    exchange: Contract
    settlement: Contract
    pool: str
    tokens: list[Contract] = field(default_factory=list)
    timelocks: dict[str, Contract] = field(default_factory=dict)  # admin seat -> its AdminTimelock

    @property
    def addresses(self) -> dict[str, str]:
        out = {"Deal": self.deal.address, "InvestorRegistry": self.registry.address,
               "TrancheExchange": self.exchange.address, "SettlementToken": self.settlement.address,
               "LoanPool": self.pool}
        pairs = zip(self.params.tranches, self.tokens, strict=True)
        out.update({f"TrancheToken:{spec.symbol}": t.address for spec, t in pairs})
        out.update({f"AdminTimelock:{seat}": t.address for seat, t in self.timelocks.items()})
        return out

    def token(self, tranche: int) -> Contract:
        if not 0 <= tranche < len(self.tokens):
            raise DealError("tranche", f"no tranche {tranche}; the deal has {len(self.tokens)}")
        return self.tokens[tranche]


@dataclass(frozen=True)
class Holding:
    """One holder's position, per tranche (most senior first), in base units."""

    units: tuple[int, ...]
    principal: tuple[int, ...]  # units * T_k / face_k, rounded down
    claimable: tuple[int, ...]


@dataclass(frozen=True)
class CashLedger:
    """Per tranche: cash credited, claimed, owed to holders and rounding dust (paid = the rest)."""

    paid: tuple[int, ...]
    claimed: tuple[int, ...]
    owed: tuple[int, ...]
    dust: tuple[int, ...]


@dataclass(frozen=True)
class SignedOrder:
    """A seller's EIP-712 order for the deal's TrancheExchange, and its signature."""

    seller: str
    tranche: str  # the tranche token's address
    units: int
    price: int
    buyer: str  # ZERO_ADDRESS: anyone may fill
    nonce: int
    deadline: int
    last_period: int  # the order can be filled while the deal has run at most this many periods
    signature: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.seller, self.tranche, self.units, self.price, self.buyer, self.nonce, self.deadline,
                self.last_period)


@dataclass(frozen=True)
class AdminCall:
    """One call made by an admin seat through its timelock: `schedule()` it (public from then
    on), wait the seat's delay, then `execute()` it. `salt` tells apart two identical calls."""

    handle: DealHandle
    seat: str
    target: str
    data: bytes
    salt: bytes = ZERO_SALT

    @property
    def timelock(self) -> Contract:
        try:
            return self.handle.timelocks[self.seat]
        except KeyError:
            raise DealError("seat", f"the {self.seat} admin seat is not a timelock of this deal") from None

    def schedule(self, *, sender: str | None = None) -> Sent:
        delay = int(self.handle.chain.call(self.timelock.functions.getMinDelay()))
        fn = self.timelock.functions.schedule(self.target, 0, self.data, ZERO_SALT, self.salt, delay)
        return self.handle.chain.send(fn, sender=sender or self.handle.roles.proposer(self.seat))

    def execute(self, *, sender: str | None = None) -> Sent:
        fn = self.timelock.functions.execute(self.target, 0, self.data, ZERO_SALT, self.salt)
        return self.handle.chain.send(fn, sender=sender or self.handle.roles.proposer(self.seat))

    def ready_at(self) -> int:
        """The unix second from which `execute` runs (0: not scheduled; 1: done)."""
        op = self.handle.chain.call(self.timelock.functions.hashOperation(self.target, 0, self.data, ZERO_SALT,
                                                                          self.salt))
        return int(self.handle.chain.call(self.timelock.functions.getTimestamp(op)))


def admin_call(handle: DealHandle, *, seat: str, call: Any, salt: bytes = ZERO_SALT) -> AdminCall:
    """`call` (a bound contract function, e.g. `handle.deal.functions.setFeeRecipient(a)`) as
    an operation of the `seat` admin's timelock."""
    contract = handle.chain.w3.eth.contract(address=call.address, abi=call.contract_abi)
    data = bytes.fromhex(contract.encode_abi(call.abi_element_identifier, args=list(call.args)).removeprefix("0x"))
    return AdminCall(handle=handle, seat=seat, target=to_checksum_address(call.address), data=data, salt=salt)


# -- deployment --------------------------------------------------------------------------------

def deploy_filled_pool(chain: Chain, *, manifest: Manifest, outstanding: Sequence[int], admin: str | None = None,
                       originator: str | None = None, name: str = "demo pool", currency: str = "USD") -> Contract:
    """A LoanPool holding one loan per `outstanding` amount, committed and fully minted.

    For demos, tests and benchmarks; real pools come from a loan tape. B_initial is the sum.
    """
    admin = admin or chain.accounts[0]
    originator = originator or admin
    loan_token = chain.contract("LoanToken", manifest.contracts["LoanToken"])
    pool = chain.deploy("LoanPool", loan_token.address, admin, originator, name, currency, sender=admin)
    minter = chain.call(loan_token.functions.MINTER_ROLE())
    chain.send(loan_token.functions.grantRole(minter, pool.address), sender=manifest.deployer)
    total = sum(outstanding)
    hashes = [os.urandom(32) for _ in outstanding]
    tree = merkle.MerkleTree.from_leaves([merkle.leaf_from_loan_hash(h) for h in hashes])
    chain.send(pool.functions.commitTape(tree.root, len(outstanding), total, total), sender=originator)
    salt = os.urandom(8).hex()
    ids, order, minted = [f"{salt}-{i}" for i in range(len(outstanding))], tree.sorted_indices(), 0
    while minted < len(order):
        end = batch_end(tree, minted, len(order))
        batch = mint_batch(tree, ids, hashes, order[minted:end])
        chain.send(pool.functions.mintLoans(batch.packed_ids, batch.loan_hashes, batch.proof), sender=originator)
        minted = end
    return pool


def deploy_timelock(chain: Chain, *, proposer: str, delay: int = ADMIN_DELAY, sender: str | None = None) -> Contract:
    """An AdminTimelock whose only proposer (and executor) is `proposer`, with `delay` seconds
    between scheduling an operation and running it (the contract refuses under a day)."""
    return chain.deploy("AdminTimelock", delay, [proposer], [proposer], sender=sender or proposer)


def deploy_deal(chain: Chain, *, manifest: Manifest, pool: str, params: DealParams, roles: DealRoles,
                registry: str | None = None, settlement: str | None = None, attach: bool = True,
                admin_delay: int = ADMIN_DELAY, pool_originator: str | None = None,
                deployer: str | None = None) -> DealHandle:
    """Deploy a deal over the filled pool at `pool`: one AdminTimelock per admin seat (deal,
    tokens, and registry unless one is given), registry, deal and its tranche tokens, exchange;
    then attach the tokens to the registry and pledge the pool to the deal (sent by
    `pool_originator`, default `roles.originator`, which must hold the pool's ORIGINATOR_ROLE).
    The deal settles in the ERC-20 at `settlement` (default: the deployment's dev
    SettlementToken). `attach=False` leaves the last two steps to `attach_tokens` and
    `pledge_pool`. Every admin seat waits `admin_delay` seconds (at least a day). The contracts
    are deployed from `deployer` (default `roles.admin`), which holds no role afterwards unless
    `roles` names it."""
    params.validate()
    if not params.is_v1:  # the Deal contract runs WATERFALL.md v1; v2 parameters would be dropped
        raise DealError("deal", "revolving_periods, principal_mode, cleanup_call_bps and [[triggers]] "
                                "(WATERFALL.md v2) are not yet run by the Deal contract")
    sender = deployer or roles.admin
    seats = SEATS if registry is None else SEATS[:2]
    timelocks = {seat: deploy_timelock(chain, proposer=roles.proposer(seat), delay=admin_delay, sender=sender)
                 for seat in seats}
    if registry is None:
        reg = chain.deploy("InvestorRegistry", timelocks["registry"].address, admin_delay, roles.compliance,
                           sender=sender)
    else:
        reg = chain.contract("InvestorRegistry", registry)
    cash = chain.contract("SettlementToken", settlement or manifest.contracts["SettlementToken"])
    tranches = [(t.name, t.symbol, t.face, t.coupon_bps) for t in params.tranches]
    parameters = (params.servicer_fee_bps, params.reserve_target_bps, params.initial_reserve,
                  params.default_trigger_bps)
    parties = (timelocks["deal"].address, timelocks["tokens"].address, roles.operator, roles.servicer,
               roles.originator, roles.fee_recipient, roles.agent)
    deal = chain.deploy("Deal", cash.address, pool, reg.address, tranches, parameters, parties, admin_delay,
                        sender=sender)
    exchange = chain.deploy("TrancheExchange", deal.address, sender=sender)
    tokens = [chain.contract("TrancheToken", a) for a in chain.call(deal.functions.tokens())]
    handle = DealHandle(chain=chain, params=params, roles=roles, deal=deal, registry=reg, exchange=exchange,
                        settlement=cash, pool=to_checksum_address(pool), tokens=tokens, timelocks=timelocks)
    if attach:
        attach_tokens(handle)
        pledge_pool(handle, sender=pool_originator)
    return handle


def attach_tokens(handle: DealHandle) -> list[Sent]:
    """Attach the deal's tranche tokens to its registry (the compliance role does); those
    already attached are skipped."""
    attached = {a.lower() for a in handle.chain.call(handle.registry.functions.tokens())}
    return [handle.chain.send(handle.registry.functions.attachToken(t.address), sender=handle.roles.compliance)
            for t in handle.tokens if t.address.lower() not in attached]


def pledge_pool(handle: DealHandle, *, sender: str | None = None) -> Sent | None:
    """Pledge the deal's pool to it (the pool's originator, default `roles.originator`), unless
    it already is. A pool backs one deal: pledged to another, this raises `AlreadyPledged`."""
    pool = handle.chain.contract("LoanPool", handle.pool)
    if int(handle.chain.call(pool.functions.deal()), 16) == int(handle.deal.address, 16):
        return None
    return handle.chain.send(pool.functions.pledge(handle.deal.address), sender=sender or handle.roles.originator)


def _timelocks(chain: Chain, admins: dict[str, str]) -> dict[str, Contract]:
    """The admin seats that are contracts, as AdminTimelocks."""
    return {seat: chain.contract("AdminTimelock", a) for seat, a in admins.items()
            if bytes(chain.w3.eth.get_code(to_checksum_address(a)))}


def load_deal(chain: Chain, *, deal: str, exchange: str, roles: DealRoles) -> DealHandle:
    """A handle for a deal already on chain (the parameters are read back from it)."""
    contract = chain.contract("Deal", deal)
    tokens = [chain.contract("TrancheToken", a) for a in chain.call(contract.functions.tokens())]
    specs = []
    for k, token in enumerate(tokens):
        info = chain.call(contract.functions.tranche(k))
        specs.append(TrancheSpec(name=chain.call(token.functions.name()), symbol=chain.call(token.functions.symbol()),
                                 face=int(info[1]), coupon_bps=int(info[2])))
    f = contract.functions
    params = DealParams(tranches=tuple(specs), servicer_fee_bps=chain.call(f.servicerFeeBps()),
                        reserve_target_bps=chain.call(f.reserveTargetBps()),
                        initial_reserve=chain.call(f.initialReserve()),
                        default_trigger_bps=chain.call(f.defaultTriggerBps()))
    registry = chain.contract("InvestorRegistry", chain.call(f.registry()))
    admins = {"deal": chain.call(f.defaultAdmin()), "tokens": chain.call(tokens[0].functions.defaultAdmin()),
              "registry": chain.call(registry.functions.defaultAdmin())}
    return DealHandle(chain=chain, params=params, roles=roles, deal=contract, registry=registry,
                      exchange=chain.contract("TrancheExchange", exchange),
                      settlement=chain.contract("SettlementToken", chain.call(f.settlement())),
                      pool=chain.call(f.loanPool()), tokens=tokens, timelocks=_timelocks(chain, admins))


# -- investors ---------------------------------------------------------------------------------

def _per_investor(value: int | Sequence[int], n: int, name: str) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise DealError(name, f"{len(values)} values for {n} investors")
    return values


def add_investors(handle: DealHandle, *, investors: Sequence[str], eligible_until: int | Sequence[int],
                  jurisdiction: int | Sequence[int] = 840, sender: str | None = None,
                  batch: int = DEFAULT_BATCH) -> list[Sent]:
    """Add or update investors (eligible until a unix second, ISO 3166-1 numeric code)."""
    until = _per_investor(eligible_until, len(investors), "eligible_until")
    codes = _per_investor(jurisdiction, len(investors), "jurisdiction")
    sent = []
    for i in range(0, len(investors), batch):
        part = slice(i, i + batch)
        fn = handle.registry.functions.setInvestors(list(investors[part]), until[part], codes[part])
        sent.append(handle.chain.send(fn, sender=sender or handle.roles.compliance))
    return sent


def freeze(handle: DealHandle, *, investors: Sequence[str], frozen: bool = True, sender: str | None = None) -> Sent:
    """Freeze (or with frozen=False unfreeze) investors in the registry and every tranche."""
    return handle.chain.send(handle.registry.functions.setFrozen(list(investors), frozen),
                             sender=sender or handle.roles.compliance)


def revoke_investors(handle: DealHandle, *, investors: Sequence[str], sender: str | None = None) -> Sent:
    """Remove investors from the registry: they can no longer send or receive units."""
    return handle.chain.send(handle.registry.functions.revokeInvestors(list(investors)),
                             sender=sender or handle.roles.compliance)


def is_eligible(handle: DealHandle, *, investor: str) -> bool:
    return bool(handle.chain.call(handle.registry.functions.isEligible(investor)))


# -- offering ----------------------------------------------------------------------------------

@contextmanager
def _approved(handle: DealHandle, *, owner: str, spender: str, amount: int,
              token: Contract | None = None) -> Iterator[None]:
    """Approve `spender` for `amount` of `token` (the settlement token by default) when the
    owner's allowance is short, for the call made inside the block. If that call is refused,
    the allowance is set back to what it was: a refused operation leaves no approval behind,
    whoever called it (CLI, API or script)."""
    token = token if token is not None else handle.settlement
    before = int(handle.chain.call(token.functions.allowance(owner, spender)))
    raised = amount > 0 and before < amount
    if raised:
        handle.chain.send(token.functions.approve(spender, amount), sender=owner)
    try:
        yield
    except ContractRevert:
        if raised:
            handle.chain.send(token.functions.approve(spender, before), sender=owner)
        raise


def open_offering(handle: DealHandle, *, sender: str | None = None) -> Sent:
    return handle.chain.send(handle.deal.functions.open(), sender=sender or handle.roles.operator)


def subscribe(handle: DealHandle, *, investor: str, tranche: int, units: int) -> Sent:
    """The investor pays `units` settlement base units (par) and receives the units, atomically."""
    handle.token(tranche)
    with _approved(handle, owner=investor, spender=handle.deal.address, amount=units):
        return handle.chain.send(handle.deal.functions.subscribe(tranche, units), sender=investor)


def allocate(handle: DealHandle, *, tranche: int, allocations: Sequence[tuple[str, int]], sender: str | None = None,
             batch: int = DEFAULT_BATCH) -> list[Sent]:
    """A placement agent (the operator) pays for a batch of investors' units, atomically."""
    handle.token(tranche)
    payer = sender or handle.roles.operator
    sent = []
    with _approved(handle, owner=payer, spender=handle.deal.address, amount=sum(u for _, u in allocations)):
        for i in range(0, len(allocations), batch):
            chunk = allocations[i:i + batch]
            fn = handle.deal.functions.allocate(tranche, [a for a, _ in chunk], [u for _, u in chunk])
            sent.append(handle.chain.send(fn, sender=payer))
    return sent


def close(handle: DealHandle, *, sender: str | None = None) -> Sent:
    """Close the offering: unsold units to the originator, which funds the initial reserve."""
    with _approved(handle, owner=handle.roles.originator, spender=handle.deal.address,
                   amount=handle.params.initial_reserve):
        return handle.chain.send(handle.deal.functions.close(), sender=sender or handle.roles.operator)


def phase(handle: DealHandle) -> str:
    return PHASES[handle.chain.call(handle.deal.functions.phase())]


# -- transfers and trades ----------------------------------------------------------------------

def transfer(handle: DealHandle, *, tranche: int, sender: str, to: str, units: int) -> Sent:
    return handle.chain.send(handle.token(tranche).functions.transfer(to, units), sender=sender)


def forced_transfer(handle: DealHandle, *, tranche: int, from_: str, to: str, units: int,
                    sender: str | None = None) -> Sent:
    return handle.chain.send(handle.token(tranche).functions.forcedTransfer(from_, to, units),
                             sender=sender or handle.roles.agent)


def move_entitlement(handle: DealHandle, *, tranche: int, from_: str, to: str, sender: str | None = None) -> Sent:
    """The agent moves all of `from_`'s unclaimed cash in tranche `tranche`, without units, to
    `to` (TrancheToken.moveEntitlement)."""
    return handle.chain.send(handle.token(tranche).functions.moveEntitlement(from_, to),
                             sender=sender or handle.roles.agent)


def set_paused(handle: DealHandle, *, tranche: int, paused: bool, sender: str | None = None) -> Sent:
    fn = handle.token(tranche).functions.pause() if paused else handle.token(tranche).functions.unpause()
    return handle.chain.send(fn, sender=sender or handle.roles.agent)


def restriction(handle: DealHandle, *, tranche: int, sender: str, to: str, units: int = 0) -> int:
    """The ERC-1404 code a transfer would meet now (0: allowed); see RESTRICTIONS."""
    return int(handle.chain.call(handle.token(tranche).functions.detectTransferRestriction(sender, to, units)))


def sign_order(handle: DealHandle, *, seller: str, tranche: int, units: int, price: int, deadline: int,
               buyer: str | None = None, nonce: int | None = None, last_period: int | None = None) -> SignedOrder:
    """The seller signs an order (its key must be one of the chain's signers). It can be filled
    until `deadline` and while the deal has run at most `last_period` periods (default: the
    periods run now, so the next period report ends the order)."""
    if nonce is None:
        nonce = int(handle.chain.call(handle.exchange.functions.nonces(seller)))
    if last_period is None:
        last_period = int(handle.chain.call(handle.deal.functions.periodCount()))
    order = SignedOrder(seller=to_checksum_address(seller), tranche=handle.token(tranche).address, units=units,
                        price=price, buyer=to_checksum_address(buyer) if buyer else ZERO_ADDRESS, nonce=nonce,
                        deadline=deadline, last_period=last_period, signature=b"")
    domain = {"name": "chainabs TrancheExchange", "version": "1", "chainId": handle.chain.chain_id,
              "verifyingContract": handle.exchange.address}
    message = {k: getattr(order, k) for k in ("seller", "tranche", "units", "price", "buyer", "nonce", "deadline")}
    message["lastPeriod"] = order.last_period
    signed = handle.chain.signer(seller).sign_typed_data(domain, ORDER_TYPES, message)
    values = {f.name: getattr(order, f.name) for f in fields(order)}
    values["signature"] = bytes(signed.signature)
    return SignedOrder(**values)


def fill_order(handle: DealHandle, *, order: SignedOrder, buyer: str) -> Sent:
    """The buyer fills: units to the buyer and price to the seller in one transaction.
    Approves the exchange on both legs first (the seller's key must be a signer when its
    allowance is short)."""
    token = next(t for t in handle.tokens if t.address == order.tranche)
    with (_approved(handle, owner=order.seller, spender=handle.exchange.address, amount=order.units, token=token),
          _approved(handle, owner=buyer, spender=handle.exchange.address, amount=order.price)):
        return handle.chain.send(handle.exchange.functions.fillOrder(order.as_tuple(), order.signature), sender=buyer)


# -- servicing ---------------------------------------------------------------------------------

def post_report(handle: DealHandle, *, report: PeriodReport, loan_root: bytes, loan_count: int,
                pool_balance_end: int | None = None, period: int | None = None, sender: str | None = None
                ) -> PeriodResult:
    """Post the next period's report: the servicer pays I + P + R in and the waterfall runs.

    `pool_balance_end` is B1 as the loan-level tape adds up (default B0 - P - D, read from
    chain). Returns the period as emitted, in the reference model's dataclass.
    """
    chain, deal = handle.chain, handle.deal
    servicer = sender or handle.roles.servicer
    if period is None:
        period = int(chain.call(deal.functions.periodCount())) + 1
    if pool_balance_end is None:
        pool_balance_end = int(chain.call(deal.functions.poolBalance())) - report.principal - report.defaults
    fn = deal.functions.postReport(period, report.interest, report.principal, report.recoveries, report.defaults,
                                   max(pool_balance_end, 0), loan_root, loan_count)
    with _approved(handle, owner=servicer, spender=deal.address,
                   amount=report.interest + report.principal + report.recoveries):
        sent = chain.send(fn, sender=servicer)
    (event,) = deal.events.PeriodReported().process_receipt(sent.receipt, errors=DISCARD)
    return _period_result(event["args"]["figures"], event["args"]["tranches"])


def read_period(handle: DealHandle, *, n: int) -> PeriodResult:
    """Period `n` as stored on chain."""
    figures = handle.chain.call(handle.deal.functions.period(n))
    if int(_named(figures, _abi_fields("period"))["period"]) != n:
        raise NotFound(f"period {n} has not been run")
    return _period_result(figures, handle.chain.call(handle.deal.functions.periodTranches(n)))


def read_state(handle: DealHandle) -> DealState:
    """The carried state, as the reference model's DealState."""
    chain, f = handle.chain, handle.deal.functions
    tranches = [chain.call(f.tranche(k)) for k in range(len(handle.tokens))]
    return DealState(period=chain.call(f.periodCount()), pool_balance=chain.call(f.poolBalance()),
                     tranche_balances=[int(t[4]) for t in tranches], unpaid_interest=[int(t[5]) for t in tranches],
                     unpaid_fee=chain.call(f.unpaidFee()), reserve=chain.call(f.reserve()),
                     cumulative_defaults=chain.call(f.cumulativeDefaults()),
                     trigger_breached=bool(chain.call(f.triggerBreached())))


@cache
def _abi_fields(fn_name: str) -> list[str]:
    """The component names of a Deal view's struct output (the API's field names)."""
    for item in load_artifact("Deal")["abi"]:
        if item.get("name") == fn_name and item["type"] == "function":
            return [c["name"] for c in item["outputs"][0]["components"]]
    raise KeyError(fn_name)


def _named(value: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return dict(zip(names, value, strict=True))


def _period_result(figures: Any, tranches: Sequence[Any]) -> PeriodResult:
    p = _named(figures, _abi_fields("period"))
    names = _abi_fields("trancheResult")
    results = tuple(TrancheResult(**{f.name: int(_named(t, names)[f.name]) for f in fields(TrancheResult)})
                    for t in tranches)
    values: dict[str, Any] = {f.name: p[f.name] for f in fields(PeriodResult) if f.name != "tranches"}
    values = {k: bool(v) if k == "trigger_breached" else int(v) for k, v in values.items()}
    return PeriodResult(**values, tranches=results)


# -- holders -----------------------------------------------------------------------------------

def claim(handle: DealHandle, *, holder: str, sender: str | None = None) -> int:
    """Pay `holder` everything owed across tranches; returns the base units paid (0: nothing
    owed, no transaction). Only the tranches with something owed are touched. The sender is
    the holder (default) or a paying agent; a frozen, revoked or expired holder is refused
    (`ClaimRestricted`) and its cash stays held for it."""
    owed = claimable(handle, holder=holder)
    mask = sum(1 << k for k, amount in enumerate(owed) if amount > 0)
    if not mask:
        return 0
    sent = handle.chain.send(handle.deal.functions.claimTranches(holder, mask), sender=sender or holder)
    ours = {t.address for t in handle.tokens}
    events = handle.tokens[0].events.Claimed().process_receipt(sent.receipt, errors=DISCARD)
    return sum(int(e["args"]["amount"]) for e in events if e["address"] in ours)


def claimable(handle: DealHandle, *, holder: str) -> list[int]:
    """Base units `holder` can claim now, per tranche."""
    return [int(v) for v in handle.chain.call(handle.deal.functions.claimable(holder))]


def holdings(handle: DealHandle, *, holder: str) -> Holding:
    chain = handle.chain
    units = tuple(int(chain.call(t.functions.balanceOf(holder))) for t in handle.tokens)
    principal = tuple(int(chain.call(handle.deal.functions.principalOf(k, holder))) for k in range(len(units)))
    return Holding(units=units, principal=principal, claimable=tuple(claimable(handle, holder=holder)))


def sweep(handle: DealHandle, *, to: str, salt: bytes = ZERO_SALT) -> AdminCall:
    """The deal admin's sweep of the cash nobody is owed (stray transfers; once the pool balance
    is 0, each tranche's carry too); it ends nothing. Schedule it, wait the delay, execute it."""
    return admin_call(handle, seat="deal", call=handle.deal.functions.sweep(to), salt=salt)


def cash_ledger(handle: DealHandle) -> CashLedger:
    paid, claimed, owed, dust = handle.chain.call(handle.deal.functions.cashLedger())
    return CashLedger(paid=tuple(paid), claimed=tuple(claimed), owed=tuple(owed), dust=tuple(dust))
