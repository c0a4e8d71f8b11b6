"""Argument types shared by the commands: a bad value stops the command with one sentence
(argparse prints it with the command's usage) before it opens the chain or writes anything."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from eth_utils import is_checksum_address, to_checksum_address

from chainabs.tape import parse_date

MAX_UINT = 2**256 - 1


def whole(low: int, high: int | None = None, what: str | None = None) -> Callable[[str], int]:
    """A whole number from `low` to `high` (no upper bound when None); `what` replaces the
    default "must be from low to high" in the message."""
    if what is None:
        what = f"must be from {low} to {high}" if high is not None else f"must be {low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{what}, got {value}")
        return value
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a number") from None


def positive(text: str) -> float:
    """A finite number above 0 (seconds, for instance)."""
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text[:80]}")
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1 (a rate or a share)."""
    value = _number(text)
    if not 0 <= value <= 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, got {text[:80]}")
    return value


def day(text: str) -> int:
    """A YYYY-MM-DD date, as days since 1970-01-01."""
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: {exc}") from None


def address(text: str) -> str:
    """0x and 40 hex digits; mixed case must be the EIP-55 checksum. Returns the checksummed form."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not an address (0x followed by 40 hex digits)")
    if text[2:] != text[2:].lower() and text[2:] != text[2:].upper() and not is_checksum_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} fails its EIP-55 checksum (mistyped?)")
    return str(to_checksum_address(text))


amount = whole(0, MAX_UINT, "must be a number of base units from 0 to 2**256 - 1")
units = whole(1, MAX_UINT, "must be a number of units from 1 to 2**256 - 1")
