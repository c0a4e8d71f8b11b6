"""Access control, generated from the ABIs: every external state-changing function of every
contract has a row saying who may call it; a stranger calling a restricted one is refused and
the intended role succeeds where a call is cheap to make. A new function without a row fails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3.logs import DISCARD

from chainabs import deal as D
from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert
from chainabs.waterfall import DealParams, TrancheSpec

ROLE_ERRORS = {"AccessControlUnauthorizedAccount", "AccessControlInvalidDefaultAdmin", "OnlyDeal", "OnlyRegistry",
               "OwnableUnauthorizedAccount", "TimelockUnauthorizedCaller"}
ANYONE = "anyone"
HOLDER = "holder or role:PAYING_AGENT"  # the holder itself, or a paying agent on its behalf
ADMIN_RULES = {  # OpenZeppelin's AccessControlDefaultAdminRules, on Deal, TrancheToken and InvestorRegistry
    "beginDefaultAdminTransfer(address)": "role:DEFAULT_ADMIN", "cancelDefaultAdminTransfer()": "role:DEFAULT_ADMIN",
    "changeDefaultAdminDelay(uint48)": "role:DEFAULT_ADMIN", "rollbackDefaultAdminDelay()": "role:DEFAULT_ADMIN",
    "acceptDefaultAdminTransfer()": "pending admin", "grantRole(bytes32,address)": "role:DEFAULT_ADMIN",
    "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN", "renounceRole(bytes32,address)": ANYONE,
}

# contract -> function signature -> who may call it ("role:<NAME>", "deal", "registry", HOLDER,
# "pending admin", "timelock itself" or "anyone"; for "anyone" rows the function acts only on the
# caller's own assets or pays a holder what it is owed).
MATRIX: dict[str, dict[str, str]] = {
    "LoanToken": {
        "approve(address,uint256)": ANYONE, "setApprovalForAll(address,bool)": ANYONE,
        "safeTransferFrom(address,address,uint256)": ANYONE, "safeTransferFrom(address,address,uint256,bytes)": ANYONE,
        "transferFrom(address,address,uint256)": ANYONE, "renounceRole(bytes32,address)": ANYONE,
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
        "mintBatch(bytes,bytes32[])": "role:MINTER",
    },
    "LoanPool": {
        "commitTape(bytes32,uint64,uint128,uint128)": "role:ORIGINATOR",
        "mintLoans(bytes,bytes32[],bytes32[])": "role:ORIGINATOR", "pledge(address)": "role:ORIGINATOR",
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
        "renounceRole(bytes32,address)": ANYONE,
    },
    "SettlementToken": {
        "approve(address,uint256)": ANYONE, "transfer(address,uint256)": ANYONE,
        "transferFrom(address,address,uint256)": ANYONE, "renounceRole(bytes32,address)": ANYONE,
        "mint(address,uint256)": "role:MINTER",
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
    },
    "InvestorRegistry": {
        **ADMIN_RULES,
        "attachToken(address)": "role:COMPLIANCE", "detachToken(address)": "role:DEFAULT_ADMIN",
        "revokeInvestors(address[])": "role:COMPLIANCE",
        "setFrozen(address[],bool)": "role:COMPLIANCE", "setInvestors(address[],uint40[],uint16[])": "role:COMPLIANCE",
        "sync(address[])": ANYONE,
    },
    "TrancheToken": {
        **ADMIN_RULES,
        "approve(address,uint256)": ANYONE, "transfer(address,uint256)": ANYONE,
        "transferFrom(address,address,uint256)": ANYONE,
        "distribute(uint256)": "deal", "mint(address,uint256)": "deal", "mintBatch(address[],uint256[])": "deal",
        "mintUnsold(address,uint256)": "deal", "redeem(address)": "deal", "releaseCarry()": "deal",
        "mirrorEligibility(address[],uint256[])": "registry",
        "forcedTransfer(address,address,uint256)": "role:AGENT", "moveEntitlement(address,address)": "role:AGENT",
        "pause()": "role:AGENT", "unpause()": "role:AGENT",
    },
    "Deal": {
        **ADMIN_RULES,
        "allocate(uint256,address[],uint256[])": "role:OPERATOR", "open()": "role:OPERATOR", "close()": "role:OPERATOR",
        "postReport(uint64,uint256,uint256,uint256,uint256,uint256,bytes32,uint64)": "role:SERVICER",
        "setFeeRecipient(address)": "role:DEFAULT_ADMIN", "sweep(address)": "role:DEFAULT_ADMIN",
        "subscribe(uint256,uint256)": ANYONE, "claim()": ANYONE,
        "claimFor(address)": HOLDER, "claimTranches(address,uint256)": HOLDER,
    },
    "TrancheExchange": {"cancelOrder(uint256)": ANYONE,
                        "fillOrder((address,address,uint256,uint256,address,uint256,uint256,uint256),bytes)": ANYONE},
    "AdminTimelock": {
        "schedule(address,uint256,bytes,bytes32,bytes32,uint256)": "role:PROPOSER",
        "scheduleBatch(address[],uint256[],bytes[],bytes32,bytes32,uint256)": "role:PROPOSER",
        "cancel(bytes32)": "role:CANCELLER",
        "execute(address,uint256,bytes,bytes32,bytes32)": "role:EXECUTOR",
        "executeBatch(address[],uint256[],bytes[],bytes32,bytes32)": "role:EXECUTOR",
        "updateDelay(uint256)": "timelock itself",
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
        "renounceRole(bytes32,address)": ANYONE,
        # token-receiver hooks: they only return their selector
        "onERC721Received(address,address,uint256,bytes)": ANYONE,
        "onERC1155Received(address,address,uint256,uint256,bytes)": ANYONE,
        "onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)": ANYONE,
    },
}


def _sig(item: dict[str, Any]) -> str:
    def t(p: dict[str, Any]) -> str:
        if p["type"].startswith("tuple"):
            return "(" + ",".join(t(c) for c in p["components"]) + ")" + p["type"][5:]
        return str(p["type"])
    return f"{item['name']}({','.join(t(p) for p in item['inputs'])})"


def _mutating(name: str) -> list[dict[str, Any]]:
    return [i for i in load_artifact(name)["abi"]
            if i["type"] == "function" and i["stateMutability"] in ("nonpayable", "payable")]


def _dummy(p: dict[str, Any], who: str) -> Any:
    kind = p["type"]
    if kind.endswith("[]"):
        return [_dummy({**p, "type": kind[:-2]}, who)]
    if kind.startswith("tuple"):
        return tuple(_dummy(c, who) for c in p["components"])
    if kind == "address":
        return who
    if kind == "bool":
        return True
    if kind.startswith("uint"):
        return 1
    if kind == "bytes32":
        return b"\x01" * 32
    if kind == "bytes":
        return b"\x02L1"
    if kind == "string":
        return "x"
    raise AssertionError(f"no dummy for {kind}")


@pytest.fixture(scope="module")
def contracts(session_chain: EmbeddedChain, core: Manifest) -> Iterator[dict[str, Any]]:
    chain = session_chain
    base = chain.snapshot()
    a = chain.accounts
    roles = D.DealRoles(admin=a[0], token_admin=a[1], registry_admin=a[2], operator=a[3], servicer=a[4],
                        originator=a[5], fee_recipient=a[4], compliance=a[6], agent=a[7])
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000], originator=roles.originator)
    params = DealParams(tranches=(TrancheSpec("A", "A", 900_000, 400), TrancheSpec("C", "C", 100_000, 0)),
                        servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500)
    handle = D.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=roles)
    chain.send(handle.settlement.functions.mint(roles.originator, 10_000), sender=core.deployer)
    yield {"LoanToken": chain.contract("LoanToken", core.contracts["LoanToken"]), "LoanPool": pool,
           "SettlementToken": handle.settlement, "InvestorRegistry": handle.registry, "TrancheToken": handle.tokens[0],
           "Deal": handle.deal, "TrancheExchange": handle.exchange, "AdminTimelock": handle.timelocks["deal"],
           "handle": handle}
    chain.revert(base)


@pytest.fixture
def deal(contracts: dict[str, Any], session_chain: EmbeddedChain) -> Iterator[D.DealHandle]:
    """The module's deal (offering pending, pool pledged), reverted after the test."""
    snap = session_chain.snapshot()
    yield contracts["handle"]
    session_chain.revert(snap)


