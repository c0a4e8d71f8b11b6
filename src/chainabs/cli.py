"""The `chainabs` command: global options, subcommands, and the one place errors become sentences.

Each subcommand lives in chainabs/commands/<name>.py and exposes `register(subparsers)`, which adds
its parser and sets `func` to a callable taking the parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from chainabs.errors import ChainabsError, TapeError

COMMAND_MODULES = (
    "build",
    "deal",
    "audit",
    "deploy",
    "demo",
    "index",
    "pool",
    "serve",
    "tape",
)


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (exit status 2), not a usage block; subcommands'
    parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chainabs",
        description="Tokenised consumer-loan ABS: pools, tranches, the cash waterfall and audit, on an Ethereum "
                    "chain (the embedded one by default, or any JSON-RPC node with --rpc).",
        epilog="Errors are one sentence and exit status 1; --debug shows the traceback.")
    parser.add_argument("--rpc", metavar="URL", default=None,
                        help="JSON-RPC node URL (default: the embedded eth-tester chain)")
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="where state lives (default: $CHAINABS_DATA_DIR or ./.chainabs)")
    parser.add_argument("--deployment", metavar="FILE", default=None,
                        help="deployment manifest to act on")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"chainabs.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except TapeError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "errors": [e.as_dict() for e in exc.errors]}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except ChainabsError as exc:
        if args.debug:
            raise
        if args.json:
            print(json.dumps({"error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader left (`chainabs period show 3 | head`): stop quietly, as cat does
        _detach_stdout()
        return 141  # 128 + SIGPIPE
    except OSError as exc:  # a file named on the command line that cannot be read or written
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args.json, f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug still gets a sentence; --debug shows where
        if args.debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return _fail(args.json, f"unexpected {exc.__class__.__name__}: {first} (run with --debug for the traceback)")


def _detach_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout replaced by one without a descriptor
        pass


def _fail(as_json: bool, message: str) -> int:
    if as_json:
        print(json.dumps({"error": message}))
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
