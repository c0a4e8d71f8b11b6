"""GET /health: is the chain reachable and how far behind it is the index."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chainabs.api.deps import StateDep
from chainabs.errors import ChainabsError

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    chain_id: int
    chain_head: int | None
    indexed_head: int | None
    lag: int | None
    confirmations: int


@router.get("/health", response_model=Health, responses={503: {"description": "the chain is unreachable"}})
def health(state: StateDep) -> Health | JSONResponse:
    indexed = state.store.cursor()
    body = Health(status="ok", chain_id=state.ctx.chain.chain_id, chain_head=None, indexed_head=indexed, lag=None,
                  confirmations=state.indexer.confirmations)
    try:
        with state.chain_lock:
            body.chain_head = state.indexer.source.head()
    except ChainabsError as exc:
        body.status = f"chain unreachable: {exc}"
        return JSONResponse(body.model_dump(), status_code=503)
    body.lag = body.chain_head - indexed if indexed is not None else None
    return body
