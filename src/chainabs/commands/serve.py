"""`chainabs serve`: the audit API (FastAPI on uvicorn) with the indexer running beside it and,
on the embedded chain, the chain's JSON-RPC endpoint at /rpc (chainabs.chain.node).

The service is then the data dir's one writer: it holds the chain's lock and writes the
endpoint's URL to `<data dir>/chain/node.json` (removed on a clean exit), and commands, scripts,
cast or a wallet run meanwhile send through it.

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
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from chainabs.api.auth import hash_api_key
from chainabs.api.main import create_app
from chainabs.api.settings import Settings
from chainabs.chain import EmbeddedChain
from chainabs.chain.lock import NodeRecord, remove_node, write_node
from chainabs.chain.node import RPC_PATH, ASGIApp, EmbeddedNode, rpc_app, with_rpc
from chainabs.context import Context, core_deployment, hold_embedded, open_context
from chainabs.datadir import DataDir
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
    return url_of(settings.host, settings.port)


def url_of(host: str, port: int) -> str:
    """The URL a client on this machine reaches (a wildcard address as loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def listen(settings: Settings) -> socket.socket:
    """Bind the service's port now, so a busy port is a sentence before any work, not after."""
    return bind(settings.host, settings.port)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        where = f"cannot listen on {host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(f"{where}: something else is listening there (choose another --port)") from None
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else "no such host"  # else: a resolver error
        raise InvalidInput(f"{where}: {reason}") from None
    # Accepted connections inherit this. asyncio sets it itself only on sockets whose proto is
    # IPPROTO_TCP, and create_server's is 0: without it, a keep-alive client waits for its own
    # delayed ACK (about 40 ms) on every response written in two parts (headers, then body).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT or SIGTERM, then re-raises the signal: let
    SIGTERM end as KeyboardInterrupt too, so both exit with status 0."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_until_stopped(config: Any, sock: socket.socket) -> None:
    """Run uvicorn with `config` (a uvicorn.Config) on the bound `sock` until SIGINT or SIGTERM."""
    import uvicorn

    with _sigterm_as_interrupt():
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:
            pass


def serve(settings: Settings, ctx: Context, *, store: Store | None = None, sock: socket.socket | None = None,
          debug: bool = False, access_log: bool = True, out: TextIO | None = None) -> int:
    """Serve the audit API over `ctx` (the indexer running beside it) until SIGINT or SIGTERM;
    returns 0 after a clean shutdown. `sock`: a socket from `listen` (default: bind now)."""
    import uvicorn

    sock = sock or listen(settings)
    if settings.api_key_hash is None:
        log.warning("no operator API key configured (--api-key-env or CHAINABS_API_KEY_HASH): "
                    "operator endpoints answer 403")
    node_record: NodeRecord | None = None
    chain = ctx.chain
    try:
        api = create_app(settings, ctx, store=store, run_indexer=True)
        app: ASGIApp = api
        url = base_url(settings)
        rpc_note = ""
        if isinstance(chain, EmbeddedChain) and chain.journal is not None:  # this process holds the chain
            node = EmbeddedNode(chain, lock=api.state.chainabs.chain_lock)
            app = with_rpc(api, rpc_app(node, remote_key_hash=settings.api_key_hash))
            node_record = NodeRecord(url=url + RPC_PATH, pid=os.getpid(), chain_id=chain.chain_id)
            write_node(chain.journal.directory, node_record)
            rpc_note = f"; the chain's JSON-RPC at {node_record.url}"
        print(f"chainabs audit API on {url}  (docs at {url}/docs, portal at {url}/, health at {url}/health)"
              f"{rpc_note}; data dir {ctx.data_dir}; Ctrl-C stops it", file=out or sys.stdout, flush=True)
        config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=access_log,
                                log_level="debug" if debug else "info", lifespan="on")
        run_until_stopped(config, sock)
    finally:
        sock.close()
        if node_record is not None and isinstance(chain, EmbeddedChain) and chain.journal is not None:
            remove_node(chain.journal.directory, node_record.url)
    print("audit API stopped", file=out or sys.stdout, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sock = listen(settings)
    try:
        if settings.rpc is None:  # the embedded chain: held here; an empty data dir gets its core contracts
            data = DataDir.resolve(settings.data_dir)
            chain = hold_embedded(data)
            path = Path(settings.deployment) if settings.deployment else data.deployment_path(chain.chain_id)
            fresh = not path.exists()
            core = core_deployment(chain, path, create=settings.deployment is None)
            ctx = Context(data_dir=data.root, chain=chain, core=core, manifest_path=path)
            if fresh:
                print(f"deployed the core contracts on the embedded chain in {data.root} ({path.name})", flush=True)
            if not data.pools():
                print(f"no pools yet: create one with `chainabs --data-dir {data.root} pool create --tape TAPE "
                      "--deal DEAL` (it sends through this service) or POST /operator/pools, then "
                      "`chainabs deal create --deal DEAL`", flush=True)
        else:
            ctx = open_context(rpc=settings.rpc, data_dir=settings.data_dir, deployment=settings.deployment,
                               create=False)
    except BaseException:
        sock.close()
        raise
    return serve(settings, ctx, sock=sock, debug=args.debug)
