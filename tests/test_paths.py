"""chainabs.paths: where the package data, the checkout and node_modules are, and the variables
that say so for a plain install."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainabs import build, paths

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.REPO_ENV, raising=False)
    monkeypatch.delenv(paths.NODE_MODULES_ENV, raising=False)


def test_a_checkout_finds_everything_by_itself() -> None:
    assert paths.repo() == REPO
    assert paths.node_modules() == REPO / "node_modules"
    assert paths.artifacts() == REPO / "src" / "chainabs" / "artifacts" and (paths.artifacts() / "Deal.json").is_file()
    assert (paths.portal_static() / "index.html").is_file()


def test_the_environment_names_a_checkout_and_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(paths.REPO_ENV, str(tmp_path / "checkout"))
    assert paths.repo() == tmp_path / "checkout" and paths.node_modules() == tmp_path / "checkout" / "node_modules"
    monkeypatch.setenv(paths.NODE_MODULES_ENV, str(tmp_path / "npm"))
    assert paths.node_modules() == tmp_path / "npm"
    monkeypatch.setenv(paths.NODE_MODULES_ENV, "")  # empty is unset
    assert paths.node_modules() == tmp_path / "checkout" / "node_modules"


def test_compiling_without_a_checkout_is_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "repo", lambda: None)
    with pytest.raises(build.BuildError, match="CHAINABS_REPO"):
        build.check_artifacts()
    with pytest.raises(build.BuildError, match="CHAINABS_NODE_MODULES"):
        build.node_modules()
    assert "Deal" in build.artifact_names()  # the artifacts are package data: no checkout needed
