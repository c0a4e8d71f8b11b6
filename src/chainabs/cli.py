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
from typing import Any, NoReturn

from chainabs.errors import ChainabsError, PurchaseRefused, TapeError, kind_of

COMMAND_MODULES = (
    "build",
    "deal",
    "audit",
    "analytics",
    "deploy",
    "demo",
    "index",
    "node",
    "pool",
    "purchase",
    "serve",
    "tape",
)


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (exit status 2), not a usage block; subcommands'
    parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


# options every command takes, before or after its name (`chainabs --json demo` = `chainabs demo --json`)
GLOBAL_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--rpc", {"metavar": "URL", "help": "JSON-RPC node URL (default: the embedded eth-tester chain)"}),
    ("--data-dir", {"metavar": "DIR", "help": "where state lives (default: $CHAINABS_DATA_DIR or ./.chainabs)"}),
    ("--deployment", {"metavar": "FILE", "help": "deployment manifest to act on"}),
    ("--json", {"action": "store_true", "help": "print machine-readable JSON"}),
    ("--debug", {"action": "store_true", "help": "show tracebacks and debug logs"}),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chainabs",
        description="Tokenised consumer-loan ABS: pools, tranches, the cash waterfall and audit, on an Ethereum "
                    "chain (the embedded one by default, or any JSON-RPC node with --rpc).",
        epilog="Errors are one sentence and exit status 1; --debug shows the traceback.")
    for flag, options in GLOBAL_OPTIONS:
        parser.add_argument(flag, **options)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"chainabs.commands.{name}")
        module.register(sub)
    _take_global_options(parser)
    return parser


def _take_global_options(parser: argparse.ArgumentParser) -> None:
    """Let every command's own parser accept the global options too. SUPPRESS as the default
    keeps a value given before the command when the option is not repeated after it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _take_global_options(child)
                for flag, options in GLOBAL_OPTIONS:
                    if flag not in child._option_string_actions:
                        child.add_argument(flag, **{**options, "default": argparse.SUPPRESS})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except TapeError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "kind": kind_of(exc), "errors": [e.as_dict() for e in exc.errors]}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except ChainabsError as exc:
        if args.debug:
            raise
        if args.json:
            extra = {"breaches": [b.as_dict() for b in exc.breaches]} if isinstance(exc, PurchaseRefused) else {}
            print(json.dumps({"error": str(exc), "kind": kind_of(exc), **extra}))
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
    except Exception as exc:
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
        print(json.dumps({"error": message, "kind": "error"}))
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
