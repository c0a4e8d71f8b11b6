"""Chain fixtures: one embedded chain per session, deployed once, reverted after every test; the
one Anvil node fixture of the tests marked `anvil`; and `fresh_install`, chainabs installed as a
user installs it, once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.chain.anvil import Anvil
from chainabs.deploy import Manifest, deploy_core
from support import DealEnv


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    """A fresh Anvil node for each test module that asks for one (its state never leaks into
    another module's), stopped when the module is done."""
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def session_chain() -> EmbeddedChain:
    return EmbeddedChain()


@pytest.fixture(scope="session")
def core(session_chain: EmbeddedChain) -> Manifest:
    return deploy_core(session_chain)


@pytest.fixture
def chain(session_chain: EmbeddedChain, core: Manifest) -> Iterator[EmbeddedChain]:
    """The session chain with the core contracts, reverted to this point after the test."""
    snap = session_chain.snapshot()
    yield session_chain
    session_chain.revert(snap)


@pytest.fixture
def env(deal_env: DealEnv) -> Iterator[DealEnv]:
    """The module's `deal_env` fixture, reverted to its state after the test."""
    snap = deal_env.chain.snapshot()
    yield deal_env
    deal_env.chain.revert(snap)


@pytest.fixture
def closed(env: DealEnv) -> DealEnv:
    """`env` with its offering closed."""
    D.close(env.h)
    return env


# -- chainabs installed as a user installs it --------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class FreshInstall:
    """chainabs installed from this work tree into a new virtual environment: not editable and
    without the test extras (no pytest, no httpx), as `pip install <repo>` leaves it."""

    venv: Path
    home: Path  # an empty folder outside the repository: the working directory of `run`

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment less what would lead the install back to the work tree
        (PYTHONPATH, the test venv, CHAINABS_* settings), plus `extra`."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("CHAINABS_")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **extra}

    def run(self, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        """`chainabs *args` of the install, in `home`; `env` adds environment variables."""
        return subprocess.run([str(self.bin("chainabs")), *args], cwd=self.home, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def fresh_install(tmp_path_factory: pytest.TempPathFactory) -> FreshInstall:
    """A new venv with chainabs installed from a copy of the work tree (so the build leaves
    nothing in it): what a user gets from `pip install`, without the test extras. About a
    minute the first time, once per session; pip's index and wheel cache are the machine's."""
    root = tmp_path_factory.mktemp("fresh-install")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
                          capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0:
        pytest.fail(f"pip install of the work tree into a fresh venv failed:\n"
                    f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    home = root / "home"
    home.mkdir()
    return FreshInstall(venv=venv, home=home)
