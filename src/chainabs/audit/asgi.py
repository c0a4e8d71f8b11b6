"""A small in-process client for an ASGI app: GET requests answered by the app itself, with its
lifespan run around them, on one asyncio event loop in the calling thread.

The audit asks the API what a user would (routing, middleware, error handlers and serialisation
included) without a socket and without an HTTP client library: starlette's test client needs
httpx, which is a test extra, so a plain install could not run `chainabs audit verify`.
As with that test client, an exception the app raises reaches the caller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import unquote

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

HOST = "audit.invalid"


@dataclass(frozen=True)
class Reply:
    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class AsgiClient:
    """`with AsgiClient(app) as client: client.get("/pools")`: the app's lifespan starts on
    entering and shuts down on leaving; each `get` runs one request to completion."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._runner: asyncio.Runner | None = None
        self._state: dict[str, Any] = {}           # the lifespan's state, copied into each request
        self._to_app: asyncio.Queue[Message] | None = None
        self._from_app: asyncio.Queue[Message] | None = None
        self._lifespan: asyncio.Task[None] | None = None

    def __enter__(self) -> AsgiClient:
        self._runner = asyncio.Runner()
        try:
            self._runner.run(self._startup())
        except BaseException:
            self._runner.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._runner is not None
        try:
            self._runner.run(self._shutdown())
        finally:
            self._runner.close()
            self._runner = None

    def get(self, path: str) -> Reply:
        if self._runner is None:
            raise RuntimeError("AsgiClient.get outside its `with` block")
        return self._runner.run(self._request("GET", path))

    # -- the lifespan protocol ---------------------------------------------------------------

    async def _startup(self) -> None:
        self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self._state}
        self._lifespan = asyncio.create_task(self._run_lifespan(scope))
        await self._to_app.put({"type": "lifespan.startup"})
        reply = await self._from_app.get()  # complete, failed, or unsupported (then there is no lifespan)
        if reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the app did not start: {reply.get('message', '')}")

    async def _run_lifespan(self, scope: MutableMapping[str, Any]) -> None:
        assert self._to_app is not None and self._from_app is not None
        try:
            await self.app(scope, self._to_app.get, self._from_app.put)
        except Exception as exc:  # the ASGI spec: an app without lifespan support raises
            await self._from_app.put({"type": "lifespan.unsupported", "error": exc})

    async def _shutdown(self) -> None:
        assert self._to_app is not None and self._from_app is not None and self._lifespan is not None
        if not self._lifespan.done():
            await self._to_app.put({"type": "lifespan.shutdown"})
            reply = await self._from_app.get()
            await self._lifespan
            if reply["type"] == "lifespan.shutdown.failed":
                raise RuntimeError(f"the app did not shut down: {reply.get('message', '')}")

    # -- one HTTP request --------------------------------------------------------------------

    async def _request(self, method: str, target: str) -> Reply:
        path, _, query = target.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": unquote(path), "raw_path": path.encode(), "root_path": "",
                 "query_string": query.encode(), "headers": [(b"host", HOST.encode()), (b"accept", b"*/*")],
                 "client": None, "server": (HOST, 80), "extensions": {}, "state": dict(self._state)}
        sent = False
        done = asyncio.Event()
        start: Message | None = None
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # the client stays connected until the response is complete
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        if start is None:
            raise RuntimeError(f"{method} {target}: the app sent no response")
        done.set()
        return Reply(int(start["status"]), [(bytes(k), bytes(v)) for k, v in start.get("headers", [])],
                     b"".join(chunks))