def test_every_mutating_function_has_a_row() -> None:
    for name, rows in MATRIX.items():
        in_abi = {_sig(i) for i in _mutating(name)}
        assert in_abi == set(rows), f"{name}: missing rows {in_abi - set(rows)}, stale rows {set(rows) - in_abi}"


@pytest.mark.parametrize("name,signature", [(n, s) for n, rows in MATRIX.items() for s, who in rows.items() if who != ANYONE])
def test_a_stranger_is_refused(contracts: dict[str, Any], session_chain: EmbeddedChain, name: str, signature: str) -> None:
    chain = session_chain
    stranger = chain.accounts[9]
    # a HOLDER row is open to the holder itself: the stranger asks for someone else
    who = chain.accounts[8] if MATRIX[name][signature] == HOLDER else stranger
    item = next(i for i in _mutating(name) if _sig(i) == signature)
    fn = contracts[name].get_function_by_signature(signature)(*[_dummy(p, who) for p in item["inputs"]])
    with pytest.raises(ContractRevert) as info:
        chain.send(fn, sender=stranger)
    assert info.value.name in ROLE_ERRORS, (signature, info.value)


def _role(role: str) -> bytes:
    return b"\x00" * 32 if role == "DEFAULT_ADMIN" else keccak(text=f"{role}_ROLE")


