"""The node dies (SIGKILL) in the middle of chainabs work: minting a pool, running periods,
indexing. The client must stop with one sentence (a ChainabsError, no traceback at the CLI),
and once the node is back with its state the same command must finish the work with nothing
lost and nothing done twice.

What Anvil (1.7.1) guarantees, and so what these tests can promise:

- Anvil keeps its chain in memory. With `--state FILE` it loads FILE at start and writes it on
  a clean exit (SIGTERM); with `--state-interval 1` it also rewrites it every second. A
  SIGKILL gets no final write: the node comes back at its last interval dump, so up to about a
  second of blocks is gone, including transactions whose receipts chainabs had already seen.
  Block hashes, receipts and logs of the dumped blocks come back as they were.
- The file is rewritten in place, not atomically: a SIGKILL during a write would leave it torn.
  `Node` therefore keeps a copy of the last dump it saw whole (taken at clean restarts and
  when a test asks for a checkpoint) and starts from that copy when the file does not parse,
  as an operator restores the last good backup.
- So a node restart can roll the chain back. chainabs never trusts its own files over the
  chain: minting resumes from the pool's `mintedCount`, a period run from the deal's
  `periodCount` (re-simulating from the start when the saved simulator is ahead of the chain),
  and the index compares its stored block hashes with the chain's before each page. What is not
  guaranteed: work the node lost is done again (so its gas is spent twice), and a servicer
  funded by the dev settlement token before a lost or failed report is funded again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from chainabs import deal as deals
from chainabs import merkle
from chainabs.chain import RpcChain, RpcSource
from chainabs.chain.anvil import DEV_KEYS, Anvil
from chainabs.cli import main
from chainabs.context import open_context
from chainabs.datadir import period_root
from chainabs.errors import ChainabsError
from chainabs.indexer import Indexer
from chainabs.pool import find_pool
from chainabs.service import loans_from_rows, open_deal
from chainabs.servicing import Simulator
from chainabs.store import Store
from chainabs.tape import parse_date
from support import tape_file

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]
DEAL = ROOT / "examples" / "deal.toml"
MINT = keccak(text="mintLoans(bytes,bytes32[],bytes32[])")[:4]
POST_REPORT = keccak(text="postReport(uint64,uint256,uint256,uint256,uint256,uint256,bytes32,uint64)")[:4]
SIM = {"cdr": 0.08, "cpr": 0.1, "recovery": "0.35", "lag": 1, "seed": 3}
SIM_ARGS = ["--cdr", "0.08", "--cpr", "0.1", "--recovery", "0.35", "--lag", "1", "--seed", "3"]


class Node(Anvil):
    """Anvil with its state in a file: dumped every second and on a clean exit."""

    def __init__(self, folder: Path) -> None:
        self.state = folder / "anvil-state.json"
        self.good = folder / "anvil-state.good.json"
        super().__init__(state=self.state)
        self.args += ["--state-interval", "1"]

    def restart_clean(self) -> None:
        """SIGTERM (Anvil writes its state on exit), keep that dump as the good copy, start."""
        self.stop()
        shutil.copyfile(self.state, self.good)
        self.start()

    def wait_for_dump(self, timeout: float = 5.0) -> None:
        """Block until Anvil has written a fresh, whole dump; keep it as the good copy."""
        before = self.state.stat().st_mtime_ns if self.state.exists() else 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if self.state.exists() and self.state.stat().st_mtime_ns != before:
                time.sleep(0.05)  # let the write finish, then check it is whole
                raw = self.state.read_bytes()
                try:
                    json.loads(raw)
                except ValueError:
                    continue
                self.good.write_bytes(raw)
                return
        raise AssertionError(f"anvil wrote no state dump within {timeout} s")

    def restart_after_crash(self, *, from_checkpoint: bool = False) -> None:
        """Start again from the dump Anvil left, or from the good copy when asked or when torn."""
        assert self.proc is None, "kill() first"
        if from_checkpoint:
            shutil.copyfile(self.good, self.state)
        else:
            try:
                json.loads(self.state.read_bytes())
            except ValueError:
                shutil.copyfile(self.good, self.state)
        self.start()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setattr(RpcChain, "RETRIES", 2)  # fail fast once the node is gone
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[0])
    monkeypatch.delenv("CHAINABS_DATA_DIR", raising=False)
    with Node(tmp_path) as started:
        yield started


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tape_file(tmp_path_factory, 200, 9)


def on_receipt(monkeypatch: pytest.MonkeyPatch, wanted: Callable[[RpcChain, bytes], bool],
               actions: dict[int, Callable[[], None]], after: dict[int, Callable[[], None]] | None = None
               ) -> Callable[[], None]:
    """Run actions[n] when the client starts waiting for the n-th wanted transaction's receipt
    (the transaction has reached the node and, with automine, is in a block; the client has not
    heard back), and after[n] once it has the receipt. Returns a function that disarms the hook."""
    after = after or {}
    count = {"n": 0}
    armed = [True]
    for method in ("wait", "_light_receipt"):
        original = getattr(RpcChain, method)

        def hooked(self: RpcChain, tx_hash: bytes, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            n = 0
            if armed[0] and wanted(self, tx_hash):
                count["n"] = n = count["n"] + 1
                if n in actions:
                    actions[n]()
            receipt = _original(self, tx_hash, *args, **kwargs)
            if n in after:
                after[n]()
            return receipt

        monkeypatch.setattr(RpcChain, method, hooked)
    return lambda: armed.__setitem__(0, False)


def selector_is(selector: bytes) -> Callable[[RpcChain, bytes], bool]:
    return lambda chain, tx_hash: bytes(chain.w3.eth.get_transaction(tx_hash)["input"])[:4] == selector


def cli(data: Path, url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--rpc", url, "--data-dir", str(data), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_sentence(code: int, err: str, url: str) -> None:
    assert code == 1
    assert err == f"error: node at {url} unreachable: ConnectionError\n", err
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["killed awaiting a receipt", "killed after a receipt", "back from an older dump"])
def test_pool_create_killed_mid_mint_resumes_to_every_loan_once(node: Node, tape: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str], case: str) -> None:
    """Minting 40 batches of 5 loans. The node dies as the client waits for batch 6's receipt,
    or just after it got it (the next request fails), batch 3 having been dumped; or it dies
    after batch 2 and comes back from the dump taken before the pool was even deployed."""
    data = tmp_path / "data"
    ctx = open_context(rpc=node.url, data_dir=data)  # the core contracts, then a clean dump of them
    node.restart_clean()
    mint = selector_is(MINT)
    if case == "killed awaiting a receipt":
        disarm = on_receipt(monkeypatch, mint, {3: node.wait_for_dump, 6: node.kill})
    elif case == "killed after a receipt":
        disarm = on_receipt(monkeypatch, mint, {3: node.wait_for_dump}, after={6: node.kill})
    else:
        disarm = on_receipt(monkeypatch, mint, {}, after={2: node.kill})
    create = ["--json", "pool", "create", "--tape", str(tape), "--deal", str(DEAL), "--batch-size", "5"]
    code, _, err = cli(data, node.url, capsys, *create)
    assert_one_sentence(code, err, node.url)

    node.restart_after_crash(from_checkpoint=case == "back from an older dump")
    disarm()
    files = find_pool(data)
    chain = RpcChain(node.url, keys=[DEV_KEYS[0]])
    pool = chain.contract("LoanPool", files.record.address)
    if case == "back from an older dump":
        assert chain.w3.eth.get_code(pool.address) == b"" and files.record.status == "committed"
        survived = 0
    else:
        survived = chain.call(pool.functions.mintedCount())
        assert 15 <= survived < files.record.loan_count  # batches 1-3 were dumped; not all were minted

    code, out, err = cli(data, node.url, capsys, *create)
    assert code == 0, err
    report = json.loads(out)
    assert report["root"] == files.record.root
    assert report["minted_now"] == files.record.loan_count - survived
    pool = chain.contract("LoanPool", report["pool"])
    assert chain.call(pool.functions.mintedCount()) == files.record.loan_count == report["eligible"]
    assert chain.call(pool.functions.loanRoot()) == bytes.fromhex(files.record.root[2:])
    # each loan token exactly once, owned by the pool: one mint Transfer per loan id
    token = chain.contract("LoanToken", ctx.core.contracts["LoanToken"])
    assert chain.call(token.functions.balanceOf(pool.address)) == files.record.loan_count
    logs = chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": token.address,
                                  "topics": [keccak(text="Transfer(address,address,uint256)")]})
    minted_ids = [int.from_bytes(bytes(lg["topics"][3]), "big") for lg in logs]
    assert sorted(minted_ids) == sorted(merkle.token_id(pool.address, row.loan_id) for row in files.rows)
    code, out, _ = cli(data, node.url, capsys, "--json", "proof", files.rows[-1].loan_id)
    assert code == 0 and json.loads(out)["verified_on_chain"] is True


def _deal_ready(node: Node, data: Path, tape: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> None:
    """A filled pool and a closed deal with one outside investor, then a clean dump."""
    investor = RpcChain(node.url, keys=[DEV_KEYS[1]]).accounts[0]
    for args in (["pool", "create", "--tape", str(tape), "--deal", str(DEAL)], ["deal", "create", "--deal", str(DEAL)],
                 ["investors", "add", investor], ["fund", investor, "10000000000"]):
        code, _, err = cli(data, node.url, capsys, *args)
        assert code == 0, err
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[1])
    code, _, err = cli(data, node.url, capsys, "subscribe", "--investor", investor, "--tranche", "0",
                       "--units", "10000000000")
    monkeypatch.setenv("CHAINABS_PRIVATE_KEY", DEV_KEYS[0])
    assert code == 0, err
    code, _, err = cli(data, node.url, capsys, "close")
    assert code == 0, err
    node.restart_clean()


def test_simulate_killed_mid_period_resumes_posting_each_period_once(node: Node, tape: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _deal_ready(node, data, tape, monkeypatch, capsys)

    # period 2 is dumped; period 3 is acknowledged, period 4 sent, and then the node dies
    disarm = on_receipt(monkeypatch, selector_is(POST_REPORT), {2: node.wait_for_dump, 4: node.kill})
    code, _, err = cli(data, node.url, capsys, "simulate", "--periods", "6", *SIM_ARGS)
    assert_one_sentence(code, err, node.url)
    servicing = json.loads((data / "deals" / "consumer-loans-2026-1-servicing.json").read_text())
    assert servicing["period"] == 3  # the client saw period 3 through

    # back from the dump taken after period 2: the node has lost period 3, which the client saw
    node.restart_after_crash(from_checkpoint=True)
    disarm()
    ctx = open_context(rpc=node.url, data_dir=data, create=False)
    handle, files = open_deal(ctx)
    assert deals.read_state(handle).period == 2

    code, out, err = cli(data, node.url, capsys, "--json", "simulate", "--periods", "4", *SIM_ARGS)
    assert code == 0, err
    rerun = json.loads(out)["periods"]
    assert [p["period"] for p in rerun] == [3, 4, 5, 6] and all(p["matches_model"] for p in rerun)

    # every period once on chain, each the one an uninterrupted run of the simulator gives
    events = handle.deal.events.PeriodReported().get_logs(from_block=0)
    assert sorted(e["args"]["period"] for e in events) == [1, 2, 3, 4, 5, 6]
    straight = Simulator(loans_from_rows(files.rows), cutoff_day=parse_date("2026-10-01"), cdr=SIM["cdr"],
                         cpr=SIM["cpr"], recovery=Fraction(SIM["recovery"]), lag=SIM["lag"], seed=SIM["seed"]).run(6)
    root_at = deals._abi_fields("period").index("loan_root")
    for outcome in straight:
        n = outcome.period
        onchain = deals.read_period(handle, n=n)
        assert (onchain.interest_collected, onchain.principal_collected, onchain.recoveries,
                onchain.defaulted_principal) == (outcome.report.interest, outcome.report.principal,
                                                 outcome.report.recoveries, outcome.report.defaults), n
        root = period_root(files.rows, outcome.statuses, outcome.outstanding)
        assert bytes(handle.deal.functions.period(n).call()[root_at]) == root, n
        kept = json.loads((files.folder / "periods" / f"{n}.json").read_text())
        assert (kept["root"], kept["statuses"], kept["outstanding"]) == ("0x" + root.hex(), outcome.statuses,
                                                                         outcome.outstanding), n

    code, out, err = cli(data, node.url, capsys, "--json", "audit", "verify")
    assert json.loads(out)["verify"] == "PASS", [c for c in json.loads(out)["checks"] if c["ok"] is False]


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as db:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("events", "transfers", "balances", "blocks", "contracts")}


def test_indexing_killed_mid_sync_resumes_to_the_same_index_as_a_fresh_one(node: Node, tape: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    code, _, err = cli(data, node.url, capsys, "pool", "create", "--tape", str(tape), "--deal", str(DEAL),
                       "--batch-size", "5")
    assert code == 0, err
    node.restart_clean()
    ctx = open_context(rpc=node.url, data_dir=data, create=False)
    head = ctx.chain.block_number()

    calls = {"n": 0}
    original = RpcSource.get_logs

    def get_logs(self: RpcSource, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:
            node.kill()
        return original(self, *args)

    monkeypatch.setattr(RpcSource, "get_logs", get_logs)
    store = Store.open(data, chain_id=ctx.chain.chain_id)
    with pytest.raises(ChainabsError) as info:
        Indexer(ctx, store, max_range=4).sync()
    message = str(info.value)
    assert message.endswith(f"node at {node.url} unreachable: ConnectionError") and "\n" not in message
    partial = store.cursor()
    assert partial is not None and 0 < partial < head
    code, _, err = cli(data, node.url, capsys, "index", "--once")
    assert_one_sentence(code, err, node.url)

    node.restart_after_crash()
    monkeypatch.setattr(RpcSource, "get_logs", original)
    resumed = Indexer(ctx, store, max_range=4).sync()
    assert resumed.indexed_head == head and resumed.reorgs == 0
    assert resumed.blocks == head - partial  # nothing read twice
    store.close()

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = Store.open(fresh_dir, chain_id=ctx.chain.chain_id)
    Indexer(ctx, fresh, max_range=4).sync()
    fresh.close()
    ours, theirs = _rows(data / "index.sqlite"), _rows(fresh_dir / "index.sqlite")
    assert ours["events"] == theirs["events"] and len(ours["events"]) > find_pool(data).record.loan_count
    assert ours["transfers"] == theirs["transfers"] and ours["balances"] == theirs["balances"]
    assert ours["blocks"] == theirs["blocks"]
    loan_token = ctx.core.contracts["LoanToken"].lower()
    pool = find_pool(data).record
    assert {(h, t): int(a) for h, t, a in ours["balances"]}[(pool.address.lower(), loan_token)] == pool.loan_count
