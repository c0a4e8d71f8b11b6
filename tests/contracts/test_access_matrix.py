"""Access control, generated from the ABIs: every external state-changing function of every
contract has a row saying who may call it; a stranger calling a restricted one is refused and
the intended role succeeds where a call is cheap to make. A new function without a row fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils import keccak

from chainabs import deal as D
from chainabs.build import load_artifact
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest
from chainabs.errors import ContractRevert
from chainabs.waterfall import DealParams, TrancheSpec

ROLE_ERRORS = {"AccessControlUnauthorizedAccount", "OnlyDeal", "OnlyRegistry", "OwnableUnauthorizedAccount"}
ANYONE = "anyone"

# contract -> function signature -> who may call it ("role:<NAME>", "deal", "registry" or "anyone";
# for "anyone" rows the function acts only on the caller's own assets or pays a holder what it is owed).
MATRIX: dict[str, dict[str, str]] = {
    "LoanToken": {
        "approve(address,uint256)": ANYONE, "setApprovalForAll(address,bool)": ANYONE,
        "safeTransferFrom(address,address,uint256)": ANYONE, "safeTransferFrom(address,address,uint256,bytes)": ANYONE,
        "transferFrom(address,address,uint256)": ANYONE, "renounceRole(bytes32,address)": ANYONE,
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
        "mintBatch(bytes,bytes32[])": "role:MINTER",
    },
    "LoanPool": {
        "commitTape(bytes32,uint64,uint128,uint128)": "role:ORIGINATOR", "mintLoans(bytes,bytes32[],bytes32[])": "role:ORIGINATOR",
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
        "attachToken(address)": "role:DEFAULT_ADMIN", "revokeInvestors(address[])": "role:COMPLIANCE",
        "setFrozen(address[],bool)": "role:COMPLIANCE", "setInvestors(address[],uint40[],uint16[])": "role:COMPLIANCE",
        "sync(address[])": ANYONE, "renounceRole(bytes32,address)": ANYONE,
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
    },
    "TrancheToken": {
        "approve(address,uint256)": ANYONE, "transfer(address,uint256)": ANYONE,
        "transferFrom(address,address,uint256)": ANYONE, "renounceRole(bytes32,address)": ANYONE,
        "distribute(uint256)": "deal", "mint(address,uint256)": "deal", "mintBatch(address[],uint256[])": "deal",
        "redeem(address)": "deal", "mirrorEligibility(address[],uint256[])": "registry",
        "forcedTransfer(address,address,uint256)": "role:AGENT", "pause()": "role:AGENT", "unpause()": "role:AGENT",
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
    },
    "Deal": {
        "allocate(uint256,address[],uint256[])": "role:OPERATOR", "open()": "role:OPERATOR", "close()": "role:OPERATOR",
        "postReport(uint64,uint256,uint256,uint256,uint256,uint256,bytes32,uint64)": "role:SERVICER",
        "setFeeRecipient(address)": "role:DEFAULT_ADMIN", "subscribe(uint256,uint256)": ANYONE,
        "claim()": ANYONE, "claimFor(address)": ANYONE, "claimTranches(address,uint256)": ANYONE,
        "grantRole(bytes32,address)": "role:DEFAULT_ADMIN", "revokeRole(bytes32,address)": "role:DEFAULT_ADMIN",
        "renounceRole(bytes32,address)": ANYONE,
    },
    "TrancheExchange": {"cancelOrder(uint256)": ANYONE, "fillOrder((address,address,uint256,uint256,address,uint256,uint256),bytes)": ANYONE},
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
    admin = chain.accounts[0]
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=[1_000_000])
    params = DealParams(tranches=(TrancheSpec("A", "A", 900_000, 400), TrancheSpec("C", "C", 100_000, 0)),
                        servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=0, default_trigger_bps=500)
    handle = D.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=D.DealRoles.single(admin))
    yield {"LoanToken": chain.contract("LoanToken", core.contracts["LoanToken"]), "LoanPool": pool,
           "SettlementToken": handle.settlement, "InvestorRegistry": handle.registry, "TrancheToken": handle.tokens[0],
           "Deal": handle.deal, "TrancheExchange": handle.exchange}
    chain.revert(base)


def test_every_mutating_function_has_a_row() -> None:
    for name, rows in MATRIX.items():
        in_abi = {_sig(i) for i in _mutating(name)}
        assert in_abi == set(rows), f"{name}: missing rows {in_abi - set(rows)}, stale rows {set(rows) - in_abi}"


@pytest.mark.parametrize("name,signature", [(n, s) for n, rows in MATRIX.items() for s, who in rows.items() if who != ANYONE])
def test_a_stranger_is_refused(contracts: dict[str, Any], session_chain: EmbeddedChain, name: str, signature: str) -> None:
    chain = session_chain
    stranger = chain.accounts[9]
    item = next(i for i in _mutating(name) if _sig(i) == signature)
    fn = contracts[name].get_function_by_signature(signature)(*[_dummy(p, stranger) for p in item["inputs"]])
    with pytest.raises(ContractRevert) as info:
        chain.send(fn, sender=stranger)
    assert info.value.name in ROLE_ERRORS, (signature, info.value)


@pytest.mark.parametrize("name,signature,role", [
    ("SettlementToken", "mint(address,uint256)", "MINTER"),
    ("TrancheToken", "pause()", "AGENT"),
    ("InvestorRegistry", "setFrozen(address[],bool)", "COMPLIANCE"),
    ("Deal", "open()", "OPERATOR"),
    ("LoanToken", "grantRole(bytes32,address)", "DEFAULT_ADMIN"),
])
def test_the_intended_role_succeeds(contracts: dict[str, Any], session_chain: EmbeddedChain, name: str,
                                    signature: str, role: str) -> None:
    chain = session_chain
    snap = chain.snapshot()
    try:
        holder = chain.accounts[8]
        contract = contracts[name]
        role_id = b"\x00" * 32 if role == "DEFAULT_ADMIN" else keccak(text=f"{role}_ROLE")
        chain.send(contract.functions.grantRole(role_id, holder), sender=chain.accounts[0])
        item = next(i for i in _mutating(name) if _sig(i) == signature)
        args = [_dummy(p, holder) for p in item["inputs"]]
        assert chain.send(contract.get_function_by_signature(signature)(*args), sender=holder).receipt["status"] == 1
    finally:
        chain.revert(snap)