def _after_delay(chain: EmbeddedChain, call: D.AdminCall) -> None:
    chain.time_travel(call.ready_at() + 10)


def _through_timelock(handle: D.DealHandle, seat: str, fn: Any) -> Any:
    """Schedule `fn` on `seat`'s timelock, wait the delay, run it."""
    call = D.admin_call(handle, seat=seat, call=fn)
    call.schedule()
    _after_delay(handle.chain, call)
    return call.execute()


SEAT = {"Deal": "deal", "TrancheToken": "tokens", "InvestorRegistry": "registry"}


@pytest.mark.parametrize("name,signature,role", [
    ("SettlementToken", "mint(address,uint256)", "MINTER"),
    ("TrancheToken", "pause()", "AGENT"),
    ("InvestorRegistry", "setFrozen(address[],bool)", "COMPLIANCE"),
    ("Deal", "open()", "OPERATOR"),
    ("LoanToken", "grantRole(bytes32,address)", "DEFAULT_ADMIN"),
])
def test_the_intended_role_succeeds(contracts: dict[str, Any], deal: D.DealHandle, name: str, signature: str,
                                    role: str) -> None:
    """The role is granted as the contract's admin grants it (through its seat's timelock
    where there is one), then the call succeeds for its new holder."""
    chain = deal.chain
    holder = chain.accounts[8]
    contract = contracts[name]
    grant = contract.functions.grantRole(_role(role), holder)
    if name in SEAT:
        _through_timelock(deal, SEAT[name], grant)
    else:
        chain.send(grant, sender=chain.accounts[0])
    item = next(i for i in _mutating(name) if _sig(i) == signature)
    args = [_dummy(p, holder) for p in item["inputs"]]
    assert chain.send(contract.get_function_by_signature(signature)(*args), sender=holder).receipt["status"] == 1


# -- each statement of SECURITY.md's role table ---------------------------------------------------

def _refused(thunk: Any) -> ContractRevert:
    with pytest.raises(ContractRevert) as info:
        thunk()
    return info.value


@pytest.mark.parametrize("seat,name,role", [("deal", "Deal", "SERVICER"), ("tokens", "TrancheToken", "AGENT"),
                                            ("registry", "InvestorRegistry", "COMPLIANCE")])
