"""The embedded chain: sends with fees that follow the base fee, decoded reverts, the artifacts' code.
(What every backend promises is in test_conformance.py.)"""

from __future__ import annotations

import pytest

from chainabs.chain import EmbeddedChain, decode_revert
from chainabs.deploy import Manifest, verify_code
from chainabs.errors import ContractRevert

MINTER_ROLE = bytes.fromhex("9f2df0fed2c77648de5860a4cc508cd0818c85b8b8a1ab4ceeef8d981c8956a6")


def test_sends_after_the_base_fee_has_risen_and_decodes_custom_errors() -> None:
    chain = EmbeddedChain(gas_limit=800_000)  # a small block limit so deployments fill blocks
    admin, stranger = chain.accounts[:2]
    start_fee = chain.w3.eth.get_block("latest")["baseFeePerGas"]
    tokens = [chain.deploy("SettlementToken", "Cash", "C", 6, admin) for _ in range(12)]
    risen_fee = chain.w3.eth.get_block("latest")["baseFeePerGas"]
    assert risen_fee > start_fee * 1.5, (start_fee, risen_fee)
    assert risen_fee > 10**9  # above web3's 1 gwei default: a fixed fee would be refused

    sent = chain.send(tokens[0].functions.mint(stranger, 5_000_000))
    assert sent.receipt["status"] == 1
    assert tokens[0].functions.balanceOf(stranger).call() == 5_000_000

    with pytest.raises(ContractRevert) as info:
        chain.send(tokens[0].functions.mint(stranger, 1), sender=stranger)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    assert info.value.args_ == {"account": stranger, "neededRole": MINTER_ROLE} or (
        info.value.args_["account"].lower() == stranger.lower() and info.value.args_["neededRole"] == MINTER_ROLE)
    assert "AccessControlUnauthorizedAccount(account=" in str(info.value)
    assert tokens[0].functions.balanceOf(stranger).call() == 5_000_000


def test_calls_decode_reverts_too(chain: EmbeddedChain, core: Manifest) -> None:
    cash = chain.contract("SettlementToken", core.contracts["SettlementToken"])
    with pytest.raises(ContractRevert) as info:
        chain.call(cash.functions.transfer(chain.accounts[1], 1))
    assert info.value.name == "ERC20InsufficientBalance"


def test_deployed_code_matches_artifacts(chain: EmbeddedChain, core: Manifest) -> None:
    assert verify_code(chain, core) == []
    tampered = Manifest(**{**core.__dict__, "contracts": {"LoanToken": core.contracts["SettlementToken"]}})
    assert verify_code(chain, tampered) != []


def test_decode_revert_handles_strings_panics_and_unknown_errors() -> None:
    from eth_abi import encode

    assert decode_revert(bytes.fromhex("08c379a0") + encode(["string"], ["nope"])).args_ == {"message": "nope"}
    assert decode_revert(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11])).name == "Panic"
    assert decode_revert(b"\xde\xad\xbe\xef").name == "UnknownCustomError"
    assert decode_revert(b"").name == "UnknownRevert"
