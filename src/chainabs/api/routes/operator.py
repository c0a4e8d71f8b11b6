"""Operator endpoints (bearer API key): for now, run one indexer sync on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from chainabs.api.auth import Operator
from chainabs.api.deps import StateDep

router = APIRouter(prefix="/operator", tags=["operator"])


@router.post("/index", responses={401: {"description": "no API key"}, 403: {"description": "wrong API key"}})
def index_now(state: StateDep, _: Operator) -> dict[str, Any]:
    """Index every confirmed block not yet indexed, now; returns what was read."""
    return state.indexer.sync().as_dict()