def test_R1_R2_every_role_change_waits_for_its_seats_timelock(contracts: dict[str, Any], deal: D.DealHandle,
                                                              seat: str, name: str, role: str) -> None:
    """R1, R2: the seat's admin is its own timelock; the proposer's key cannot grant directly; a
    scheduled grant is public (CallScheduled) and runs only after the delay."""
    chain, contract = deal.chain, contracts[name]
    timelock = deal.timelocks[seat]
    proposer = deal.roles.proposer(seat)
    assert chain.call(contract.functions.defaultAdmin()) == timelock.address
    assert chain.call(timelock.functions.getMinDelay()) == D.ADMIN_DELAY
    assert len({t.address for t in deal.timelocks.values()}) == 3  # separate admins per contract
    newcomer = chain.accounts[8]
    grant = contract.functions.grantRole(_role(role), newcomer)
    assert _refused(lambda: chain.send(grant, sender=proposer)).name == "AccessControlUnauthorizedAccount"
    call = D.admin_call(deal, seat=seat, call=grant)
    sent = call.schedule()
    (event,) = timelock.events.CallScheduled().process_receipt(sent.receipt)
    assert event["args"]["delay"] == D.ADMIN_DELAY and event["args"]["target"] == contract.address
    assert _refused(call.execute).name == "TimelockUnexpectedOperationState"  # not yet
    chain.time_travel(call.ready_at() - 60)
    assert _refused(call.execute).name == "TimelockUnexpectedOperationState"  # a minute early
    assert _refused(lambda: call.execute(sender=chain.accounts[9])).name == "AccessControlUnauthorizedAccount"
    chain.time_travel(call.ready_at() + 10)
    call.execute()
    assert chain.call(contract.functions.hasRole(_role(role), newcomer))


def test_R3_the_deal_admin_has_no_power_over_tokens_or_registry(contracts: dict[str, Any], deal: D.DealHandle) -> None:
    """R3: neither the deal's timelock nor its proposer holds or can grant a role on the tranche
    tokens or the registry, so it can neither force-transfer, pause, freeze nor register."""
    chain = deal.chain
    deal_admin = deal.timelocks["deal"].address
    for contract, role in ((deal.tokens[0], "AGENT"), (deal.tokens[1], "AGENT"), (deal.registry, "COMPLIANCE")):
        for who in (deal_admin, deal.roles.admin):
            for r in ("DEFAULT_ADMIN", role):
                assert not chain.call(contract.functions.hasRole(_role(r), who))
        grant = contract.functions.grantRole(_role(role), deal.roles.admin)
        err = _refused(lambda: _through_timelock(deal, "deal", grant))
        assert err.name == "AccessControlUnauthorizedAccount" and err.args_["account"].lower() == deal_admin.lower()
    a = deal.roles.admin
    token = deal.tokens[0]
    for fn in (token.functions.forcedTransfer(a, a, 0), token.functions.pause(),
               deal.registry.functions.setFrozen([a], True), deal.registry.functions.setInvestors([a], [2**39], [840])):
        assert _refused(lambda: chain.send(fn, sender=a)).name == "AccessControlUnauthorizedAccount"


def test_R4_the_deal_admin_calls_only_grants_the_fee_recipient_its_seat_and_the_sweep() -> None:
    """R4: the Deal functions open to DEFAULT_ADMIN are role grants and revokes, its seat's
    handover and delay, the fee recipient and the sweep; none moves units, entitlements or the
    reserve (the sweep's amount is tested in test_deal_security: it keeps reserve and everything
    credited to holders)."""
    admin_rows = {s for s, who in MATRIX["Deal"].items() if who == "role:DEFAULT_ADMIN"}
    assert admin_rows == {s for s, w in ADMIN_RULES.items() if w == "role:DEFAULT_ADMIN"} | {
        "setFeeRecipient(address)", "sweep(address)"}


