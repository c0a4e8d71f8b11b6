"""`chainabs purchase check`: one call into the service, its figures printed (or `--json`), a
refusal as one sentence with `kind` (and the breaches or bad cells) under `--json`; never a
chain opened, never a file written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainabs import cli
from purchase_world import deal_text, four_regions, loan, make_pool, snapshot, write_tape


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    make_pool(data, four_regions())
    deal = tmp_path / "deal.toml"
    deal.write_text(deal_text())
    return {"data": str(data), "deal": str(deal), "dir": str(tmp_path)}


def run(world: dict[str, str], capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["--data-dir", world["data"], "purchase", "check", "--deal", world["deal"], *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def tape(world: dict[str, str], rows: list[dict[str, str]], name: str = "buy.csv") -> str:
    return str(write_tape(Path(world["dir"]) / name, rows))


def test_an_accepted_purchase_prints_its_figures(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(Path(world["data"]))
    path = tape(world, [loan("N1", region="EE"), loan("N2", region="AT", rate="0.1000", status="defaulted")])
    status, out, err = run(world, capsys, "--tape", path)
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "purchase buy.csv for pool 'consumer-loans-2026-r1': accepted (checked only, nothing minted)"
    assert lines[1] == "  loans on tape 2, eligible 1, ineligible 1 (status:defaulted 1)"
    assert lines[2].startswith("  buys 1,000.000000 EUR outstanding (1000000000 units), root 0x")
    assert lines[3] == "  pool outstanding 4,000.000000 EUR now, 5,000.000000 EUR after"
    assert lines[4] == "  largest region 'AT': 20.00 % (1000000000 units), limit 40.00 %"
    assert lines[5].endswith(": 1,000.000000 EUR, limit 2,000.000000 EUR")
    assert lines[6] == "  weighted average coupon 20.00 %, limit 18.00 %"
    assert snapshot(Path(world["data"])) == before
    assert not (Path(world["data"]) / "chain").exists()  # no chain opened


def test_json_output(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(world, capsys, "--tape", tape(world, [loan("N1", region="EE")]), "--json")
    data = json.loads(out)
    assert status == 0 and data["accepted"] is True
    assert (data["count"], data["outstanding_units"], data["outstanding_units_after"]) == (1, 10**9, 5 * 10**9)
    assert data["limits"] == {"max_region_share_bps": 4000, "max_borrower_outstanding_units": 2 * 10**9,
                              "min_wac_bps": 1800}
    assert data["root"].startswith("0x") and len(data["root"]) == 66
    # the global flag before the command works too
    status = cli.main(["--json", "--data-dir", world["data"], "purchase", "check", "--deal", world["deal"],
                       "--tape", tape(world, [loan("N1", region="EE")])])
    assert status == 0 and json.loads(capsys.readouterr().out)["count"] == 1


def test_a_breach_is_one_sentence_and_json_names_it(world: dict[str, str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tape(world, [loan("N1", region="AT", outstanding="1000.01")])
    status, out, err = run(world, capsys, "--tape", path)
    assert status == 1 and out == ""
    assert err.startswith("error: purchase refused, nothing minted: max_region_share: region 'AT' would hold 40.01 %")
    assert err.rstrip().endswith("; loans N1") and err.count("\n") == 1
    status, out, _ = run(world, capsys, "--tape", path, "--json")
    data = json.loads(out)
    assert status == 1 and data["kind"] == "invalid_input"
    assert [(b["limit"], b["loan_ids"], b["loan_count"]) for b in data["breaches"]] == [("max_region_share", ["N1"], 1)]


def test_a_bad_tape_lists_its_cells(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path = tape(world, [loan("N1", region="EE"), loan("P3", region="EE"), loan("N1", region="FI")])
    status, out, _ = run(world, capsys, "--tape", path, "--json")
    data = json.loads(out)
    assert status == 1 and data["kind"] == "invalid_input"
    assert [(e["line"], e["reason"]) for e in data["errors"]] == [(4, "duplicate loan id (first on line 2)")]
    status, out, _ = run(world, capsys, "--tape", tape(world, [loan("N1", region="EE"), loan("P3", region="EE")]),
                         "--json")
    assert [(e["line"], e["value"], e["reason"]) for e in json.loads(out)["errors"]] == [
        (3, "P3", "already in the pool")]


def test_no_pool_no_file(world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(world, capsys, "--tape", tape(world, [loan("N1")]), "--pool", "other", "--json")
    assert status == 1 and json.loads(out)["kind"] == "not_found"
    status, out, _ = run(world, capsys, "--tape", str(tmp_path / "missing.csv"), "--json")
    assert status == 1 and json.loads(out)["kind"] == "error" and "missing.csv" in json.loads(out)["error"]
    empty = tmp_path / "empty-data"
    status = cli.main(["--data-dir", str(empty), "purchase", "check", "--deal", world["deal"],
                       "--tape", tape(world, [loan("N1")])])
    assert status == 1 and not empty.exists()  # a data dir that is not there is not created
