"""Reading a tape: CSV or JSON Lines, size and encoding checks, then every row through the
cell checker. A malformed tape raises TapeError with every bad cell."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from operator import itemgetter
from pathlib import Path
from typing import Any

from chainabs.errors import CellError, TapeError
from chainabs.jsondepth import nested_deeper_than
from chainabs.tape.cells import _COLUMN_SET, _SKIP, _Checker
from chainabs.tape.model import (
    COLUMNS,
    MAX_DECIMALS,
    MAX_TAPE_BYTES,
    OPTIONAL_DEFAULTS,
    Tape,
)

# --- reading -------------------------------------------------------------------------------


def read_tape(path: str | os.PathLike[str], *, decimals: int = 6, max_errors: int = 1000,
              max_bytes: int = MAX_TAPE_BYTES) -> Tape:
    """Read and validate a tape file; the format comes from the suffix (.csv, .jsonl, .ndjson)
    or, failing that, from the content. OSError propagates; a bad tape raises TapeError, a file
    over `max_bytes` too, before it is read."""
    p = Path(path)
    suffix = p.suffix.lower()
    fmt = "csv" if suffix == ".csv" else "jsonl" if suffix in (".jsonl", ".ndjson") else None
    with p.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise _too_large(max_bytes, size)
        data = fh.read(max_bytes + 1)  # a file still growing stops just past the limit
    return parse_tape(data, name=p.name, fmt=fmt, decimals=decimals, max_errors=max_errors,
                      max_bytes=max_bytes)


def parse_tape(data: bytes, *, name: str = "<tape>", fmt: str | None = None, decimals: int = 6,
               max_errors: int = 1000, max_bytes: int = MAX_TAPE_BYTES) -> Tape:
    """Validate a tape held in memory. `fmt` is "csv", "jsonl" or None to sniff (JSON Lines when
    the first byte after a BOM and white space is '{')."""
    if fmt not in (None, "csv", "jsonl"):
        raise ValueError(f"unknown tape format {fmt!r} (csv or jsonl)")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be between 0 and {MAX_DECIMALS}")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if fmt is None:
        fmt = "jsonl" if data.lstrip()[:1] == b"{" else "csv"
    check = _Checker(decimals, max(1, max_errors), missing_is_error=fmt == "jsonl")
    text = _decode(data, check)
    if text is not None:
        (_read_jsonl if fmt == "jsonl" else _read_csv)(text, check)
        if not check.loans and not check.total:
            check.error(1, "", "", "the tape has no loans")
    if check.total:
        raise TapeError(check.errors, check.total)
    return Tape(loans=check.loans, currency=check.currency or "", warnings=check.warnings(),
                source=name)


def _too_large(max_bytes: int, size: int | None = None) -> TapeError:
    size_shown = f" ({size} bytes)" if size is not None else ""
    return TapeError([CellError(1, "", "", f"the tape is larger than the limit of {max_bytes} bytes"
                                           f"{size_shown}; split it into several tapes")])






def _decode(data: bytes, check: _Checker) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        check.error(1, "", "", "the file is UTF-16; save it as UTF-8")
        return None
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            snippet = raw[max(0, exc.start - 20):exc.start + 10].decode("utf-8", "backslashreplace")
            check.error(number, "", snippet,
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start + 1})")
    return None


def _read_csv(text: str, check: _Checker) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    header: list[str] | None = None
    header_line = 1
    prev = 0
    row: list[Any]
    while header is None:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            check.error(prev + 1, "", "", f"malformed CSV: {exc}")
            return
        header_line, prev = prev + 1, reader.line_num
        if row and (len(row) > 1 or row[0].strip()):
            header = [cell.strip() for cell in row]
    width = len(header)
    getter = _header_getter(header, header_line, check)
    stalled = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            check.error(prev + 1, "", "", f"malformed CSV: {exc}")
            stalled = stalled + 1 if reader.line_num == prev else 0
            if stalled > 1:
                break
            prev = reader.line_num
            continue
        line, prev = prev + 1, reader.line_num
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            check.error(line, "", ",".join(row[:5]),
                        f"row has {len(row)} cells, the header has {width}")
            continue
        row.append(None)       # stands for an absent optional column
        row.append(_SKIP)      # stands for an absent required column (reported on the header)
        check.row(line, getter(row))


def _header_getter(header: list[str], line: int, check: _Checker) -> Any:
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            check.warn(f"column {i + 1} has no name; ignored")
            continue
        if name in positions:
            check.error(line, name, name, f"duplicate column name (also column {positions[name] + 1})")
            continue
        positions[name] = i
        if name not in _COLUMN_SET:
            check.unknown(name)
    lowered = {name.lower(): name for name in positions}
    width = len(header)
    indices = []
    for column in COLUMNS:
        if column in positions:
            indices.append(positions[column])
        elif column in OPTIONAL_DEFAULTS:
            indices.append(width)
        else:
            hint = lowered.get(column)
            reason = "required column missing" + (f" (found {hint!r}; names are case-sensitive)"
                                                  if hint else "")
            check.error(line, column, "", reason)
            indices.append(width + 1)
    return itemgetter(*indices)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Numbers stay as their literal text (no float rounding); `_JSON_PAIRS` keeps duplicate keys.
_JSON = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant)
_JSON_PAIRS = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant,
                               object_pairs_hook=list)


_MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]").search
_LONE_SURROGATE = re.compile("[\ud800-\udfff]").search


def _json_reason(s: str) -> str:
    try:
        _JSON.decode(s)
    except RecursionError:
        return "nested too deeply"
    except ValueError as exc:
        return str(exc)
    return "not a single JSON value"


def _read_jsonl(text: str, check: _Checker) -> None:
    scan = _JSON.scan_once  # type: ignore[attr-defined]  # the C scanner behind decode(), without its per-call overhead
    error = check.error
    known = _COLUMN_SET
    for number, raw in enumerate(text.split("\n"), 1):
        s = raw.strip()
        if not s:
            continue
        if (s.count("[") + s.count("{") > _MAX_JSON_DEPTH  # most lines stop here, unencoded
                and nested_deeper_than(s.encode("utf-8", "surrogatepass"), _MAX_JSON_DEPTH)):
            error(number, "", s, "not valid JSON: nested too deeply")
            continue
        try:
            obj, end = scan(s, 0)
            if end != len(s):
                raise ValueError
        except (ValueError, StopIteration, RecursionError):
            error(number, "", s, f"not valid JSON: {_json_reason(s)}")
            continue
        if type(obj) is not dict:
            error(number, "", s, "not a JSON object")
            continue
        if "\\u" in s and _SURROGATE_ESCAPE(s):  # UTF-8 text has none: only an escape can make one
            bad = [(key, text) for key, value in obj.items() for text in (key, value)
                   if type(text) is str and _LONE_SURROGATE(text)]
            for key, text in bad:
                error(number, key if key in known else "", text.encode("utf-8", "backslashreplace").decode(),
                      "not valid text: a lone UTF-16 surrogate escape")
            if bad:
                continue
        if s.count(":") > len(obj):   # every key has a colon: maybe a key appears twice
            seen: set[str] = set()
            for key, _ in _JSON_PAIRS.decode(s):
                if key in seen:
                    error(number, key, "", "duplicate key")
                seen.add(key)
        if not known.issuperset(obj):
            for key in obj:
                if key not in known:
                    check.unknown(key)
        check.row(number, tuple(map(obj.get, COLUMNS)))
