"""The data dir's typed records: what they read, what they refuse, how they are written."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from chainabs.datadir import CommittedLoan, DataDir, DealRecord, PeriodTape, period_root, slug, write_json
from chainabs.errors import InvalidInput, NotFound
from chainabs.waterfall import DealParams, TrancheSpec

PARAMS = DealParams(tranches=(TrancheSpec("Senior", "S", 900, 500), TrancheSpec("Equity", "E", 100, 0)),
                    servicer_fee_bps=50, reserve_target_bps=100, initial_reserve=10, default_trigger_bps=500)
DEAL = "0x" + "2" * 40


def record(**changes: object) -> dict[str, object]:
    base = DealRecord(slug="p", name="P", pool="0x" + "1" * 40, contracts={"Deal": DEAL}, roles={"admin": DEAL},
                      params=PARAMS, cutoff_day=20_000).as_json()
    return {**base, **changes}


def test_a_deal_record_round_trips(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    written = DealRecord.from_json("p", record())
    data.write_deal(written)
    assert data.read_deal("p") == written
    assert data.read_deal("other") is None


def test_a_deal_record_without_its_terms_is_refused_not_read_as_no_terms(tmp_path: Path) -> None:
    """Stripping `params` from a deal record must not make the audit compare the deal with itself."""
    data = DataDir(tmp_path)
    data.deals_dir.mkdir()
    for broken in (record(params=None), {k: v for k, v in record().items() if k != "params"}, record(params={})):
        data.deal_path("p").write_text(json.dumps(broken))
        with pytest.raises(InvalidInput, match=r"deals/p\.json is not a readable deal record"):
            data.read_deal("p")
    assert data.deals() == []


def test_keys_a_later_version_adds_are_ignored(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.deals_dir.mkdir()
    newer = record()
    newer["triggers"] = [{"kind": "cumulative_default"}]
    newer["params"]["tranches"][0]["pro_rata_group"] = 1  # type: ignore[index]
    data.deal_path("p").write_text(json.dumps(newer))
    read = data.read_deal("p")
    assert read is not None and read.params == PARAMS


def test_pool_names_become_one_safe_path_component() -> None:
    assert slug("My Pool 2026-01") == "my-pool-2026-01"
    for bad in ("..", ".", "...", "///", "", "x" * 129, "My Pool 2026/01"):  # a separator: not one component
        with pytest.raises(InvalidInput):
            slug(bad)
    with pytest.raises(NotFound):
        DataDir(Path("/nonexistent-data-dir")).find_pool("nothing")


def test_writes_are_atomic_leave_no_temporary_file_and_never_share_one(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                write_json(path, {"writer": n, "i": i, "pad": "y" * 2000})
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(path.read_text())["i"] == 49
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_the_salt_is_private_and_survives_a_second_opener(tmp_path: Path) -> None:
    pool = DataDir(tmp_path).pool("P")
    pool.create()
    salt = pool.salt()
    assert len(salt) == 32 and pool.salt() == salt
    assert stat.S_IMODE(os.stat(pool.salt_path).st_mode) == 0o600
    assert sorted(p.name for p in pool.folder.iterdir()) == ["salt"]


def test_a_period_tape_commits_each_loan_with_its_new_status_and_balance(tmp_path: Path) -> None:
    loans = [CommittedLoan(f"L{i}", "0x" + "ab" * 32, 0, "EUR", 1000, 900, 1800, 20_000, 20_300, 10, 0, 0,
                           10_000, 0, "") for i in range(3)]
    pool = DataDir(tmp_path).pool("P")
    pool.create()
    root = period_root(loans, [0, 1, 6], [800, 900, 0])
    pool.write_period(PeriodTape(period=1, root="0x" + root.hex(), statuses=[0, 1, 6], outstanding=[800, 900, 0]))
    tape = pool.read_period(1)
    assert tape is not None and tape.root == "0x" + root.hex() and tape.outstanding == [800, 900, 0]
    assert root != period_root(loans, [0, 0, 0], [900, 900, 900])
    assert pool.read_period(2) is None
