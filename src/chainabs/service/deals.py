"""A deal's operations, each checking its own preconditions before any transaction is sent.

The CLI, the API's operator routes and the demo call these and nothing below them: a refused
operation raises a typed error from chainabs.errors (NotFound, InvalidInput, WrongPhase,
InsufficientFunds, NotEligible, Conflict) with the reason in one sentence, and changes nothing.
A deal is named by its pool (`pool`: the pool's name; None: the only pool of the data dir).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_utils import to_checksum_address
from web3.exceptions import Web3Exception

from chainabs import deal as deals
from chainabs.chain import Sent
from chainabs.context import Context
from chainabs.datadir import DataDir, DealRecord, PartialDeal
from chainabs.dealfile import DealFile
from chainabs.errors import (
    ChainabsError,
    Conflict,
    ContractRevert,
    InsufficientFunds,
    InvalidInput,
    NotEligible,
    NotFound,
    WrongPhase,
)
from chainabs.pool import PoolFiles, find_pool
from chainabs.tape import format_day
from chainabs.waterfall import DealParams

FAR_FUTURE = 2**39  # eligible-until for the originator's own account, and the default (fits uint40)
MAX_UNTIL = 2**40   # the registry keeps eligible-until as a uint40
TRADE_WINDOW = 3_600  # seconds a trade's signed order stays valid


@dataclass(frozen=True)
class InvestorsChanged:
    """Investors added (eligible until `eligible_until`, unix seconds) or frozen / unfrozen."""

    pool: str  # the pool's slug
    investors: list[str]
    eligible_until: int | None
    transactions: list[Sent]


@dataclass(frozen=True)
class TrancheMove:
    """Units of one tranche bought, moved or traded."""

    pool: str
    tranche: int
    symbol: str
    units: int
    transactions: list[Sent]


# -- the deal of a pool ----------------------------------------------------------------------------

def open_deal(ctx: Context, name: str | None = None) -> tuple[deals.DealHandle, PoolFiles]:
    """The deal of the named pool, or of the only pool in the data dir."""
    data = DataDir(ctx.data_dir)
    files = find_pool(data, name)
    record = data.read_deal(files.dir.slug)
    if record is None:
        raise NotFound(f"pool {files.record.name!r} has no deal yet: run `chainabs deal create`")
    roles = deals.DealRoles(**record.roles)
    handle = deals.load_deal(ctx.chain, deal=record.deal, exchange=record.contracts["TrancheExchange"], roles=roles)
    return handle, files


def tranche_index(handle: deals.DealHandle, tranche: str | int) -> int:
    """A tranche by index (0 = most senior) or by symbol or name."""
    specs = handle.params.tranches
    text = str(tranche)
    if text.isdecimal():
        k = int(text)
        if k >= len(specs):
            raise NotFound(f"no tranche {k}: the deal's tranches are 0 to {len(specs) - 1} "
                           f"({', '.join(t.symbol for t in specs)})")
        return k
    for k, spec in enumerate(specs):
        if spec.symbol.lower() == text.lower() or spec.name.lower() == text.lower():
            return k
    raise NotFound(f"no tranche {text!r}; tranches are " + ", ".join(t.symbol for t in specs))


def need_phase(handle: deals.DealHandle, wanted: str, doing: str) -> None:
    """WrongPhase unless the deal's offering is `wanted` (pending, open or closed)."""
    now = deals.phase(handle)
    if now != wanted:
        raise WrongPhase(doing, now, wanted)


def cash(handle: deals.DealHandle, who: str) -> int:
    """Settlement base units `who` holds."""
    return int(handle.chain.call(handle.settlement.functions.balanceOf(who)))


def need_cash(handle: deals.DealHandle, who: str, amount: int, doing: str) -> None:
    """InsufficientFunds unless `who` holds `amount` settlement units."""
    held = cash(handle, who)
    if held < amount:
        raise InsufficientFunds(f"cannot {doing}: {who} holds {held} settlement units, {amount} are needed")


