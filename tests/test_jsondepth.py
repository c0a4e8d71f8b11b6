"""The API's nesting check (chainabs.jsondepth) against Python's own JSON decoder: exact on
valid JSON, on its prefixes and on any bytes after its first value; never shallower than the
decoder on anything else. Its speed is printed by `scripts/bench.py nesting`, not asserted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainabs.jsondepth import nested_deeper_than

LIMITS = st.sampled_from([0, 1, 2, 3, 5, 64])
TRICKY = '[]{}"\\ :,a\u00e9\u225b\u5b5b\U0001f642'  # U+225B and U+5B5B hold a quote or bracket byte in UTF-16


def decoder_depth(text: str) -> int:
    """How deep Python's decoder goes into `text`, modelled: one value, strings and escapes as
    it reads them; it stops at a backslash outside a string and when the first value closes."""
    text = text.lstrip(" \t\n\r")
    if not text or text[0] not in "[{":
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "\\":
            break
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
            if depth == 0:
                break
    return deepest


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


values = st.recursive(st.one_of(st.none(), st.integers(), st.text(alphabet=TRICKY, max_size=8)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(st.text(alphabet=TRICKY, max_size=4), inner, max_size=3)),
                      max_leaves=80)
noise = st.text(alphabet=TRICKY, max_size=300)


@settings(max_examples=400, deadline=None)
@given(value=values, limit=LIMITS, ascii_only=st.booleans(), padding=st.sampled_from(["", " ", "\r\n\t "]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]))
def test_valid_json_is_deep_exactly_when_it_nests_past_the_limit(value: Any, limit: int, ascii_only: bool,
                                                                 padding: str, encoding: str) -> None:
    body = (padding + json.dumps(value, ensure_ascii=ascii_only) + padding).encode(encoding)
    assert json.loads(body) == value
    assert nested_deeper_than(body, limit) == (depth_of(value) > limit)


@settings(max_examples=400, deadline=None)
@given(value=values, limit=LIMITS, data=st.data())
def test_prefixes_and_trailers_are_read_as_the_decoder_reads_them(value: Any, limit: int, data: st.DataObject) -> None:
    text = json.dumps(value, ensure_ascii=False)
    prefix = text[:data.draw(st.integers(0, len(text)), label="cut")]
    assert nested_deeper_than(prefix.encode(), limit) == (decoder_depth(prefix) > limit)
    trailer = data.draw(noise, label="trailer")  # after the first value the decoder reads nothing
    assert nested_deeper_than((text + trailer).encode(), limit) == (depth_of(value) > limit)


@settings(max_examples=600, deadline=None)
@given(text=noise, limit=LIMITS)
def test_anything_is_called_at_least_as_deep_as_the_decoder_would_go(text: str, limit: int) -> None:
    if decoder_depth(text) > limit:
        assert nested_deeper_than(text.encode(), limit)


@pytest.mark.parametrize("body, deep", [
    (b"[" * 65, True), (b"[" * 64, False), (b"{" * 65, True), (b'{"a":' * 65, True),
    (b'["' + b"[" * 100 + b'"]', False),              # brackets in a string
    (b'["\\\\"' + b"[" * 100, True),                   # an escaped backslash ends the string
    (b'["\\"' + b"[" * 100, False),                    # an escaped quote does not
    (b"[" * 65 + b'"' + b'\\"' * 10_000, True),        # the review's quadratic body, behind 65 brackets
    (b'"' + b'\\"' * 10_000 + b"[" * 100, False),      # a string, never closed: no value nests
    (b"[]" + b"[" * 100, False),                       # after the first value the decoder stops
    (b"1" + b"[" * 100, False), (b" \n\t[" + b"[" * 64, True), (b"\xef\xbb\xbf" + b"[" * 65, True),
    (("[" * 65).encode("utf-16"), True), (("[" * 65).encode("utf-32-be"), True),
    (('["\u2200' + "[" * 70 + '"]').encode("utf-16-le"), False),  # U+2200 holds a quote byte in UTF-16
    (('["\u225b"' + "," + "[" * 70).encode("utf-16-le"), True),  # its bytes are read as text, not as a quote
])
def test_cases(body: bytes, deep: bool) -> None:
    assert nested_deeper_than(body, 64) is deep
