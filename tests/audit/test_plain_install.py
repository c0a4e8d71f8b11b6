"""A plain `pip install` (not editable, no test extras) runs `chainabs audit verify` on a demo deal.

The install is conftest's `fresh_install` (a new venv, once per session); everything runs from a
folder outside the repository: the install's demo builds a deal, its indexer indexes it, and its
audit passes every check, the in-process API comparison included. That check once needed
starlette's test client, whose httpx is only a test extra: such an install could not audit.
"""

from __future__ import annotations

import pytest

from conftest import FreshInstall

pytestmark = pytest.mark.slow  # the session's fresh install (about a minute), then about 25 s


def test_a_plain_install_audits_a_demo_deal(fresh_install: FreshInstall) -> None:
    data = fresh_install.home / "audited"
    demo = fresh_install.run("--data-dir", str(data), "demo", "--no-serve", "--loans", "300", "--periods", "3")
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    index = fresh_install.run("--data-dir", str(data), "index", "--once")
    assert index.returncode == 0, index.stderr[-2000:]

    verify = fresh_install.run("--data-dir", str(data), "audit", "verify")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    lines = verify.stdout.splitlines()
    assert lines[-1].startswith("PASS: 13 passed, 0 failed, 0 not checked"), lines[-1]
    assert any(line.startswith("PASS  index:") for line in lines)
    api = next(line for line in lines if line.startswith("PASS  api:"))
    assert "index the data dir's (a copy)" in api and '"holdings":' in api
