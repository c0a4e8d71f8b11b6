"""`chainabs project` and `chainabs breakeven` from a deal file and tape: --json and --csv
shapes, and bad options refused with one sentence naming the option."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from chainabs import cli
from chainabs.commands.analytics import CSV_COLUMNS
from chainabs.tapegen import write_tape

ROOT = Path(__file__).resolve().parents[2]
DEAL = str(ROOT / "examples" / "deal-revolving.toml")


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tape") / "tape.csv"
    write_tape(path, 150, 4, "csv")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = cli.main(list(args))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


SCENARIO = ("--cdr", "6", "--cpr", "12", "--recovery", "40", "--lag", "3", "--dq60", "1.5")


def test_project_json(capsys: pytest.CaptureFixture[str], tape: str) -> None:
    status, out, _ = _run(capsys, "--json", "project", "--deal", DEAL, "--tape", tape, *SCENARIO, "--call",
                          "--price", "Class A=99.5,CABS-RB=98")
    assert status == 0
    doc = json.loads(out)
    assert set(doc) == {"assumptions", "periods", "tranches", "triggers", "called_period"}
    assert doc["assumptions"]["cdr_bps"] == 600 and doc["assumptions"]["dq60_bps"] == 150
    assert [t["name"] for t in doc["tranches"]] == ["Class A", "Class B", "Class C"]
    assert isinstance(doc["tranches"][0]["irr"], float) and isinstance(doc["tranches"][1]["irr"], float)
    assert doc["tranches"][2]["irr"] is None
    assert len(doc["triggers"]) == 4 and doc["called_period"] == doc["periods"][-1]["period"]
    first = doc["periods"][0]
    assert first["status"] == "revolving" and first["purchased_units"] > 0
    assert len(first["tranches"]) == 3 and all(isinstance(v, int) for v in first["tranches"][0].values()
                                               if not isinstance(v, str))


def test_project_csv(capsys: pytest.CaptureFixture[str], tape: str) -> None:
    status, out, _ = _run(capsys, "project", "--deal", DEAL, "--tape", tape, *SCENARIO, "--csv", "--periods", "5")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 5 * 3
    assert [r[0] for r in rows[1:4]] == ["1", "1", "1"] and [r[12] for r in rows[1:4]] == ["Class A", "Class B",
                                                                                             "Class C"]


def test_breakeven_json(capsys: pytest.CaptureFixture[str], tape: str) -> None:
    status, out, _ = _run(capsys, "--json", "breakeven", "--deal", DEAL, "--tape", tape, "--tranche", "Class B",
                          "--cpr", "10", "--recovery", "40", "--lag", "3", "--stressed-recovery", "10")
    assert status == 0
    doc = json.loads(out)
    base, stressed = doc["results"]
    assert (base["recovery_bps"], stressed["recovery_bps"]) == (4000, 1000)
    assert 0 < stressed["cdr_bps"] < base["cdr_bps"]


@pytest.mark.parametrize(("args", "option"), [
    (("--cdr", "-1"), "--cdr"), (("--cpr", "101"), "--cpr"), (("--recovery", "abc"), "--recovery"),
    (("--dq60", "100.5"), "--dq60"), (("--lag", "-2"), "--lag"), (("--price", "A99"), "--price"),
    (("--periods", "0"), "--periods"), (("--reinvest-rate-bps", "9000"), "--reinvest-rate-bps"),
])
def test_bad_options_refused(capsys: pytest.CaptureFixture[str], tape: str, args: tuple[str, ...],
                             option: str) -> None:
    status, out, err = _run(capsys, "project", "--deal", DEAL, "--tape", tape, *args)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and f"argument {option}:" in err


def test_unknown_tranche_refused(capsys: pytest.CaptureFixture[str], tape: str) -> None:
    status, out, err = _run(capsys, "breakeven", "--deal", DEAL, "--tape", tape, "--tranche", "Class Z")
    assert status == 1 and out == ""
    assert "--tranche 'Class Z' is not a tranche of the deal" in err
    status, _, err = _run(capsys, "project", "--deal", DEAL, "--tape", tape, "--price", "Class Z=99")
    assert status == 1 and "--price names tranche 'Class Z'" in err
    status, _, err = _run(capsys, "project", "--deal", DEAL, *SCENARIO)
    assert status == 1 and "--deal and --tape go together" in err
