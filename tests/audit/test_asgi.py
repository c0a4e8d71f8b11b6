"""The audit's in-process ASGI client: the app's lifespan around the requests, replies as a user
gets them (status, body, error handlers), and the app's exceptions reaching the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from chainabs.audit.asgi import AsgiClient


def test_requests_run_inside_the_lifespan_and_replies_are_what_a_user_gets() -> None:
    seen: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        seen.append("startup")
        yield
        seen.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{name}")
    def item(name: str, n: int = 1) -> dict[str, object]:  # a sync route: run in a worker thread
        seen.append(f"item {name}")
        return {"name": name, "n": n}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        return {"async": True}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with AsgiClient(app) as client:
        assert seen == ["startup"]
        reply = client.get("/items/a%20b?n=3")
        assert (reply.status_code, reply.json()) == (200, {"name": "a b", "n": 3})
        assert client.get("/slow").json() == {"async": True}
        missing = client.get("/nowhere")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        assert client.get("/items/x?n=notanumber").status_code == 422
        with pytest.raises(RuntimeError, match="boom"):
            client.get("/boom")
    assert seen == ["startup", "item a b", "shutdown"]
