"""Slither on our contracts with the pinned compiler: no high or medium finding, every lower one
accepted with a reason in security/slither-accepted.json, and the ERC conformance checks pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checker() -> Any:
    spec = importlib.util.spec_from_file_location("slither_check", ROOT / "scripts" / "slither_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def analysis(checker: Any) -> Any:
    return checker.analyse()


def test_no_high_or_medium_findings_and_every_lower_one_is_accepted(checker: Any, analysis: Any) -> None:
    found = checker.findings(analysis)
    assert found, "Slither reported nothing at all: the analysis did not run on our contracts"
    assert [f for f in found if f.impact in ("High", "Medium")] == []
    accepted = checker.accepted()
    assert all(len(reason) > 20 for reason in accepted.values())
    assert sorted({f.key for f in found} - set(accepted)) == []


def test_erc_conformance(checker: Any, analysis: Any) -> None:
    assert checker.erc_problems(analysis) == {"TrancheToken": [], "LoanToken": []}
