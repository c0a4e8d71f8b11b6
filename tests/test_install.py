"""chainabs as a user installs it (`pip install <repo>`, not editable, no test extras): the demo
runs and the service serves the portal, from outside the repository."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chainabs.datadir import DataDir
from conftest import REPO, FreshInstall

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_dir(fresh_install: FreshInstall) -> Path:
    """A demo deal made by the install, in a data dir outside the repository."""
    data = fresh_install.home / "demo"
    done = fresh_install.run("--data-dir", str(data), "demo", "--no-serve", "--loans", "300", "--periods", "2",
                             "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["verify"] == "PASS" and out["periods"] == 2, out
    return data


def test_the_install_is_not_the_work_tree(fresh_install: FreshInstall) -> None:
    script = "import chainabs, importlib.util; print(chainabs.__file__); print(importlib.util.find_spec('httpx'))"
    done = subprocess.run([str(fresh_install.bin("python")), "-c", script], cwd=fresh_install.home,
                          env=fresh_install.env(), capture_output=True, text=True, check=True)
    where, httpx = done.stdout.split()
    assert Path(where).is_relative_to(fresh_install.venv) and not Path(where).is_relative_to(REPO)
    assert httpx == "None"  # a test extra, not there


def test_the_demo_runs_from_the_install(demo_dir: Path) -> None:
    data = DataDir(demo_dir)
    assert len(list(data.pools())) == 1 and len(list(data.deal_files())) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def served(fresh_install: FreshInstall, demo_dir: Path) -> Iterator[str]:
    """`chainabs serve` of the install over the demo deal; node_modules named by CHAINABS_NODE_MODULES."""
    port = _free_port()
    proc = subprocess.Popen([str(fresh_install.bin("chainabs")), "--data-dir", str(demo_dir), "serve",
                             "--port", str(port)], cwd=fresh_install.home,
                            env=fresh_install.env(CHAINABS_NODE_MODULES=str(REPO / "node_modules")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"chainabs serve ended ({proc.returncode}):\n{output[-3000:]}")
            try:
                if _get(url + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chainabs serve did not answer /health within 300 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_install_serves_the_portal_and_the_api(served: str) -> None:
    status, body = _get(served + "/")
    assert status == 200 and b"<html" in body.lower()
    status, body = _get(served + "/portal/app.js")
    assert status == 200 and body
    status, body = _get(served + "/pools")
    assert status == 200 and json.loads(body)["total"] == 1
    status, body = _get(served + "/vendor/sha3.mjs")  # from CHAINABS_NODE_MODULES: the install has no checkout
    assert status == 200 and b"keccak" in body.lower()


def test_the_install_compiles_only_with_a_checkout(fresh_install: FreshInstall) -> None:
    done = fresh_install.run("build", "--check")
    assert done.returncode == 1 and "set CHAINABS_REPO" in done.stderr and "Traceback" not in done.stderr
    assert fresh_install.run("build", "--check", CHAINABS_REPO=str(REPO)).returncode == 0