def test_R4_R7_the_deal_admin_reaches_the_servicers_powers_only_after_a_public_delay(deal: D.DealHandle) -> None:
    """R4, R7: through its timelock the deal's admin can appoint itself SERVICER and fee
    recipient; both are announced (CallScheduled with the exact call) two days before they can
    run. Then back-to-back reports with zero collections draw each period's fee from the reserve
    to the fee recipient it chose. Units and entitlements stay out of its reach (R3)."""
    chain, r = deal.chain, deal.roles
    D.open_offering(deal)
    D.close(deal)  # every unit to the originator; the reserve is funded
    servicer = _role("SERVICER")
    calls = [D.admin_call(deal, seat="deal", call=deal.deal.functions.grantRole(servicer, r.admin)),
             D.admin_call(deal, seat="deal", call=deal.deal.functions.setFeeRecipient(r.admin))]
    scheduled_at = int(chain.w3.eth.get_block("latest")["timestamp"])
    for call in calls:
        (event,) = deal.timelocks["deal"].events.CallScheduled().process_receipt(call.schedule().receipt, errors=DISCARD)
        assert (event["args"]["target"], event["args"]["data"], event["args"]["delay"]) == (
            deal.deal.address, call.data, D.ADMIN_DELAY)
        assert call.ready_at() >= scheduled_at + D.ADMIN_DELAY
    zero = deal.deal.functions.postReport(1, 0, 0, 0, 0, 1_000_000, b"\x01" * 32, 1)
    assert _refused(lambda: chain.send(zero, sender=r.admin)).name == "AccessControlUnauthorizedAccount"
    for call in calls:
        assert _refused(call.execute).name == "TimelockUnexpectedOperationState"  # not before the delay
    chain.time_travel(max(c.ready_at() for c in calls) + 10)
    for call in calls:
        call.execute()
    reserve = D.read_state(deal).reserve
    before = int(chain.call(deal.settlement.functions.balanceOf(r.admin)))
    fees = 0
    for n in (1, 2):
        sent = chain.send(deal.deal.functions.postReport(n, 0, 0, 0, 0, 1_000_000, b"\x01" * 32, 1), sender=r.admin)
        (period,) = deal.deal.events.PeriodReported().process_receipt(sent.receipt, errors=DISCARD)
        figures = period["args"]["figures"]
        assert figures["fee_paid"] == figures["fee_due"] == 833 and figures["reserve_drawn"] >= 833
        fees += figures["fee_paid"]
    assert int(chain.call(deal.settlement.functions.balanceOf(r.admin))) - before == fees == 1_666
    assert D.read_state(deal).reserve < reserve - fees
    token = deal.tokens[0]
    for fn in (token.functions.forcedTransfer(r.originator, r.admin, 1), token.functions.moveEntitlement(
            r.originator, r.admin)):
        assert _refused(lambda: chain.send(fn, sender=r.admin)).name == "AccessControlUnauthorizedAccount"


@pytest.mark.parametrize("name", ["Deal", "TrancheToken", "InvestorRegistry"])
def test_R5_one_admin_per_seat_handed_over_only_after_the_delay(contracts: dict[str, Any], deal: D.DealHandle,
                                                                 name: str) -> None:
    """R5: DEFAULT_ADMIN cannot be granted (a second admin); a handover is begun by the seat
    (through its timelock), waits defaultAdminDelay, and is accepted by the new admin."""
    chain, contract = deal.chain, contracts[name]
    seat = SEAT[name]
    newcomer = chain.accounts[8]
    assert chain.call(contract.functions.defaultAdminDelay()) == D.ADMIN_DELAY
    second_admin = contract.functions.grantRole(_role("DEFAULT_ADMIN"), newcomer)
    err = _refused(lambda: _through_timelock(deal, seat, second_admin))
    assert err.name == "AccessControlEnforcedDefaultAdminRules"
    _through_timelock(deal, seat, contract.functions.beginDefaultAdminTransfer(newcomer))
    _, schedule = chain.call(contract.functions.pendingDefaultAdmin())
    accept = contract.functions.acceptDefaultAdminTransfer()
    assert _refused(lambda: chain.send(accept, sender=newcomer)).name == "AccessControlEnforcedDefaultAdminDelay"
    chain.time_travel(schedule + 10)
    chain.send(accept, sender=newcomer)
    assert chain.call(contract.functions.defaultAdmin()) == newcomer


