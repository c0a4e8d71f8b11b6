"""A pool's name becomes a folder name (`datadir.slug`), and only a safe single path component
may: issue 14, finding 10, a pool named `..` wrote its files into the data dir's root.

Every door refuses the same names with the same sentence before anything is written: the deal
file (read first by `chainabs pool create`, `POST /operator/pools` and `scripts/deploy.py`) and
`DataDir.pool`, through which every pool folder path is made. The API's door is tested with
the other operator uploads (tests/test_api_operator.py).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from chainabs import cli
from chainabs.context import open_context
from chainabs.datadir import DataDir, slug
from chainabs.dealfile import parse_deal_file
from chainabs.demo import DEMO_DEAL
from chainabs.errors import DealError, InvalidInput
from chainabs.tapegen import write_tape

ROOT = Path(__file__).resolve().parents[1]

BAD_NAMES = [
    ("..", "'..' is only dots, which name the folder itself or its parent, not a new folder"),
    (".", "'.' is only dots"),
    (" ... ", "is only dots"),
    ("a/../b", "'a/../b' contains a path separator ('/'); a pool name becomes one folder name"),
    ("/etc", "'/etc' contains a path separator ('/')"),
    ("..\\..\\windows", "contains a path separator ('\\\\')"),
    ("loans\x00.json", "'loans\\x00.json' contains a control character ('\\x00')"),
    ("two\nlines", "contains a control character ('\\n')"),
    ("x" * 129, "129 characters"),
    ("🙂" * 100_000, "100000 characters"),
    ("Auto Loans Servicing", "ends in '-servicing' (as 'auto-loans-servicing'), which the data dir keeps"),
]
IDS = ["dotdot", "dot", "dots", "traversal", "absolute", "backslashes", "nul", "newline", "129", "100000", "servicing"]


def deal_toml(name: str) -> str:
    return DEMO_DEAL.replace('"Demo Consumer Loans 2026-1"', json.dumps(name, ensure_ascii=False))


@pytest.mark.parametrize("name, words", BAD_NAMES, ids=IDS)
def test_slug_and_the_deal_file_refuse_what_is_not_one_safe_folder(name: str, words: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        slug(name)
    message = str(raised.value)
    assert message.startswith("pool name ") and len(message) < 300 and "\n" not in message, message
    with pytest.raises(InvalidInput):
        DataDir(Path("/nonexistent")).pool(name)
    with pytest.raises(DealError) as refused:
        parse_deal_file(deal_toml(name), "d.toml")
    sentence = str(refused.value)
    assert sentence.startswith("deal file: pool.name: ") and words in sentence and len(sentence) < 300, sentence
    assert "\n" not in sentence


@pytest.mark.parametrize("name, expected", [
    ("Consumer Loans 2026-1", "consumer-loans-2026-1"), ("..a", "..a"), ("a..b", "a..b"), ("Prêt 2026", "pr-t-2026"),
    ("  spaced  ", "spaced"), ("Loans: Servicing Fee Pool", "loans-servicing-fee-pool"), ("x" * 128, "x" * 128)])
def test_ordinary_names_keep_their_slugs(name: str, expected: str) -> None:
    assert slug(name) == expected
    assert parse_deal_file(deal_toml(name), "d.toml").pool.name == name.strip()
    assert DataDir(Path("/data")).pool(name).folder == Path("/data/pools") / expected


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("names-tape") / "tape.csv"
    write_tape(path, 12, 3, "csv")
    return path


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name, words", BAD_NAMES, ids=IDS)
def test_cli_pool_create_refuses_them_and_writes_nothing(tmp_path: Path, tape: Path, name: str, words: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    deal = tmp_path / "deal.toml"
    deal.write_text(deal_toml(name))
    before = _listing(tmp_path)
    status = cli.main(["--data-dir", str(tmp_path / "data"), "pool", "create", "--tape", str(tape),
                       "--deal", str(deal)])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: deal file: pool.name: ") and words in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert _listing(tmp_path) == before  # no data dir, no chain, no pool folder anywhere


def test_cli_pool_lookups_refuse_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    open_context(data_dir=data).chain.journal.close()  # type: ignore[attr-defined]
    before = _listing(tmp_path)
    for name, words in BAD_NAMES[:8]:
        for args in (["proof", "L1", "--pool", name], ["audit", "verify", "--pool", name]):
            assert cli.main(["--data-dir", str(data), *args]) == 1
            err = capsys.readouterr().err
            first = words.split(" contains")[0].split(" is only")[0]
            assert err.startswith("error: pool name ") and len(err.splitlines()) == 1, (args, err)
            assert first in err or "only dots" in err, (args, err)
    assert _listing(tmp_path) == before


def test_the_deploy_script_refuses_them_before_connecting(tmp_path: Path, tape: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "scripts" / "deploy.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.ROOT = tmp_path  # its deployments/ and .chainabs/
    deal = tmp_path / "deal.toml"
    for name, words in BAD_NAMES:
        deal.write_text(deal_toml(name))
        before = _listing(tmp_path)
        assert script.main(["--rpc", "http://127.0.0.1:9", "--tape", str(tape), "--deal", str(deal)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: deal file: pool.name: ") and words in err and len(err.splitlines()) == 1, err
        assert _listing(tmp_path) == before
