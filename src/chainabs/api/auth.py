"""Operator endpoints: a bearer API key, compared as sha256 digests in constant time.

The key is checked twice with one function, `refusal`: by the request guard (api/guard.py),
before any byte of the body is read, and by the `Operator` dependency of every operator route,
which also puts the bearer scheme in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="the operator API key")


@dataclass(frozen=True)
class Refusal:
    """Why a request may not use an operator endpoint: its status, sentence and headers."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


NO_KEY = Refusal(401, "this endpoint needs the operator API key as a bearer token", {"WWW-Authenticate": "Bearer"})
WRONG_KEY = Refusal(403, "the API key is not valid for operator endpoints")


def hash_api_key(key: str) -> str:
    """What `CHAINABS_API_KEY_HASH` holds for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def refusal(authorization: str | None, expected_hash: str | None) -> Refusal | None:
    """None when the Authorization header's value carries the operator key as a bearer token;
    else 401 without a bearer key, 403 with a wrong one (or when no key is configured)."""
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if not scheme or not key or scheme.lower() != "bearer":
        return NO_KEY
    if expected_hash is None or not hmac.compare_digest(hash_api_key(key), expected_hash):
        return WRONG_KEY
    return None


def require_operator(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    refused = refusal(request.headers.get("authorization"), request.app.state.chainabs.settings.api_key_hash)
    if refused is not None:
        raise HTTPException(refused.status, refused.message, headers=refused.headers or None)


def needs_operator(route: APIRoute) -> bool:
    """Whether the route depends on `require_operator`, directly or through another dependency."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is require_operator:
            return True
        pending.extend(dependant.dependencies)
    return False


Operator = Annotated[None, Depends(require_operator)]
