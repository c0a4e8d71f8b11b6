"""`chainabs node`: the data dir's embedded chain as a bare JSON-RPC node, for other tools (cast,
web3.py, a wallet, chainabs commands in other processes), as `anvil` would be, but durable."""

from __future__ import annotations

import argparse
import os
import sys

from chainabs.chain.lock import NodeRecord, remove_node, write_node
from chainabs.chain.node import EmbeddedNode, rpc_app
from chainabs.commands.serve import bind, run_until_stopped, url_of
from chainabs.context import hold_embedded
from chainabs.datadir import DataDir
from chainabs.errors import InvalidInput

DEFAULT_PORT = 8545


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("node", help="run the data dir's embedded chain as a JSON-RPC node (as Anvil, durable)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    if args.rpc is not None:
        raise InvalidInput("`chainabs node` serves the data dir's embedded chain; --rpc names another node")
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port must be from 0 to 65535, got {args.port}")
    data = DataDir.resolve(args.data_dir)
    sock = bind(args.host, args.port)
    try:
        chain = hold_embedded(data)
    except BaseException:
        sock.close()
        raise
    assert chain.journal is not None
    directory = chain.journal.directory
    port = sock.getsockname()[1]
    record = NodeRecord(url=url_of(args.host, port), pid=os.getpid(), chain_id=chain.chain_id)
    try:
        write_node(directory, record)
        print(f"chainabs node: JSON-RPC on {record.url} (chain id {chain.chain_id}, block {chain.block_number()}, "
              f"data dir {data.root}); dev accounts {', '.join(chain.accounts[:3])}, ...; Ctrl-C stops it",
              flush=True)
        config = uvicorn.Config(rpc_app(EmbeddedNode(chain)), lifespan="off", access_log=False,
                                log_level="debug" if args.debug else "warning")
        run_until_stopped(config, sock)
    finally:
        sock.close()
        remove_node(directory, record.url)
        chain.close()
    print("chainabs node stopped", file=sys.stderr, flush=True)
    return 0
