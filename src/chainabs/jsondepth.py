"""How deeply JSON text nests arrays and objects, found in one pass without parsing it.

A recursive JSON decoder goes one level down the stack per `[` or `{`, and 200,000 `[` are
200 kB. `nested_deeper_than` answers first, in time linear in the body whatever it holds: one
left-to-right pass of one regular expression that does not backtrack (possessive quantifiers,
Python 3.11: what a loop has matched is never given back), whose tokens are

1. text outside strings, with any strings in it that hold no bracket: its brackets are counted
   in C (`bytes.translate`, `bytes.count`) and walked one by one only when they could take the
   depth past `limit` or back to 0;
2. a string holding a bracket: from its quote over plain runs and backslash escapes to its
   closing quote, or to the end of the text when there is none. It is skipped.

No byte is read more than three times (a string with a bracket is tried as part of 1 up to its
first bracket, twice at most, then read as 2). The pass reads what the decoder reads: bytes as
`json.loads` decodes them (UTF-16 and UTF-32, told by `json.detect_encoding`, are re-encoded as
UTF-8 first, where a quote or bracket byte is always that character), strings as the decoder
ends them (a backslash escapes exactly the next character), and one value: a body not opening
with `[` or `{` cannot nest, and once the first value closes the decoder reads no further. So a
body called shallow here cannot nest deeper when decoded; a body the decoder would refuse on
its own may be called deep.

The regex this replaced (`"(?:[^"\\\\]|\\\\.)*"` under `re.sub`) started again at every quote of an
unterminated string: `"` and then `\\"` repeated took 16 s at 32 kB (`scripts/bench.py nesting`).
"""

from __future__ import annotations

import codecs
import json
import re
from itertools import accumulate

_TOKENS = re.compile(  # 1: text and strings without brackets; 2: a string with one (or unterminated)
    rb'((?:[^"]++|"(?:[^"\\\[\]{}]++|\\[^\[\]{}])*+")++)|("(?:[^"\\]++|\\.)*+(?:"|\\?\Z))', re.DOTALL)
_WHITESPACE = re.compile(rb"[ \t\n\r]*+")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # read as signed bytes: +1 opens, -1 closes
_OPENS = frozenset(b"[{")
_SHORT_RUN = 16
_WALK_CHUNK = 1 << 16


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether decoding JSON text `body` would nest arrays and objects more than `limit` deep."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    text = _as_utf8(body)
    if text is None:
        return False  # the decoder cannot decode it either
    first = _WHITESPACE.match(text, len(codecs.BOM_UTF8) if text.startswith(codecs.BOM_UTF8) else 0)
    start = first.end() if first is not None else 0
    if text[start:start + 1] not in (b"[", b"{"):
        return False  # a string, a number, a literal or nothing: no nesting
    depth = 0
    for token in _TOKENS.finditer(text, start):
        if token.lastindex == 2:  # a string: its brackets do not count
            continue
        brackets = token.group(1).translate(None, _NOT_BRACKETS)
        opens = brackets.count(b"[") + brackets.count(b"{")
        closes = len(brackets) - opens
        if depth + opens <= limit and depth - closes > 0:
            depth += opens - closes  # can neither pass the limit nor close the first value
            continue
        if len(brackets) <= _SHORT_RUN:
            for c in brackets:
                depth += 1 if c in _OPENS else -1
                if depth > limit:
                    return True
                if depth == 0:
                    return False  # the first value is closed: the decoder reads no further
            continue
        signs = memoryview(brackets.translate(_SIGNS)).cast("b")
        for at in range(0, len(signs), _WALK_CHUNK):
            depths = list(accumulate(signs[at:at + _WALK_CHUNK], initial=depth))[1:]
            if min(depths) <= 0:  # the first value closes here (steps of 1 from above 0 meet 0 first)
                return max(depths[:depths.index(0)], default=0) > limit
            if max(depths) > limit:
                return True
            depth = depths[-1]
    return False


def _as_utf8(body: bytes) -> bytes | None:
    encoding = json.detect_encoding(body)
    if encoding in ("utf-8", "utf-8-sig"):
        return body
    try:
        return body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError:
        return None