def test_R5_the_delay_has_a_floor_at_deployment(chain: EmbeddedChain, core: Manifest) -> None:
    """R5: no seat (timelock), deal (and so its tokens) or registry can be deployed with a
    delay under a day."""
    admin = chain.accounts[0]
    err = _refused(lambda: D.deploy_timelock(chain, proposer=admin, delay=86_399))
    assert (err.name, err.args_) == ("DelayTooShort", {"delay": 86_399, "minimum": 86_400})
    err = _refused(lambda: D.deploy_timelock(chain, proposer=admin, delay=0))
    assert err.name == "DelayTooShort"
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000])
    timelock = D.deploy_timelock(chain, proposer=admin, delay=86_400)
    registry = chain.deploy("InvestorRegistry", timelock.address, 86_400, admin, sender=admin)
    args = (core.contracts["SettlementToken"], pool.address, registry.address, [("A", "A", 900, 400), ("C", "C", 100, 0)],
            (0, 0, 0, 0), (timelock.address, timelock.address, admin, admin, admin, admin, admin), 86_399)
    err = _refused(lambda: chain.deploy("Deal", *args, sender=admin))
    assert (err.name, err.args_) == ("AdminDelayTooShort", {"delay": 86_399})
    err = _refused(lambda: chain.deploy("InvestorRegistry", admin, 86_399, admin, sender=admin))
    assert (err.name, err.args_) == ("AdminDelayTooShort", {"delay": 86_399})
    token = chain.deploy("TrancheToken", "A", "A", 6, 900, registry.address, admin, 86_400, admin, sender=admin)
    assert chain.call(token.functions.MIN_ADMIN_DELAY()) == 86_400
    err = _refused(lambda: chain.deploy("TrancheToken", "A", "A", 6, 900, registry.address, admin, 0, admin,
                                        sender=admin))
    assert (err.name, err.args_) == ("AdminDelayTooShort", {"delay": 0})


@pytest.mark.parametrize("name", ["Deal", "TrancheToken", "InvestorRegistry"])
def test_R5_the_delay_floor_holds_for_good(contracts: dict[str, Any], deal: D.DealHandle, name: str) -> None:
    """R5: the review lowered every delay to 0 after deployment (changeDefaultAdminDelay(0) and
    the timelock's updateDelay(0)) and then granted a role in the block it was scheduled in.
    Now a change under a day is refused, through the seat's own timelock; a day is accepted."""
    chain, contract = deal.chain, contracts[name]
    seat = SEAT[name]
    err = _refused(lambda: _through_timelock(deal, seat, contract.functions.changeDefaultAdminDelay(86_399)))
    assert (err.name, err.args_) == ("AdminDelayTooShort", {"delay": 86_399})
    err = _refused(lambda: _through_timelock(deal, seat, contract.functions.changeDefaultAdminDelay(0)))
    assert err.name == "AdminDelayTooShort"
    timelock = deal.timelocks[seat]
    err = _refused(lambda: _through_timelock(deal, seat, timelock.functions.updateDelay(0)))
    assert (err.name, err.args_) == ("DelayTooShort", {"delay": 0, "minimum": 86_400})
    assert chain.call(timelock.functions.getMinDelay()) == D.ADMIN_DELAY
    _through_timelock(deal, seat, contract.functions.changeDefaultAdminDelay(86_400))
    _through_timelock(deal, seat, timelock.functions.updateDelay(86_400))
    assert chain.call(timelock.functions.getMinDelay()) == 86_400
    assert chain.call(contract.functions.defaultAdminDelay()) == 86_400  # the change took effect meanwhile
    fn = timelock.functions.schedule(contract.address, 0, b"", b"\x00" * 32, b"\x07" * 32, 86_399)
    err = _refused(lambda: chain.send(fn, sender=deal.roles.proposer(seat)))
    assert err.name == "TimelockInsufficientDelay"  # the shorter delay is what schedule enforces


