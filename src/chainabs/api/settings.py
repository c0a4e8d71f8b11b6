"""The service's settings: one pydantic-settings class, read from CHAINABS_* environment variables."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Settings(BaseSettings):
    """`CHAINABS_DATA_DIR`, `CHAINABS_RPC`, `CHAINABS_API_KEY_HASH`, ... override the defaults.

    The operator API key is never configured in clear: `api_key_hash` is the sha256 hex digest
    of it (`chainabs serve --api-key-env VAR` computes it from a variable and forgets the key).
    Without one, operator endpoints answer 403. A request body may be `max_body_bytes` long with
    the operator key and `max_unauthenticated_body_bytes` without it (api/guard.py).
    """

    model_config = SettingsConfigDict(env_prefix="CHAINABS_", extra="ignore")

    data_dir: Path = Path(".chainabs")
    rpc: str | None = None
    deployment: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key_hash: str | None = Field(None, repr=False)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1)  # with the operator key
    max_unauthenticated_body_bytes: int = Field(64 * 1024, ge=1)  # without it
    confirmations: int = Field(0, ge=0)
    index_interval: float = Field(2.0, gt=0)

    @field_validator("api_key_hash")
    @classmethod
    def _sha256_hex(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().lower()
        if not _SHA256_HEX.fullmatch(value):
            raise ValueError("api_key_hash must be the sha256 hex digest (64 hex digits) of the API key")
        return value
