"""The embedded chain's journal: state survives a restart, a torn last record is dropped."""

from __future__ import annotations

from pathlib import Path

from chainabs.chain import EmbeddedChain
from chainabs.deploy import deploy_core


def test_state_survives_a_restart_and_a_torn_tail(tmp_path: Path) -> None:
    chain = EmbeddedChain(state_dir=tmp_path)
    core = deploy_core(chain)
    cash = chain.contract("SettlementToken", core.contracts["SettlementToken"])
    holder = chain.accounts[4]
    chain.send(cash.functions.mint(holder, 1_000))
    chain.time_travel(chain.w3.eth.get_block("latest")["timestamp"] + 86_400)
    chain.send(cash.functions.mint(holder, 234))
    head = chain.w3.eth.get_block("latest")
    chain.journal.close()

    reopened = EmbeddedChain(state_dir=tmp_path)
    again = reopened.contract("SettlementToken", core.contracts["SettlementToken"])
    assert again.functions.balanceOf(holder).call() == 1_234
    assert reopened.block_number() == head["number"]
    assert reopened.w3.eth.get_block("latest")["timestamp"] == head["timestamp"]
    # the same blocks, hash for hash: an index built before the restart is still valid after it
    assert reopened.w3.eth.get_block("latest")["hash"] == head["hash"]
    assert reopened.w3.eth.get_block(1)["hash"] == chain.w3.eth.get_block(1)["hash"]
    reopened.journal.close()

    journal = tmp_path / "journal.bin"
    journal.write_bytes(journal.read_bytes() + b"T\x00\x00")  # killed in the middle of a write
    third = EmbeddedChain(state_dir=tmp_path)
    cash_third = third.contract("SettlementToken", core.contracts["SettlementToken"])
    assert cash_third.functions.balanceOf(holder).call() == 1_234
    third.send(cash_third.functions.mint(holder, 1))
    third.journal.close()
    fourth = EmbeddedChain(state_dir=tmp_path)
    cash_fourth = fourth.contract("SettlementToken", core.contracts["SettlementToken"])
    assert cash_fourth.functions.balanceOf(holder).call() == 1_235
