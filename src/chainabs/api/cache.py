"""Answers kept until the index or the data dir changes: the public reads' JSON bodies.

Every public read answers from the index and the data dir's files, so the same request gets
the same body until the indexer stores a page (a new block or a rollback: the store's
generation moves) or a pool or deal record changes. Two layers keep that:

- `ResponseCache.answer`, which a route calls with the key of what it answers (the request's
  values, the pool's and deal's record stamps) and a function building its response model: the
  body is built once per generation, as FastAPI would serialise the model.
- `CachedAnswers`, ASGI middleware inside the request guard: a GET whose exact path and query
  were answered from the ResponseCache, at the current generation and with the data dir's
  records unchanged, gets that body again without passing FastAPI's routing, dependencies and
  validation (which cost most of a request's CPU once the figures themselves are kept).

Only 200 answers of routes that call `ResponseCache.answer` are kept; errors, the portal, the
operator routes and /health always go through the app. Both layers are emptied at each new
generation and bounded in entries and bytes (least recently used go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from chainabs.store import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class _Answered:
    """Set by ResponseCache.answer for the request being handled: the generation it used."""

    generation: int | None = None


_ANSWERED: ContextVar[_Answered | None] = ContextVar("chainabs_answered", default=None)


class _Bounded:
    """An LRU map of bytes with a count and a byte budget (a body over a quarter is not kept)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size, self.max_bytes = size, max_bytes
        self.items: OrderedDict[Any, tuple[Any, bytes]] = OrderedDict()
        self.bytes = 0

    def get(self, key: Any) -> tuple[Any, bytes] | None:
        item = self.items.get(key)
        if item is not None:
            self.items.move_to_end(key)
        return item

    def put(self, key: Any, tag: Any, body: bytes) -> None:
        if len(body) > self.max_bytes // 4:
            return
        old = self.items.pop(key, None)
        if old is not None:
            self.bytes -= len(old[1])
        self.items[key] = (tag, body)
        self.bytes += len(body)
        while len(self.items) > self.size or self.bytes > self.max_bytes:
            self.bytes -= len(self.items.popitem(last=False)[1][1])

    def clear(self) -> None:
        self.items.clear()
        self.bytes = 0


class ResponseCache:
    """The JSON bodies of public reads, per index generation (see the module's docstring)."""

    def __init__(self, size: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._generation: int | None = None
        self._bodies = _Bounded(size, max_bytes)
        self._raw = _Bounded(size, max_bytes)  # (path, query) -> ((generation, files), body)
        self._lock = threading.Lock()

    def _at(self, generation: int) -> None:
        if generation != self._generation:
            self._bodies.clear()
            self._raw.clear()
            self._generation = generation

    def answer(self, store: Store, key: tuple[Any, ...], build: Callable[[], BaseModel]) -> Response:
        generation = store.generation()
        with self._lock:
            self._at(generation)
            item = self._bodies.get(key)
        if item is None:
            body = build().model_dump_json(by_alias=True).encode()
            with self._lock:
                if generation == self._generation:
                    self._bodies.put(key, None, body)
        else:
            body = item[1]
        answered = _ANSWERED.get()
        if answered is not None:
            answered.generation = generation
        return Response(body, media_type="application/json")

    def replay(self, raw: tuple[str, bytes], generation: int, files: Any) -> bytes | None:
        """The body last answered to exactly this path and query, if still current."""
        with self._lock:
            self._at(generation)
            item = self._raw.get(raw)
        return item[1] if item is not None and item[0] == (generation, files) else None

    def remember(self, raw: tuple[str, bytes], generation: int, files: Any, body: bytes) -> None:
        with self._lock:
            if generation == self._generation:
                self._raw.put(raw, (generation, files), body)


_HEADERS = [(b"content-type", b"application/json")]


class CachedAnswers:
    """ASGI middleware: replays ResponseCache answers to the same GET (see the module's docstring).

    `state` gives the cache, the store and the data dir's record stamps (the AppState)."""

    def __init__(self, app: ASGIApp, *, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        state = self.state
        raw = (scope["path"], scope.get("query_string", b""))
        generation = state.store.generation()
        files = (state.pools.stamps(), state.deals.stamps())
        body = state.responses.replay(raw, generation, files)
        if body is not None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        answered = _Answered()
        token = _ANSWERED.set(answered)
        status: int | None = None
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status == 200:
                parts.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False) and answered.generation == generation:
                    state.responses.remember(raw, generation, files, b"".join(parts))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            _ANSWERED.reset(token)
