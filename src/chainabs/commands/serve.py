"""`chainabs serve`: the audit API (FastAPI on uvicorn) with the indexer running beside it.

`listen` and `serve` are shared with `chainabs demo`, which serves its deal the same way.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from pydantic import ValidationError

from chainabs.api.auth import hash_api_key
from chainabs.api.main import create_app
from chainabs.api.settings import Settings
from chainabs.context import Context, open_context
from chainabs.errors import Conflict, InvalidInput
from chainabs.store import Store

log = logging.getLogger(__name__)
DEFAULT_KEY_ENV = "CHAINABS_API_KEY"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="serve the audit API and keep the index in step with the chain")
    parser.add_argument("--host", default=None, help="interface to listen on (default $CHAINABS_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $CHAINABS_PORT or 8000)")
    parser.add_argument("--api-key-env", default=DEFAULT_KEY_ENV, metavar="VAR",
                        help=f"environment variable holding the operator API key (default {DEFAULT_KEY_ENV}); "
                             "only its sha256 is kept. $CHAINABS_API_KEY_HASH may hold the hash instead")
    parser.add_argument("--confirmations", type=int, default=None, metavar="N",
                        help="only index blocks at least N deep (default $CHAINABS_CONFIRMATIONS or 0)")
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace, **fixed: Any) -> Settings:
    """Environment settings, overridden by the command line and then by `fixed`; the API key
    becomes its hash."""
    overrides = {name: getattr(args, name) for name in ("host", "port", "confirmations", "rpc", "data_dir",
                                                        "deployment") if getattr(args, name, None) is not None}
    overrides.update(fixed)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:  # one sentence, without the values (the key hash among them)
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in exc.errors(include_url=False)[:3])
        raise InvalidInput(f"bad service settings: {problems}") from None
    except ValueError as exc:
        raise InvalidInput(f"bad service settings: {exc}") from None
    key = os.environ.get(getattr(args, "api_key_env", DEFAULT_KEY_ENV))
    if key:
        settings.api_key_hash = hash_api_key(key)
    return settings


def base_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def listen(settings: Settings) -> socket.socket:
    """Bind the service's port now, so a busy port is a sentence before any work, not after."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        return socket.create_server((settings.host, settings.port), family=family)
    except OSError as exc:
        where = f"cannot listen on {settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(f"{where}: something else is listening there (choose another --port)") from None
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else "no such host"  # else: a resolver error
        raise InvalidInput(f"{where}: {reason}") from None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT or SIGTERM, then re-raises the signal: let
    SIGTERM end as KeyboardInterrupt too, so both exit with status 0."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(settings: Settings, ctx: Context, *, store: Store | None = None, sock: socket.socket | None = None,
          debug: bool = False, access_log: bool = True, out: TextIO | None = None) -> int:
    """Serve the audit API over `ctx` (the indexer running beside it) until SIGINT or SIGTERM;
    returns 0 after a clean shutdown. `sock`: a socket from `listen` (default: bind now)."""
    import uvicorn

    sock = sock or listen(settings)
    if settings.api_key_hash is None:
        log.warning("no operator API key configured (--api-key-env or CHAINABS_API_KEY_HASH): "
                    "operator endpoints answer 403")
    try:
        app = create_app(settings, ctx, store=store, run_indexer=True)
        url = base_url(settings)
        print(f"chainabs audit API on {url}  (docs at {url}/docs, portal at {url}/, health at {url}/health); "
              f"data dir {ctx.data_dir}; Ctrl-C stops it", file=out or sys.stdout, flush=True)
        config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=access_log,
                                log_level="debug" if debug else "info")
        with _sigterm_as_interrupt():
            try:
                uvicorn.Server(config).run(sockets=[sock])
            except KeyboardInterrupt:
                pass
    finally:
        sock.close()
    print("audit API stopped", file=out or sys.stdout, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sock = listen(settings)
    try:
        ctx = open_context(rpc=settings.rpc, data_dir=settings.data_dir, deployment=settings.deployment,
                           create=False)
    except BaseException:
        sock.close()
        raise
    return serve(settings, ctx, sock=sock, debug=args.debug)