def _chain_time(ctx: Context) -> int:
    return int(ctx.chain.w3.eth.get_block("latest")["timestamp"])


# -- creating a deal -------------------------------------------------------------------------------

def create_deal(ctx: Context, *, dealfile: DealFile, pool: str | None = None) -> deals.DealHandle:
    """Deploy the deal's contracts over a filled pool and open the offering; resumable.

    Once the registry, deal and exchange are deployed their addresses are kept in
    `<slug>.json.partial`; a run after an interruption finishes that deal (attaching the tokens,
    pledging the pool, registering the originator, opening the offering as far as not done)
    instead of deploying another. The deal file `<slug>.json` is written last.

    Roles: those the deal file's [roles] section names, every other one the deploying account's
    (`ctx.chain.accounts[0]`, which also deploys and, as the pool's originator, pledges the pool).
    Creating the deal signs as `compliance` (attaching the tokens, registering the originator)
    and as `operator` (opening the offering): this chainabs must hold their keys.
    """
    data = DataDir(ctx.data_dir)
    files = find_pool(data, pool or dealfile.pool.name)
    record = files.record
    pool_slug = files.dir.slug
    if record.status != "filled" or not record.address:
        raise Conflict(f"pool {record.name!r} is not fully minted yet: run `chainabs pool create` again")
    if data.has_deal(pool_slug):
        raise Conflict(f"pool {record.name!r} already has a deal ({data.deal_path(pool_slug)})")
    if not dealfile.has_tranches:
        raise InvalidInput("the deal file has no [deal] and [[tranches]] sections")
    params = dealfile.deal_params(record.outstanding_units)
    settlement = dealfile.pool.settlement_token
    if settlement is not None:
        check_settlement_token(ctx, settlement, decimals=dealfile.pool.decimals)
    deployer = ctx.chain.accounts[0]
    partial = data.read_partial_deal(pool_slug)
    if partial is not None:
        handle = _resume_deal(ctx, data.partial_deal_path(pool_slug), partial, params,
                              settlement or ctx.core.contracts["SettlementToken"])
    else:
        roles = deals.DealRoles.with_default(deployer, dealfile.chosen_roles())
        _need_signers(ctx, roles)
        handle = deals.deploy_deal(ctx.chain, manifest=ctx.core, pool=record.address, params=params,
                                   roles=roles, settlement=settlement, attach=False, deployer=deployer)
        data.write_partial_deal(pool_slug, PartialDeal(contracts=handle.addresses, roles=asdict(handle.roles)))
    roles = handle.roles
    _need_signers(ctx, roles)
    deals.attach_tokens(handle)
    deals.pledge_pool(handle, sender=deployer)
    if not deals.is_eligible(handle, investor=roles.originator):
        deals.add_investors(handle, investors=[roles.originator], eligible_until=FAR_FUTURE)
    if deals.phase(handle) == "pending":
        deals.open_offering(handle)
    data.write_deal(DealRecord(
        slug=pool_slug, name=record.name, pool=record.address, cutoff_day=dealfile.pool.cutoff_day,
        contracts={k: v for k, v in handle.addresses.items() if k not in ("LoanPool", "SettlementToken")},
        roles=asdict(roles), params=params))
    data.remove_partial_deal(pool_slug)
    return handle


def _need_signers(ctx: Context, roles: deals.DealRoles) -> None:
    """InvalidInput unless this chainabs can sign as the roles that creating a deal acts as."""
    held = {a.lower() for a in ctx.chain.accounts}
    for key, doing in (("compliance", "attaches the tranche tokens to the registry and registers the originator"),
                       ("operator", "opens the offering")):
        address = getattr(roles, key)
        if address.lower() not in held:
            raise InvalidInput(f"roles.{key} {address} is not an account this chainabs can sign for: deal create "
                               f"{doing} as that role; give its key too (CHAINABS_PRIVATE_KEY takes several, "
                               f"comma-separated) or leave roles.{key} out of the deal file")


