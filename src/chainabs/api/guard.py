"""The request guard: an ASGI layer in front of the app that every HTTP request passes.

In this order, and the first three before any byte of the body is read:

1. One of each framing header: a request with more than one Content-Type, Content-Length,
   Transfer-Encoding or Authorization header, with both Content-Length and Transfer-Encoding,
   or with a Content-Length that is not a number is refused (400). Two Content-Type headers
   once let this layer read one (`multipart/form-data`, no nesting check) and FastAPI the
   other (`application/json`).
2. Operator routes need the key: a request the router would hand to a route that depends on
   `auth.require_operator` (matched as the router matches it, so no path spelling slips by)
   gets 401 or 403 from `auth.refusal` before its body is read.
3. Body size: `max_body_bytes` for a request with a valid operator key,
   `max_unauthenticated_body_bytes` (64 kB by default) for any other. A declared
   Content-Length over it gets 413 at once; a streamed body is counted as it arrives.
4. Nesting: a body that is not a form is refused (422) when it nests arrays and objects deeper
   than MAX_JSON_DEPTH (chainabs.jsondepth, linear in the body), before anything parses it;
   bodies over INLINE_SCAN_BYTES are scanned in a worker thread, off the event loop, at most
   SCAN_THREADS at once so that scans never take the threads route handlers (/health) run in.

Every refusal is a JSON body `{"error": "<a sentence>"}`, as the app's own errors are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from chainabs.api.auth import Refusal, needs_operator, refusal
from chainabs.api.settings import Settings
from chainabs.jsondepth import nested_deeper_than

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_JSON_DEPTH = 64
INLINE_SCAN_BYTES = 4 * 1024  # larger bodies are scanned in a worker thread
SCAN_THREADS = 2  # at most this many scans at once, beside (not in) the threads that run route handlers
ONE_ONLY = {b"content-type": "Content-Type", b"content-length": "Content-Length",
            b"transfer-encoding": "Transfer-Encoding", b"authorization": "Authorization"}
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class RequestGuard:
    """The checks above, as ASGI middleware: `app.add_middleware(RequestGuard, settings=...,
    routes=...)`, `routes` being the routes of every router the app includes; those that depend
    on `require_operator` are the operator routes."""

    def __init__(self, app: ASGIApp, *, settings: Settings, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.settings = settings
        self.operator_routes = operator_routes(routes)
        self.unauthenticated_cap = min(settings.max_unauthenticated_body_bytes, settings.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers, problem = _framing_headers(scope.get("headers", []))
        if problem is not None:
            await error_response(400, problem)(scope, receive, send)
            return
        authorization = headers.get(b"authorization")
        refused = refusal(None if authorization is None else authorization.decode("latin-1"),
                          self.settings.api_key_hash)
        if refused is not None and self._operator_route(scope):
            await _refuse(refused, scope, receive, send)
            return
        cap = self.settings.max_body_bytes if refused is None else self.unauthenticated_cap
        declared = headers.get(b"content-length")
        if declared is not None and int(declared) > cap:
            await self._too_large(cap, refused is None, scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await self._too_large(cap, refused is None, scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not _is_form(headers.get(b"content-type")) and await self._too_deep(body):
            await error_response(422, f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels")(
                scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_deep(self, body: bytes) -> bool:
        if len(body) <= INLINE_SCAN_BYTES:
            return nested_deeper_than(body, MAX_JSON_DEPTH)
        return await anyio.to_thread.run_sync(nested_deeper_than, body, MAX_JSON_DEPTH, limiter=_scan_limiter())

    def _operator_route(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in self.operator_routes)

    async def _too_large(self, cap: int, authorized: bool, scope: Scope, receive: Receive, send: Send) -> None:
        without = "" if authorized else " without the operator API key"
        await error_response(413, f"request body larger than the limit of {cap} bytes{without}")(scope, receive, send)


_SCANS: RunVar[anyio.CapacityLimiter] = RunVar("chainabs_scans")


def _scan_limiter() -> anyio.CapacityLimiter:
    """The event loop's own limiter of nesting scans (as anyio keeps its default one)."""
    try:
        return _SCANS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(SCAN_THREADS)
        _SCANS.set(limiter)
        return limiter


def operator_routes(routes: Iterable[BaseRoute]) -> list[APIRoute]:
    return [r for r in routes if isinstance(r, APIRoute) and needs_operator(r)]


def _framing_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes], str | None]:
    """The framing headers by lower-case name, and the sentence refusing them, if any."""
    seen: dict[bytes, list[bytes]] = {}
    for name, value in raw:
        name = name.lower()
        if name in ONE_ONLY:
            seen.setdefault(name, []).append(value)
    for name, values in seen.items():
        if len(values) > 1:
            return {}, f"the request has {len(values)} {ONE_ONLY[name]} headers; send one"
    headers = {name: values[0] for name, values in seen.items()}
    if b"content-length" in headers:
        if b"transfer-encoding" in headers:
            return {}, "the request has both Content-Length and Transfer-Encoding headers; send one"
        if not headers[b"content-length"].strip().isdigit():
            return {}, "Content-Length is not a number"
    return headers, None


def _is_form(content_type: bytes | None) -> bool:
    """Whether the body is a form, which no JSON decoder reads: the media type before any
    parameters, as FastAPI and Starlette read it."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower().decode("latin-1") in FORMS


async def _refuse(refused: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(refused.status, refused.message, refused.headers or None)(scope, receive, send)
