"""Chain fixtures: one embedded chain per session, deployed once, reverted after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chainabs import deal as D
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest, deploy_core
from support import DealEnv


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
