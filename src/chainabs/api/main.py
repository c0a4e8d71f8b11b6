"""The FastAPI app: `create_app(settings, ctx)` wires the store, the indexer and the routes.

Errors are translated here, once: every ChainabsError becomes a 4xx (or 503 when the chain is
unreachable) with a JSON body `{"error": "<a sentence>"}`; validation errors name the
parameter. Before the app sees a request, the request guard (api/guard.py) refuses duplicate
framing headers, operator requests without the key (before their body is read), bodies over
their cap and bodies nested too deeply; then a public read answered before, at the same index
generation and with the same pool and deal records, is answered again from the cache
(api/cache.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chainabs import __version__, portal
from chainabs.api.cache import CachedAnswers
from chainabs.api.deps import AppState, DealCatalog, PoolCatalog, shown
from chainabs.api.guard import RequestGuard, error_response
from chainabs.api.routes import deals, health, investors, loans, operator, pools
from chainabs.api.settings import Settings
from chainabs.context import Context, open_context
from chainabs.errors import ChainabsError, TapeError, kind_of
from chainabs.indexer import Indexer
from chainabs.store import Store

log = logging.getLogger(__name__)

MAX_SHOWN_ERRORS = 3  # a validation error's sentence names the first few; `detail` lists them all


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    parts, detail = [], []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        where = {"query": "query parameter", "path": "path parameter", "header": "header", "body": "body"}
        if loc and loc[0] in where and len(loc) > 1:
            name = f"{where[loc[0]]} {shown('.'.join(loc[1:]))}"
        else:
            name = ".".join(loc)[:80] or "request"
        msg = str(err.get("msg", "invalid"))
        parts.append(f"{name}: {msg}")
        detail.append({"loc": loc, "msg": msg, "type": str(err.get("type", ""))})
    more = f" (and {len(parts) - MAX_SHOWN_ERRORS} more)" if len(parts) > MAX_SHOWN_ERRORS else ""
    return "; ".join(parts[:MAX_SHOWN_ERRORS]) + more or "invalid request", detail


_STATUS = {"not_found": 404, "invalid_input": 422, "conflict": 409, "chain": 503, "error": 400}


def _install_error_handlers(app: FastAPI) -> None:
    def status_of(exc: ChainabsError) -> int:
        return _STATUS[kind_of(exc)]

    async def chainabs_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChainabsError)
        extra: dict[str, Any] = {}
        if isinstance(exc, TapeError):
            extra["errors"] = [e.as_dict() for e in exc.errors]
        return error_response(status_of(exc), str(exc), **extra)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, detail = _validation_message(exc)
        return error_response(422, message, detail=detail)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s %s", exc.__class__.__name__, request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; the operator's log has the details")

    app.add_exception_handler(ChainabsError, chainabs_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def create_app(settings: Settings | None = None, ctx: Context | None = None, *, store: Store | None = None,
               run_indexer: bool = False) -> FastAPI:
    """The audit service over a data dir's chain, pools and index.

    `ctx` defaults to the context the settings describe (an existing deployment; nothing is
    deployed here); `store` to `<data_dir>/index.sqlite`. With `run_indexer` the indexer runs
    in a thread for the app's lifetime, syncing every `settings.index_interval` seconds. The
    routes reach all of it through one AppState (chainabs.api.deps).
    """
    settings = settings or Settings()
    if ctx is None:
        ctx = open_context(rpc=settings.rpc, data_dir=settings.data_dir, deployment=settings.deployment, create=False)
    if store is None:
        store = Store.open(ctx.data_dir, chain_id=ctx.chain.chain_id)
    lock = threading.RLock()
    indexer = Indexer(ctx, store, confirmations=settings.confirmations, lock=lock)
    state = AppState(settings=settings, ctx=ctx, store=store, indexer=indexer, chain_lock=lock,
                     pools=PoolCatalog(ctx.data_dir), deals=DealCatalog(ctx.data_dir))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = indexer.start(settings.index_interval) if run_indexer else None
        try:
            yield
        finally:
            if thread is not None:
                indexer.stop()
                thread.join(timeout=60)

    app = FastAPI(title="chainabs audit API", version=__version__, lifespan=lifespan,
                  description="Holdings, transfers, pools, loans and inclusion proofs of chainabs deals, "
                              "answered from the chain's events. Amounts are integers in base units; "
                              "token amounts are decimal strings (uint256 exceeds JSON's safe integers).")
    app.state.chainabs = state
    _install_error_handlers(app)
    routers = [module.router for module in (health, pools, deals, loans, investors, operator)]
    for router in routers:
        app.include_router(router)
    portal.mount(app)  # the investor portal at /, after the API's routes
    app.add_middleware(CachedAnswers, state=state)  # inside the guard: the guard still sees every request
    app.add_middleware(RequestGuard, settings=settings, routes=[route for r in routers for route in r.routes])
    return app
