"""A plain `pip install` (no test extras, not editable) runs `chainabs audit verify` on a demo deal.

The package is installed into a fresh virtual environment from a copy of the source (so the
build leaves nothing in the checkout), and everything runs from a directory outside it: the
demo builds a deal, the indexer indexes it, and the audit passes every check, the in-process
API comparison included. The audit's API check once needed starlette's test client, whose
httpx is only a test extra: such an install ended in ModuleNotFoundError.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # about 1.5 min, most of it pip installing the dependencies


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHAINABS_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_plain_install_runs_audit_verify_on_a_demo_deal(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for item in ROOT.iterdir():
        if item.is_file():
            shutil.copy2(item, source / item.name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], tmp_path, 120)
    assert made.returncode == 0, made.stderr
    python, chainabs = venv / "bin" / "python", venv / "bin" / "chainabs"
    installed = run([str(python), "-m", "pip", "install", "--quiet", str(source)], tmp_path, 1200)
    assert installed.returncode == 0, installed.stderr[-3000:]

    where = run([str(python), "-c", "import importlib.util as u, chainabs; print(chainabs.__file__); "
                 "print(*(u.find_spec(m) is None for m in ('pytest', 'httpx')))"], tmp_path, 60)
    location, absent = where.stdout.splitlines()
    assert location.startswith(str(venv)), "chainabs must come from the fresh install, not the checkout"
    assert absent == "True True", "the fresh environment must hold neither the test extras nor httpx"

    data = tmp_path / "data"
    demo = run([str(chainabs), "demo", "--no-serve", "--loans", "300", "--periods", "3", "--data-dir", str(data)],
               tmp_path, 600)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    index = run([str(chainabs), "--data-dir", str(data), "index", "--once"], tmp_path, 300)
    assert index.returncode == 0, index.stderr[-2000:]

    verify = run([str(chainabs), "--data-dir", str(data), "audit", "verify"], tmp_path, 600)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    lines = verify.stdout.splitlines()
    assert lines[-1].startswith("PASS: 13 passed, 0 failed, 0 not checked"), lines[-1]
    api = next(line for line in lines if line.startswith("PASS  api:"))
    assert "index the data dir's (a copy)" in api and '"holdings":' in api
    assert any(line.startswith("PASS  index:") for line in lines)
