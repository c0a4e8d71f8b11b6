"""The embedded chain as a node (issue 15): one writer per data dir, held by an OS lock that a
kill -9 releases; standard JSON-RPC that cast and web3.py's own HTTPProvider use; every
acknowledged write durable; commands that find the chain held wait for it (or stop with a
sentence) and lose nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from chainabs.chain import EmbeddedChain
from chainabs.chain.anvil import binary, free_port
from chainabs.chain.embedded import embedded_keys
from chainabs.chain.lock import ChainBusy, is_locked, read_node
from chainabs.errors import ChainError
from support import Process, cli

HOLD = "from chainabs.chain import EmbeddedChain; import sys, time; EmbeddedChain(state_dir=sys.argv[1]); " \
       "print('held', flush=True); time.sleep(600)"


def test_one_writer_per_chain_folder_and_kill_9_releases_it(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ChainBusy, match="open in another process"):
            EmbeddedChain(state_dir=tmp_path)
        assert not (tmp_path / "journal.bin").exists()  # refused before reading or writing anything
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert not is_locked(tmp_path)  # the OS dropped the lock with the process
    first = EmbeddedChain(state_dir=tmp_path)
    first.mine(1)
    second = EmbeddedChain(state_dir=tmp_path)  # the same process: the newer object takes over
    assert second.block_number() == 1
    with pytest.raises(ChainError, match="may no longer write"):
        first.mine(1)
    second.mine(1)
    second.close()
    assert not is_locked(tmp_path)
    third = EmbeddedChain(state_dir=tmp_path)
    assert third.block_number() == 2  # the refused block never reached the journal
    third.close()


def _rpc(url: str, method: str, *params: object) -> object:
    w3 = Web3(HTTPProvider(url))
    return w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


def test_cast_and_web3_against_chainabs_node(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    cast = str(binary("cast"))
    with Process(data, tmp_path / "node.log", "node", "--port", str(port)) as node:
        node.wait_for(url)
        record = read_node(data / "chain")
        assert record is not None and record.url == url

        def run_cast(*args: str) -> str:
            done = subprocess.run([cast, *args, "--rpc-url", url], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        w3 = Web3(HTTPProvider(url))  # web3.py's own provider
        assert int(run_cast("chain-id")) == w3.eth.chain_id == 131277322940537
        dev, other = w3.eth.accounts[0], w3.eth.accounts[1]
        assert int(run_cast("balance", dev)) == w3.eth.get_balance(dev) > 0
        before = w3.eth.get_balance(other)
        sent = json.loads(run_cast("send", "--json", "--private-key", embedded_keys()[0], other, "--value", "12345"))
        assert int(sent["status"], 16) == 1
        assert int(run_cast("block-number")) == w3.eth.block_number == 1
        assert w3.eth.get_balance(other) == before + 12345
        assert run_cast("tx", sent["transactionHash"], "from").lower() == dev.lower()
        # calls and estimates without --from: cast sends the zero address, which cannot pay the
        # default fee here (Geth runs such calls at a gas price of 0)
        assert run_cast("call", other) == "0x"
        assert int(run_cast("estimate", other, "--value", "0")) == 21_000

        # web3.py: a signed transaction, its receipt and block, the fee market, nonces, logs
        account = Account.from_key(embedded_keys()[2])
        tx = {"to": other, "value": 7, "gas": 21_000, "chainId": w3.eth.chain_id,
              "nonce": w3.eth.get_transaction_count(account.address, "pending"),
              "maxFeePerGas": 2 * w3.eth.gas_price, "maxPriorityFeePerGas": w3.eth.max_priority_fee}
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1 and w3.eth.get_block(receipt["blockNumber"])["transactions"] == [tx_hash]
        assert w3.eth.get_transaction_count(account.address) == 1
        assert w3.eth.estimate_gas({"from": dev, "to": other, "value": 1}) == 21_000
        history = w3.eth.fee_history(2, "latest", [50])
        assert history["oldestBlock"] == 1 and len(history["baseFeePerGas"]) >= 2
        assert w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"}) == []

        # Anvil's helpers: a snapshot, blocks mined and time moved, then reverted
        snapshot = _rpc(url, "evm_snapshot")["result"]  # type: ignore[index]
        _rpc(url, "evm_increaseTime", 3600)
        _rpc(url, "anvil_mine", "0x3")
        assert w3.eth.block_number == 5
        assert w3.eth.get_block(3)["timestamp"] >= w3.eth.get_block(2)["timestamp"] + 3600
        assert _rpc(url, "evm_revert", snapshot)["result"] is True  # type: ignore[index]
        assert w3.eth.block_number == 2
        refused = _rpc(url, "anvil_setBalance", dev, "0x1")
        assert "journal" in refused["error"]["message"]  # type: ignore[index]
        assert node.stop() == 0
    assert read_node(data / "chain") is None  # removed on a clean exit

    chain = EmbeddedChain(state_dir=data / "chain")  # restarted: what was acknowledged, not what was reverted
    assert chain.block_number() == 2
    assert chain.w3.eth.get_transaction_receipt(sent["transactionHash"])["status"] == 1
    chain.close()


def test_kill_9_mid_transaction_keeps_every_acknowledged_one(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    node = Process(data, tmp_path / "node.log", "node", "--port", str(port))
    node.wait_for(url)
    w3 = Web3(HTTPProvider(url))
    account = Account.from_key(embedded_keys()[3])
    stop = threading.Event()

    def send() -> None:
        nonce = 0
        while not stop.is_set():
            tx = {"to": w3.eth.accounts[1], "value": 1, "gas": 21_000, "nonce": nonce, "chainId": 131277322940537,
                  "maxFeePerGas": 10**12, "maxPriorityFeePerGas": 10**9}
            try:
                tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            except Exception:
                return  # the node died under this one: never acknowledged
            acknowledged.append(tx_hash.to_0x_hex())
            nonce += 1

    sender = threading.Thread(target=send)
    sender.start()
    while len(acknowledged) < 15:
        assert node.proc.poll() is None
        threading.Event().wait(0.05)
    node.kill()
    stop.set()
    sender.join(timeout=60)
    assert read_node(data / "chain") is not None and not is_locked(data / "chain")  # stale: ignored

    done = cli(data, "--json", "deploy")  # opens the chain itself: the stale URL is not followed
    assert done.returncode == 0, done.stderr
    assert "sending through" not in done.stderr
    chain = EmbeddedChain(state_dir=data / "chain")
    assert read_node(data / "chain") is None  # the next holder removed the stale record
    for tx_hash in acknowledged:
        assert chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    mined = chain.w3.eth.get_transaction_count(account.address)
    assert len(acknowledged) <= mined <= len(acknowledged) + 1  # at most the one cut short, whole
    chain.close()


def test_two_commands_at_once_one_waits_nothing_lost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "deploy").returncode == 0
    who = "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"
    held = EmbeddedChain(state_dir=data / "chain")  # a third party holds the chain, with no endpoint
    refused = cli(data, "fund", who, "5", CHAINABS_CHAIN_WAIT="0.5")
    assert refused.returncode == 1
    assert "held by another chainabs process" in refused.stderr and "Traceback" not in refused.stderr
    runs = [subprocess.Popen([sys.executable, "-m", "chainabs.cli", "--data-dir", str(data), "fund", who, "1000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    try:
        for run in runs:  # both wait for the holder
            assert run.stderr is not None and "waiting for it" in run.stderr.readline()
    finally:
        held.close()
    for run in runs:
        out, err = run.communicate(timeout=300)
        outputs.append((run.returncode, out, err))
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    chain = EmbeddedChain(state_dir=data / "chain")
    token = json.loads(next(data.glob("deployment-*.json")).read_text())["contracts"]["SettlementToken"]
    assert chain.contract("SettlementToken", token).functions.balanceOf(who).call() == 2000  # the refused 5: never sent
    chain.close()


def test_routing_to_a_dead_endpoint_is_not_followed(tmp_path: Path) -> None:
    """A node.json whose lock is free is stale, whatever URL it names."""
    data = tmp_path / "data"
    (data / "chain").mkdir(parents=True)
    (data / "chain" / "node.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 1, "chain_id": 1}))
    done = cli(data, "deploy")
    assert done.returncode == 0, done.stderr
    assert read_node(data / "chain") is None