def _resume_deal(ctx: Context, path: Path, partial: PartialDeal, params: DealParams,
                 settlement: str) -> deals.DealHandle:
    """The half-created deal recorded at `path`, if it is on chain with these terms and
    settles in `settlement`."""
    contracts = partial.contracts
    if not bytes(ctx.chain.w3.eth.get_code(to_checksum_address(contracts["Deal"]))):
        raise Conflict(f"{path} names a deal at {contracts['Deal']} that is not on this chain "
                       "(a reset node?); remove the file to deploy a new one")
    handle = deals.load_deal(ctx.chain, deal=contracts["Deal"], exchange=contracts["TrancheExchange"],
                             roles=deals.DealRoles(**partial.roles))
    if handle.params != params or handle.settlement.address.lower() != settlement.lower():
        raise Conflict(f"{path} is a half-created deal with other terms than this deal file; "
                       "use that deal file, or remove the .partial file to deploy a new deal")
    return handle


def check_settlement_token(ctx: Context, address: str, *, decimals: int) -> None:
    """The deal file's `pool.settlement_token` must be an ERC-20 on this chain with the pool's
    decimals: amounts on the tape and in the deal are base units of it."""
    where = f"pool.settlement_token {address}"
    if not bytes(ctx.chain.w3.eth.get_code(to_checksum_address(address))):
        raise InvalidInput(f"{where}: no contract at that address on chain {ctx.chain.chain_id}")
    token = ctx.chain.contract("SettlementToken", address)
    try:
        onchain = int(ctx.chain.call(token.functions.decimals()))
    except (ChainabsError, Web3Exception):
        raise InvalidInput(f"{where}: not an ERC-20 token (it has no decimals())") from None
    if onchain != decimals:
        raise InvalidInput(f"{where} has {onchain} decimals; the deal file's pool.decimals is {decimals}")


# -- investors -------------------------------------------------------------------------------------

def add_investors(ctx: Context, *, investors: Sequence[str], until_day: int | None = None, jurisdiction: int = 840,
                  pool: str | None = None, until_label: str = "eligible_until") -> InvestorsChanged:
    """Make investors eligible until the start of `until_day` (days since 1970-01-01, UTC;
    None: no end) in a jurisdiction (ISO 3166-1 numeric). `until_label` is how the caller's
    user named the day (`--until`, `eligible_until`), for the message refusing it."""
    until = FAR_FUTURE if until_day is None else until_day * 86_400
    if until >= MAX_UNTIL:
        raise InvalidInput(f"{until_label} is out of range")
    handle, files = open_deal(ctx, pool)
    if until_day is not None and until <= _chain_time(ctx):
        raise InvalidInput(f"{until_label} {format_day(until_day)} is not after the chain's current time")
    sent = deals.add_investors(handle, investors=investors, eligible_until=until, jurisdiction=jurisdiction)
    return InvestorsChanged(pool=files.dir.slug, investors=list(investors), eligible_until=until, transactions=sent)


def freeze_investors(ctx: Context, *, investors: Sequence[str], frozen: bool = True,
                     pool: str | None = None) -> InvestorsChanged:
    """Freeze (or with frozen=False unfreeze) investors in the registry and every tranche."""
    handle, files = open_deal(ctx, pool)
    sent = deals.freeze(handle, investors=investors, frozen=frozen)
    return InvestorsChanged(pool=files.dir.slug, investors=list(investors), eligible_until=None, transactions=[sent])


# -- the offering ----------------------------------------------------------------------------------

def fund(ctx: Context, *, to: str, amount: int) -> Sent:
    """Mint dev settlement tokens (only the dev token of embedded and local chains can)."""
    token = ctx.chain.contract("SettlementToken", ctx.core.contracts["SettlementToken"])
    return ctx.chain.send(token.functions.mint(to, amount), sender=ctx.core.deployer)


