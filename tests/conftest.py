"""Chain fixtures: one embedded chain per session, deployed once, reverted after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest, deploy_core


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
