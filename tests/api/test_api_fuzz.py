"""Generated bad requests against the audit API: every route of its OpenAPI document with
wrong types, huge and negative numbers, unicode, very long strings, malformed and mis-checksummed
addresses; malformed and oversized bodies; wrong methods; operator routes with and without keys.

Whatever is sent: never a 5xx, every 4xx is JSON with an "error" sentence, and a refused request
leaves the index (Store.counts()), the chain (block number, journal) and the pool folders as
they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainabs.api import Settings, create_app
from chainabs.api.auth import hash_api_key
from chainabs.context import Context
from chainabs.demo import DEMO_DEAL
from chainabs.indexer import Indexer
from chainabs.store import Store
from support import demo_deal

KEY = "fuzzing operator key"
MAX_BODY = 2048
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HYPOTHESIS = settings(deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                             HealthCheck.data_too_large])


@dataclass
class World:
    ctx: Context
    store: Store
    client: TestClient
    data: Path
    slug: str
    pool: str
    loan_ids: list[str]
    investors: list[str]
    cash: str
    spec: dict[str, Any]
    sent: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"World({self.data})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints failing examples with it
        printer.text(repr(self))

    def fingerprint(self) -> tuple[Any, ...]:
        chain = self.ctx.chain
        return (chain.block_number(), chain.journal.path.stat().st_size,  # type: ignore[attr-defined]
                self.store.counts(), self.store.cursor(), sorted(p.name for p in (self.data / "pools").iterdir()))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A small demo deal (30 loans, 2 periods) on its own embedded chain, indexed."""
    deal = demo_deal(tmp_path_factory, "fuzz", loans=30)
    ctx, store, data = deal.ctx, deal.store, deal.data
    Indexer(ctx, store).sync()
    app = create_app(Settings(data_dir=data, api_key_hash=hash_api_key(KEY), max_body_bytes=MAX_BODY), ctx,
                     store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        pool = deal.files
        yield World(ctx, store, client, data, pool.folder.name, str(pool.record.address),
                    [r.loan_id for r in pool.rows[:3]], list(ctx.chain.accounts[1:4]),
                    ctx.core.contracts["SettlementToken"], app.openapi())
    store.close()
    ctx.chain.journal.close()  # type: ignore[attr-defined]


def check(world: World, response: Any, before: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    """The properties every answer has; returns the state to compare the next request with."""
    world.sent[what] = world.sent.get(what, 0) + 1
    status = response.status_code
    world.statuses[status] = world.statuses.get(status, 0) + 1
    context = (what, status, response.text[:500])
    assert status < 500, context
    if status >= 400:
        if response.request.method != "HEAD":
            body = response.json()
            message = body["error"]
            assert isinstance(message, str) and 0 < len(message) <= 2000, context
            assert "\n" not in message and "Traceback" not in message, context
        assert world.fingerprint() == before, context
        return before
    return world.fingerprint()  # an accepted operator request may write


# -- values ------------------------------------------------------------------------------------

def _bad_checksum(address: str) -> str:
    """The address with the case of its first letter flipped: no longer its EIP-55 form."""
    for i, c in enumerate(address[2:], 2):
        if c.isalpha():
            return address[:i] + c.swapcase() + address[i + 1:]
    return address


_numbers = st.one_of(st.integers(-(2**300), 2**300), st.integers(-3, 3), st.sampled_from([2**63, 2**64, 2**256]))
_floats = st.floats(allow_nan=True, allow_infinity=True).map(repr)
_addresses = st.one_of(st.from_regex(r"0[xX][0-9a-fA-F]{0,44}", fullmatch=True),
                       st.from_regex(r"0x[0-9a-zA-Z]{40}", fullmatch=True),
                       st.binary(min_size=20, max_size=20).map(lambda b: _bad_checksum(to_checksum_address(b))))
_long = st.builds(lambda c, n: c * (n // len(quote(c, safe=""))),  # at most 8000 characters once quoted
                  st.sampled_from(["a", "0", "9", "é", "🙂", "%", "\x00", " ", "0x"]), st.integers(600, 8000))
_odd = st.sampled_from(["", " ", ".", "..", "%", "%00", "%2e%2e", "/", "\\", "?", "#", "&", "=", "null", "true",
                        "[]", "{}", "NaN", "-inf", "1e309", "-0", "0x", "0b1", "1_000", "１２", "٣", "\u202e", "\ufeff",
                        "<script>", "'; drop table events; --", "\ud7ff", "0" * 64, "-1", "2026-02-30", "1969-12-31",
                        "9999-12-31", "0001-01-01", "json", "csv", "CSV", "xml"])


def _values(world: World, name: str = "") -> st.SearchStrategy[str]:
    """Bad values mostly, and as often a good one for the parameter, so the checks after it run."""
    pools = [world.slug, world.pool, world.pool.lower(), "0x" + world.pool[2:].upper()]
    good = {"pool": pools, "loan_id": world.loan_ids, "address": world.investors + [world.pool],
            "token": [world.cash, world.cash.lower()], "period": ["1", "2"], "as_of": ["2026-10-01", "2031-01-31"],
            "format": ["json", "csv"], "limit": ["1", "1000"], "offset": ["0", "1"]}.get(name, pools + world.investors)
    bad = st.one_of(st.text(max_size=40), _numbers.map(str), _floats, _addresses, _long, _odd)
    return st.one_of(bad, st.sampled_from(good))


def _url(template: str, path_values: dict[str, str], query: list[tuple[str, str]]) -> str:
    url = template
    for name, value in path_values.items():
        url = url.replace("{" + name + "}", quote(value, safe=""))
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    return url


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method.upper(), op) for path, item in sorted(spec["paths"].items())
            for method, op in sorted(item.items())]


_auth = st.sampled_from([None, "", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {KEY}x", f"Basic {KEY}",
                         f"bearer {KEY}", f"Bearer  {KEY}", f"Bearer {KEY} extra", "Bearer " + "k" * 5000,
                         f"Bearer {KEY}"])


# -- every route, generated path and query values, any method -------------------------------------

def test_the_spec_lists_the_routes_fuzzed_here(world: World) -> None:
    operations = _operations(world.spec)
    paths = {p for p, _, _ in operations}
    assert {"/pools/{pool}", "/pools/{pool}/loans/{loan_id}/proof", "/investors/{address}/transfers",
            "/pools/{pool}/report", "/operator/investors", "/operator/pools"} <= paths
    assert len(operations) >= 15


@settings(HYPOTHESIS, max_examples=1500)
@given(data=st.data())
def test_generated_path_and_query_values(world: World, data: st.DataObject) -> None:
    path, method, op = data.draw(st.sampled_from(_operations(world.spec)), label="operation")
    values = _values(world)
    params = op.get("parameters", [])
    path_values = {p["name"]: data.draw(_values(world, p["name"]), label=p["name"])
                   for p in params if p["in"] == "path"}
    query = [(p["name"], data.draw(_values(world, p["name"]), label=p["name"])) for p in params
             if p["in"] == "query" and data.draw(st.booleans())]
    query += data.draw(st.lists(st.tuples(st.sampled_from(["limit", "offset", "x", "", "format", "period"]), values),
                                max_size=2), label="extra query")
    if data.draw(st.integers(0, 4), label="wrong method?") == 0:
        method = data.draw(st.sampled_from(METHODS), label="method")
    headers = {}
    auth = data.draw(_auth, label="authorization")
    if auth is not None:
        headers["Authorization"] = auth
    url = _url(path, path_values, query)
    before = world.fingerprint()
    response = world.client.request(method, url, headers=headers)
    check(world, response, before, f"{method} {path}")


# -- bodies of the operator routes ----------------------------------------------------------------

_json = st.recursive(
    st.one_of(st.none(), st.booleans(), _numbers, st.floats(allow_nan=False), st.text(max_size=20), _addresses),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def _investors_bodies(world: World) -> st.SearchStrategy[Any]:
    addresses = st.one_of(_addresses, st.sampled_from(world.investors + ["0x" + "0" * 40]), st.text(max_size=50),
                          _numbers, st.none())
    return st.fixed_dictionaries(
        {"action": st.one_of(st.sampled_from(["add", "freeze", "unfreeze", "ADD", "", "delete"]), _json),
         "addresses": st.one_of(st.lists(addresses, max_size=5), _json,
                                st.builds(lambda a, n: [a] * n, addresses, st.integers(398, 402)))},
        optional={"pool": st.one_of(_values(world, "pool"), _json), "eligible_until": st.one_of(_odd, _numbers, _json),
                  "jurisdiction": st.one_of(_numbers, _json, _odd), "extra": _json})


def _period_bodies() -> st.SearchStrategy[Any]:
    amount = st.one_of(_numbers, st.floats(allow_nan=False), st.text(max_size=12), st.none(), st.booleans(),
                       st.just(2**255), st.just(2**255 - 1), st.just(-1))
    keys = ("interest", "principal", "recoveries", "defaults")
    return st.fixed_dictionaries({}, optional={**dict.fromkeys(keys, amount), "extra": _json})


def _raw_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        _json.map(lambda v: json.dumps(v).encode()),
        _json.map(lambda v: json.dumps(v).encode()).flatmap(
            lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda n: b[:n])),  # truncated JSON
        st.sampled_from([b"{", b"[", b'{"action": ', b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"{}" * 10, b"NaN", b"1e999",
                         b'{"a": ' * 250 + b"1" + b"}" * 250, b"[" * 1000 + b"]" * 1000, b'["' + b"[" * 1000 + b'"]']),
        st.integers(MAX_BODY + 1, 4 * MAX_BODY).map(lambda n: b"{" + b" " * n + b"}"),  # over the limit
    )