def subscribe(ctx: Context, *, investor: str, tranche: str | int, units: int, pool: str | None = None) -> TrancheMove:
    """The investor buys `units` of a tranche at par, delivery versus payment. Refused before
    payment when the offering, the tranche's unsold units, the investor's eligibility or cash
    do not allow it."""
    handle, files = open_deal(ctx, pool)
    k = tranche_index(handle, tranche)
    try:  # phase, tranche and unsold units are checked before payment: the call shows them
        handle.chain.call(handle.deal.functions.subscribe(k, units))
    except ContractRevert as exc:
        if not exc.name.startswith("ERC20Insufficient"):
            raise
    if not deals.is_eligible(handle, investor=investor):
        raise NotEligible(f"cannot subscribe: {investor} is not an eligible investor (`chainabs investors add` it)")
    need_cash(handle, investor, units, "subscribe")
    sent = deals.subscribe(handle, investor=investor, tranche=k, units=units)
    return TrancheMove(pool=files.dir.slug, tranche=k, symbol=handle.params.tranches[k].symbol, units=units,
                       transactions=[sent])


def close_offering(ctx: Context, *, pool: str | None = None) -> Sent:
    """Close the offering: unsold units to the originator, which funds the initial reserve."""
    handle, _ = open_deal(ctx, pool)
    need_phase(handle, "open", "close the offering")
    need_cash(handle, handle.roles.originator, handle.params.initial_reserve,
              "close the offering (the initial reserve)")
    return deals.close(handle)


# -- holders ---------------------------------------------------------------------------------------

def transfer(ctx: Context, *, sender: str, to: str, tranche: str | int, units: int,
             pool: str | None = None) -> TrancheMove:
    """Move units between eligible investors (a restricted transfer reverts, naming its code)."""
    handle, files = open_deal(ctx, pool)
    k = tranche_index(handle, tranche)
    sent = deals.transfer(handle, tranche=k, sender=sender, to=to, units=units)
    return TrancheMove(pool=files.dir.slug, tranche=k, symbol=handle.params.tranches[k].symbol, units=units,
                       transactions=[sent])


def trade(ctx: Context, *, seller: str, buyer: str, tranche: str | int, units: int, price: int,
          pool: str | None = None) -> TrancheMove:
    """An atomic trade: the seller signs an order for the buyer (valid for TRADE_WINDOW
    seconds), the buyer fills it, units against `price` settlement units in one transaction."""
    handle, files = open_deal(ctx, pool)
    k = tranche_index(handle, tranche)
    code = deals.restriction(handle, tranche=k, sender=seller, to=buyer, units=units)
    if code:
        message = handle.chain.call(handle.token(k).functions.messageForTransferRestriction(code))
        raise NotEligible(f"cannot trade: the transfer is restricted (code {code}, {message})")
    held = int(handle.chain.call(handle.token(k).functions.balanceOf(seller)))
    if held < units:
        raise InsufficientFunds(f"cannot trade: the seller {seller} holds {held} units of tranche {k}, not {units}")
    need_cash(handle, buyer, price, "trade")
    order = deals.sign_order(handle, seller=seller, tranche=k, units=units, price=price,
                             deadline=_chain_time(ctx) + TRADE_WINDOW, buyer=buyer)
    sent = deals.fill_order(handle, order=order, buyer=buyer)
    return TrancheMove(pool=files.dir.slug, tranche=k, symbol=handle.params.tranches[k].symbol, units=units,
                       transactions=[sent])


def claim(ctx: Context, *, holder: str, pool: str | None = None) -> int:
    """Pay `holder` everything owed across tranches; returns the base units paid."""
    handle, _ = open_deal(ctx, pool)
    return deals.claim(handle, holder=holder)