def test_R6_R7_operator_and_servicer_act_only_in_their_lane(deal: D.DealHandle) -> None:
    """R6, R7: the operator cannot post a report; the servicer, the admins and the agent cannot
    open, allocate or close."""
    chain, r = deal.chain, deal.roles
    report = deal.deal.functions.postReport(1, 0, 0, 0, 0, 1_000_000, b"\x01" * 32, 1)
    for who in (r.operator, r.admin, r.token_admin, r.agent, r.compliance):
        assert _refused(lambda: chain.send(report, sender=who)).name == "AccessControlUnauthorizedAccount"
    for who in (r.servicer, r.admin, r.token_admin, r.registry_admin, r.agent):
        err = _refused(lambda: chain.send(deal.deal.functions.open(), sender=who))
        assert err.name == "AccessControlUnauthorizedAccount"
    assert D.open_offering(deal).receipt["status"] == 1


def test_R8_only_the_holder_or_a_paying_agent_triggers_a_claim(deal: D.DealHandle) -> None:
    """R8: claimFor / claimTranches for another holder need PAYING_AGENT (held by the operator)."""
    chain, r = deal.chain, deal.roles
    holder = chain.accounts[8]
    assert chain.call(deal.deal.functions.hasRole(_role("PAYING_AGENT"), r.operator))
    for who in (r.admin, r.servicer, r.agent, chain.accounts[9]):
        err = _refused(lambda: chain.send(deal.deal.functions.claimFor(holder), sender=who))
        assert err.name == "AccessControlUnauthorizedAccount"
    for who in (holder, r.operator):  # allowed: nothing is owed yet
        assert _refused(lambda: chain.send(deal.deal.functions.claimFor(holder), sender=who)).name == "NothingToClaim"


def test_R9_R10_R12_agent_and_compliance_cannot_mint_credit_redeem_or_mirror(deal: D.DealHandle) -> None:
    """R9, R10, R12: the deal's hooks on a tranche token refuse the agent, compliance and the
    admins; the eligibility mirror refuses everyone but the registry."""
    chain, r = deal.chain, deal.roles
    f = deal.tokens[0].functions
    hooks = (f.mint(r.agent, 1), f.mintBatch([r.agent], [1]), f.mintUnsold(r.agent, 1), f.distribute(1),
             f.redeem(r.agent), f.releaseCarry())
    for who in (r.agent, r.compliance, r.admin, r.token_admin):
        for fn in hooks:
            assert _refused(lambda: chain.send(fn, sender=who)).name == "OnlyDeal"
        err = _refused(lambda: chain.send(f.mirrorEligibility([who], [2**39]), sender=who))
        assert err.name == "OnlyRegistry"


def test_R11_a_pool_is_pledged_once(contracts: dict[str, Any], deal: D.DealHandle) -> None:
    """R11: the pool names this deal; pledging it again (to anything) is refused."""
    chain, pool = deal.chain, contracts["LoanPool"]
    assert chain.call(pool.functions.deal()) == deal.deal.address
    err = _refused(lambda: chain.send(pool.functions.pledge(deal.deal.address), sender=deal.roles.originator))
    assert err.name == "AlreadyPledged"


def test_every_role_statement_of_security_md_has_a_test() -> None:
    """SECURITY.md's role statements are numbered [R1]..; each number is checked by a test here."""
    text = (Path(__file__).resolve().parents[2] / "SECURITY.md").read_text()
    stated = {int(n) for n in re.findall(r"\[R(\d+)\]", text)}
    tested = {int(n) for name in globals() for prefix in re.findall(r"^test_((?:R\d+_)+)", name)
              for n in re.findall(r"R(\d+)", prefix)}
    assert stated and stated <= tested, f"statements without a test: {sorted(stated - tested)}"
