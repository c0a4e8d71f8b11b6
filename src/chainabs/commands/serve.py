"""`chainabs serve`: the audit API (FastAPI on uvicorn) with the indexer running beside it."""

from __future__ import annotations

import argparse
import logging
import os

from chainabs.api.auth import hash_api_key
from chainabs.api.main import create_app
from chainabs.api.settings import Settings
from chainabs.context import open_context
from chainabs.errors import ChainabsError

log = logging.getLogger(__name__)
DEFAULT_KEY_ENV = "CHAINABS_API_KEY"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("serve", help="serve the audit API and keep the index in step with the chain")
    parser.add_argument("--host", default=None, help="interface to listen on (default $CHAINABS_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $CHAINABS_PORT or 8000)")
    parser.add_argument("--api-key-env", default=DEFAULT_KEY_ENV, metavar="VAR",
                        help=f"environment variable holding the operator API key (default {DEFAULT_KEY_ENV}); "
                             "only its sha256 is kept. $CHAINABS_API_KEY_HASH may hold the hash instead")
    parser.add_argument("--confirmations", type=int, default=None, metavar="N",
                        help="only index blocks at least N deep (default $CHAINABS_CONFIRMATIONS or 0)")
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment settings, overridden by the command line; the API key becomes its hash."""
    overrides = {name: getattr(args, name) for name in ("host", "port", "confirmations", "rpc", "data_dir",
                                                        "deployment") if getattr(args, name, None) is not None}
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        raise ChainabsError(f"bad service settings: {exc}") from None
    key = os.environ.get(args.api_key_env)
    if key:
        settings.api_key_hash = hash_api_key(key)
    if settings.api_key_hash is None:
        log.warning("no operator API key configured (%s or CHAINABS_API_KEY_HASH): operator endpoints answer 403",
                    args.api_key_env)
    return settings


def run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_from(args)
    ctx = open_context(rpc=settings.rpc, data_dir=settings.data_dir, deployment=settings.deployment, create=False)
    app = create_app(settings, ctx, run_indexer=True)
    print(f"chainabs audit API on http://{settings.host}:{settings.port} (docs at /docs), "
          f"data dir {ctx.data_dir}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="debug" if args.debug else "info")
    return 0
