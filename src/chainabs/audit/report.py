"""What an audit reports: checks with a result and the figures they compared."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SHOWN = 10  # mismatches listed in a check's figures; the count is always complete


@dataclass
class Check:
    """One check: its name, PASS / FAIL / NOT CHECKED, and the figures it compared."""

    name: str
    ok: bool | None            # None: not checked (what it needs is absent); never a FAIL
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return "NOT CHECKED" if self.ok is None else "PASS" if self.ok else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "result": self.result, "figures": self.figures}

    def line(self) -> str:
        """The check for people: result, name and its figures (empty lists left out)."""
        shown = [f"{k} {v if isinstance(v, (int, str)) else json.dumps(v, separators=(',', ':'))}"
                 for k, v in self.figures.items() if v != []]
        return f"{self.result:<4}  {self.name}: {'; '.join(shown)}"


def passed(checks: Iterable[Check]) -> bool:
    """No check failed (a check not run is not a failure)."""
    return all(c.ok is not False for c in checks)


def first(items: list[Any]) -> list[Any]:
    """The mismatches a check lists (its figures count them all)."""
    return items[:SHOWN]


@dataclass
class AuditReport:
    """Every check of a deal, the block they were made at and how many events they read."""

    checks: list[Check]
    head: int
    events: int
    seconds: float

    @property
    def ok(self) -> bool:
        return passed(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"verify": "PASS" if self.ok else "FAIL", "head": self.head, "events": self.events,
                "seconds": round(self.seconds, 2), "checks": [c.as_dict() for c in self.checks]}