@settings(HYPOTHESIS, max_examples=700)
@given(data=st.data())
def test_generated_operator_bodies(world: World, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(["investors", "periods", "index", "pools"]), label="route")
    pool = data.draw(_values(world, "pool"), label="pool")
    url = {"investors": "/operator/investors", "periods": f"/operator/pools/{quote(pool, safe='')}/periods",
           "index": "/operator/index", "pools": "/operator/pools"}[route]
    headers: dict[str, str] = {}
    auth = data.draw(st.one_of(st.just(f"Bearer {KEY}"), _auth), label="authorization")
    if auth is not None:
        headers["Authorization"] = auth
    kind = data.draw(st.sampled_from(["model", "raw", "oversized"]), label="body kind")
    kwargs: dict[str, Any]
    if kind == "model" and route in ("investors", "periods"):
        body = data.draw(_investors_bodies(world) if route == "investors" else _period_bodies(), label="body")
        kwargs = {"content": json.dumps(body).encode()}  # NaN and Infinity too: Python's decoder takes them
        headers["Content-Type"] = "application/json"
    elif kind == "oversized":
        size = data.draw(st.integers(MAX_BODY + 1, 20 * MAX_BODY), label="size")
        kwargs = {"content": b"x" * size}
        if data.draw(st.booleans(), label="streamed"):  # no Content-Length: the limit counts the stream
            kwargs = {"content": iter([b"x" * 512] * (size // 512 + 1))}
    else:
        kwargs = {"content": data.draw(_raw_bodies(), label="body")}
        content_type = data.draw(st.sampled_from([None, "application/json", "text/plain", "multipart/form-data",
                                                  "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                                                  "application/json; charset=latin-1"]), label="content type")
        if content_type:
            headers["Content-Type"] = content_type
    if kind != "oversized" and data.draw(st.integers(0, 5)) == 0:
        headers["Content-Length"] = data.draw(st.sampled_from(["-1", "0", "abc", "1e3", " 12 ", "9" * 40,
                                                               str(MAX_BODY + 1)]), label="content length")
    before = world.fingerprint()
    response = world.client.post(url, headers=headers, **kwargs)
    check(world, response, before, f"POST {route} {kind}")
    if kind == "oversized":  # before any handler; an operator route without the key is refused first
        assert response.status_code in ((413,) if auth == f"Bearer {KEY}" else (401, 403, 413)), response.text


def _upload_parts(world: World) -> st.SearchStrategy[dict[str, Any]]:
    tape = world.data / "demo-tape.csv"
    good_tape = tape.read_bytes()[:1500]  # the header and a few loans this chain has tokenised already
    deal = DEMO_DEAL.encode()
    tapes = st.one_of(st.binary(max_size=400), st.just(good_tape), st.just(b""), st.just(b"\xff\xfe\x00"),
                      st.text(max_size=200).map(str.encode), st.just(b'"' * 300))
    fresh = deal.replace(b"Demo Consumer Loans 2026-1", b"Fuzzed Pool")
    deals = st.one_of(st.binary(max_size=300), st.just(deal), st.just(fresh), st.just(deal[:len(deal) // 2]),
                      st.text(max_size=200).map(str.encode), st.just(b"[pool]\nname = 1\n"),
                      st.just(deal.replace(b'"80%"', b'"180%"')), st.just(b"\xff"))
    names = st.one_of(st.sampled_from(["t.csv", "t.jsonl", "t", "", "../../etc/passwd", "a" * 300, "t.exe"]),
                      st.text(max_size=20))
    return st.fixed_dictionaries({}, optional={"tape": st.tuples(names, tapes), "deal": st.tuples(names, deals),
                                               "other": st.tuples(names, st.binary(max_size=50))})


@settings(HYPOTHESIS, max_examples=150)
@given(data=st.data())
def test_generated_pool_uploads(world: World, data: st.DataObject) -> None:
    files = data.draw(_upload_parts(world), label="files")
    headers = {"Authorization": data.draw(st.sampled_from([f"Bearer {KEY}", f"Bearer {KEY}", "Bearer nope"]))}
    before = world.fingerprint()
    response = world.client.post("/operator/pools", headers=headers, files=files or None)
    check(world, response, before, "POST pools upload")
    assert response.status_code != 200, response.text  # a good deal file's pool exists already


def test_an_upload_with_a_lone_surrogate_escape_is_a_tape_error(world: World) -> None:
    """It passed validation and failed when committed: a 500, and the new pool's folder left behind."""
    loan = {"loan_id": "FUZZ1", "borrower_ref": "B", "product": "cash", "currency": "EUR", "principal": "100.00",
            "outstanding_principal": "100.00", "annual_rate": "0.18", "origination_date": "2026-01-01",
            "maturity_date": "2029-01-01", "term_months": "36", "repayment_type": "bullet", "status": "current",
            "region": "x\ud800"}
    deal = DEMO_DEAL.replace("Demo Consumer Loans 2026-1", "Fuzzed Pool").encode()
    before = world.fingerprint()
    response = world.client.post("/operator/pools", headers={"Authorization": f"Bearer {KEY}"},
                                 files={"tape": ("t.jsonl", (json.dumps(loan) + "\n").encode()),
                                        "deal": ("d.toml", deal)})
    check(world, response, before, "POST pools upload")
    assert response.status_code == 422 and response.json()["errors"][0]["column"] == "region", response.text
    assert not (world.data / "pools" / "fuzzed-pool").exists()


# -- a body nested deep enough to crash the JSON decoder -----------------------------------------

DEEP_BODY = """
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from chainabs.api import Settings, create_app
from chainabs.api.auth import hash_api_key
from chainabs.context import open_context

assert sys.getrecursionlimit() == 1000, sys.getrecursionlimit()  # chainabs.chain put back what py_ecc raised
sys.setrecursionlimit(100_000)  # as py_ecc did: the guard's nesting check must hold without the default too
data = Path(sys.argv[1])
app = create_app(Settings(data_dir=data, api_key_hash=hash_api_key("k")), open_context(data_dir=data))
with TestClient(app, raise_server_exceptions=False) as client:
    for auth in ({}, {"Authorization": "Bearer k"}):
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
            for headers in ({"Content-Type": "application/json"}, {}, {"Content-Type": "application/ld+json"}):
                response = client.post("/operator/investors", content=body, headers={**headers, **auth})
                print(response.status_code, response.json()["error"])
"""


def test_deeply_nested_json_bodies_are_refused_not_a_crash(tmp_path: Path) -> None:
    """With the default body limit (64 MiB) a 200 kB body of brackets used to reach the JSON
    decoder, which overflowed the C stack: the whole service died with SIGSEGV, no key needed.
    Now a request without the key is refused before its body is read, and with the key the
    nesting check refuses it, even under py_ecc's recursion limit."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", DEEP_BODY, str(tmp_path / "data")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert lines == (["401 this endpoint needs the operator API key as a bearer token"] * 6
                     + ["422 request body: JSON nested deeper than 64 levels"] * 6), done.stdout


# -- what was sent ----------------------------------------------------------------------------------

def test_every_route_was_reached_and_nothing_changed(world: World) -> None:
    """Runs last in the module: every route of the spec got requests, and the deal is as it was."""
    reached = {what.split(" ", 1)[1] for what in world.sent if what.split(" ", 1)[0] in METHODS}
    assert {p for p, _, _ in _operations(world.spec)} <= reached, sorted(reached)
    total = sum(world.sent.values())
    assert total >= 2300, world.sent
    print(f"\n{total} generated requests: " + ", ".join(f"{k} {v}" for k, v in sorted(world.sent.items())))
    print("answers by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(world.statuses.items())))
    health = world.client.get("/health").json()
    assert health["status"] == "ok" and re.fullmatch(r"\d+", str(health["chain_head"]))
