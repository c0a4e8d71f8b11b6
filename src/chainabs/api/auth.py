"""Operator endpoints: a bearer API key, compared as sha256 digests in constant time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="the operator API key")


def hash_api_key(key: str) -> str:
    """What `CHAINABS_API_KEY_HASH` holds for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def require_operator(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """401 without a bearer key, 403 with a wrong one (or when no key is configured)."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "this endpoint needs the operator API key as a bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    expected = request.app.state.chainabs.settings.api_key_hash
    presented = hash_api_key(credentials.credentials)
    if expected is None or not hmac.compare_digest(presented, expected):
        raise HTTPException(403, "the API key is not valid for operator endpoints")


Operator = Annotated[None, Depends(require_operator)]
