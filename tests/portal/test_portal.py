"""The investor portal in a real browser: Debian's chromium driven by Playwright against a demo deal
served by uvicorn on a loopback port. Every figure checked on a page is compared with the API's own
answer; screenshots (phone and desktop) go to test-artifacts/portal/."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from chainabs import merkle, paths, portal
from chainabs.api import Settings, create_app
from chainabs.context import open_context
from chainabs.demo import run_demo
from chainabs.indexer import Indexer
from chainabs.store import Store

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"
PERIODS = 10  # enough for the demo's first default (period 7) and recovery (period 10)
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT = 120_000  # ms: how long an expectation may wait before the test calls the page hung (not a speed claim)


@dataclass
class Site:
    url: str
    slug: str
    decimals: int
    investors: list[str]

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("portal")
    run_demo(data_dir=data, loans=80, periods=PERIODS, seed=3, say=lambda _: None)
    ctx = open_context(data_dir=data, create=False)
    store = Store.open(data, chain_id=ctx.chain.chain_id)
    Indexer(ctx, store).sync()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(data_dir=data), ctx, store=store),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # a hang guard, not a speed claim
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    pool = json.loads(urllib.request.urlopen(url + "/pools").read())["items"][0]
    yield Site(url, pool["slug"], pool["decimals"], ctx.chain.accounts[1:6])
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: run `make setup` (installs Debian's chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.viewport_name = request.param  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{page.viewport_name}.png"), full_page=True)  # type: ignore[attr-defined]


def shown(units: int | str, decimals: int) -> str:
    """The portal's rendering of base units: rounded half up to 2 places, grouped by thousands."""
    base = 10**decimals
    whole, cents = divmod((int(units) * 100 + base // 2) // base, 100)
    return f"{whole:,}.{cents:02d}"


def chart_data(page: Page, chart_id: str) -> list[list[float | None]]:
    """The datasets Chart.js drew on the named chart's canvas."""
    canvas = page.locator(f'figure[data-chart="{chart_id}"] canvas')
    expect(canvas).to_be_visible()
    page.wait_for_function("c => window.Chart && window.Chart.getChart(c)", arg=canvas.element_handle())
    data = canvas.evaluate("c => window.Chart.getChart(c).data.datasets.map(d => d.data)")
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    return data  # type: ignore[no-any-return]


# -- serving ----------------------------------------------------------------------------------------

def test_portal_routes_leave_the_api_alone(site: Site) -> None:
    def fetch(path: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(site.url + path, timeout=30) as r:
                return r.status, r.headers.get("content-type", ""), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("content-type", ""), exc.read()

    status, kind, body = fetch("/")
    assert status == 200 and kind.startswith("text/html") and b'src="/portal/app.js"' in body
    status, kind, body = fetch("/portal/app.js")
    assert status == 200 and "javascript" in kind
    status, kind, body = fetch("/vendor/sha3.mjs")
    assert status == 200 and "javascript" in kind and b"keccak256" in body
    status, _, body = fetch("/vendor/chart.umd.min.js")
    assert status == 200 and b"Chart.js v4" in body[:200]
    status, _, body = fetch("/vendor/../package.json")
    assert status == 404
    status, _, body = fetch("/vendor/left-pad.js")
    assert status == 404 and json.loads(body)["error"] == "no portal asset named 'left-pad.js'"
    assert fetch("/health")[0] == 200 and fetch("/docs")[0] == 200
    assert json.loads(fetch("/pools")[2])["items"][0]["slug"] == site.slug
    assert fetch("/openapi.json")[0] == 200 and b'"/vendor' not in fetch("/openapi.json")[2]


def test_missing_node_modules_is_a_sentence(tmp_path: Path) -> None:
    app = FastAPI()
    portal.mount(app, node_modules=tmp_path)
    response = TestClient(app).get("/vendor/sha3.mjs")
    assert response.status_code == 503
    assert "npm package 'js-sha3'" in response.json()["error"] and "make setup" in response.json()["error"]


def test_an_install_without_node_modules_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "node_modules", lambda: None)  # a plain install: no checkout, no variable
    app = FastAPI()
    portal.mount(app)
    client = TestClient(app)
    response = client.get("/vendor/chart.umd.min.js")
    assert response.status_code == 503 and "CHAINABS_NODE_MODULES" in response.json()["error"]
    assert client.get("/").status_code == 200  # the portal's own pages are package data


# -- pages ------------------------------------------------------------------------------------------

def test_overview_figures_and_charts(site: Site, page: Page) -> None:
    pool = site.api(f"/pools/{site.slug}")
    deal = pool["deal"]
    history = site.api(f"/pools/{site.slug}/periods?limit=1000")["items"]
    page.goto(site.url + "/")
    expect(page.locator("main h1")).to_have_text(pool["name"])
    balance = page.locator('[data-card="pool-balance"]')
    expect(balance).to_contain_text(f"{shown(deal['pool_balance'], site.decimals)} EUR")
    expect(page.locator('[data-card="pool-factor"]')).to_contain_text(f"{deal['pool_factor'] * 100:.2f} %")
    expect(page.locator('[data-card="wac"]')).to_contain_text(f"{pool['wac_bps'] / 100:.2f} %")
    expect(page.locator('[data-card="reserve"]')).to_contain_text(shown(deal["reserve"], site.decimals))
    expect(page.locator("[data-trigger]")).to_have_attribute("data-trigger", "breached" if deal["trigger"]["breached"] else "ok")
    defaulted = page.locator("table.delinquency tr", has_text="Defaulted")
    expect(defaulted).to_contain_text(shown(deal["delinquency"]["defaulted"]["outstanding_units"], site.decimals))

    scale = 10**site.decimals
    (balances,) = chart_data(page, "pool-balance")
    assert len(balances) == PERIODS + 1
    assert balances[-1] == pytest.approx(deal["pool_balance"] / scale)
    assert balances[0] == pytest.approx(history[0]["pool_balance_start"] / scale)
    defaults, recoveries = chart_data(page, "defaults")
    assert sum(defaults) == pytest.approx(deal["cumulative_defaults"] / scale) and sum(defaults) > 0
    assert sum(recoveries) == pytest.approx(deal["cumulative_recoveries"] / scale) and sum(recoveries) > 0
    tranches = chart_data(page, "tranche-balances")
    assert [series[-1] for series in tranches] == pytest.approx([t["balance"] / scale for t in deal["tranches"]])
    shot(page, "overview")


def test_tranche_page(site: Site, page: Page) -> None:
    tranche = site.api(f"/pools/{site.slug}/tranches")["items"][0]
    page.goto(f"{site.url}/#/pool/{site.slug}/tranches")
    expect(page.locator("main h1")).to_have_text("Tranches")
    page.get_by_role("link", name=f"{tranche['name']} ({tranche['symbol']})").click()
    expect(page.locator("main h1")).to_have_text(f"{tranche['name']} ({tranche['symbol']})")
    expect(page.locator('[data-card="balance"]')).to_contain_text(shown(tranche["balance"], site.decimals))
    expect(page.locator("main table tbody tr")).to_have_count(PERIODS)
    (series,) = chart_data(page, "tranche-balance")
    assert series[-1] == pytest.approx(tranche["balance"] / 10**site.decimals)
    shot(page, "tranche")


def test_period_page_shows_the_whole_waterfall(site: Site, page: Page) -> None:
    n = 7
    period = site.api(f"/pools/{site.slug}/periods/{n}")
    page.goto(f"{site.url}/#/pool/{site.slug}/periods")
    expect(page.locator("main table tbody tr")).to_have_count(PERIODS)
    page.get_by_role("link", name=str(n), exact=True).click()
    expect(page.locator("main h1")).to_have_text(f"Period {n}")
    waterfall = page.locator("table.waterfall")
    for label, field in (("Interest paid", "interest_paid"), ("Principal paid", "principal_paid"),
                         ("Loss allocated", "loss"), ("Cash paid", "cash_paid"), ("Balance at end", "balance_end")):
        cells = waterfall.locator("tr", has=page.locator("th", has_text=label)).locator("td")
        expect(cells).to_have_text([shown(t[field], site.decimals) for t in period["tranches"]])
    assert period["defaulted_principal"] > 0
    for table, fields in (("collections", ("interest_collected", "principal_collected", "recoveries")),
                          ("pool", ("pool_balance_start", "defaulted_principal", "pool_balance_end")),
                          ("fees", ("fee_due", "fee_paid")),
                          ("reserve", ("reserve_start", "reserve_drawn", "reserve_released", "reserve_added", "reserve_end"))):
        cells = page.locator(f"table.{table} tbody td")
        expect(cells.nth(len(fields) - 1)).to_be_visible()
        assert cells.all_text_contents()[:len(fields)] == [shown(period[f], site.decimals) for f in fields], table
    shot(page, "period")
    page.get_by_role("link", name=f"period {n + 1} →").click()
    expect(page.locator("main h1")).to_have_text(f"Period {n + 1}")
    page.goto(f"{site.url}/#/pool/{site.slug}/periods/{PERIODS + 1}")
    expect(page.locator(".notice.error")).to_contain_text(f"there is no period {PERIODS + 1}")


def test_investor_lookup(site: Site, page: Page) -> None:
    who = site.investors[1]
    holdings = site.api(f"/investors/{who}/holdings")["holdings"]
    transfers = site.api(f"/investors/{who}/transfers")
    tranche = next(h for h in holdings if h.get("symbol"))
    page.goto(site.url + "/#/investor")
    expect(page.locator(".notice.empty")).to_contain_text("Enter an address")
    page.fill("#address", who)
    page.get_by_role("button", name="Look up").click()
    row = page.locator("table.holdings tbody tr", has_text=tranche["symbol"])
    expect(row.locator("td")).to_have_text([
        shown(tranche["units"], site.decimals), shown(tranche["outstanding_principal"], site.decimals),
        shown(tranche["claimable"], site.decimals), shown(tranche["claimed"], site.decimals), "eligible"])
    assert int(tranche["claimed"]) > 0
    expect(page.locator("h2", has_text="Transfers")).to_have_text(f"Transfers ({transfers['total']})")
    expect(page.locator("table.transfers tbody tr")).to_have_count(transfers["total"])
    shot(page, "investor")

    page.fill("#address", "0x12345")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator(".notice.error")).to_contain_text("Malformed address '0x12345'")
    shot(page, "investor-bad-address")
    page.fill("#address", "0x" + "00" * 19 + "01")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator(".notice.empty")).to_contain_text("Nothing found for this address")


def test_loan_checker_verifies_in_the_browser(site: Site, page: Page) -> None:
    pool = site.api(f"/pools/{site.slug}")
    loan_id = site.api(f"/pools/{site.slug}/loans?limit=1&offset=5")["items"][0]["loan_id"]
    served = site.api(f"/pools/{site.slug}/loans/{loan_id}/proof")
    page.goto(f"{site.url}/#/pool/{site.slug}/loans")
    page.fill("#loan-id", loan_id)
    page.get_by_role("button", name="Verify").click()
    result = page.locator("#proof-result")
    expect(result).to_have_attribute("data-status", "verified")
    expect(result).to_contain_text("Verified")
    # the browser's hashes are the ones merkle.py computes
    values = list(served["values"])
    values[1] = bytes.fromhex(values[1][2:])
    leaf = "0x" + merkle.leaf_from_loan_hash(merkle.hash_values(values)).hex()
    expect(page.locator("table.steps tr", has_text="Leaf").locator("code")).to_have_attribute("title", leaf)
    expect(page.locator("table.steps tr", has_text="Root held by the pool contract").locator("code").first).to_have_attribute(
        "title", pool["root_on_chain"])
    shot(page, "loan-verified")

    # a value changed in transit: the browser's root no longer matches the chain's
    def tamper(route: Route) -> None:
        body = route.fetch().json()
        body["values"][5] += 1  # outstanding_units
        route.fulfill(json=body)

    page.route("**/loans/*/proof", tamper)
    page.goto(f"{site.url}/#/pool/{site.slug}/loans/{loan_id}")
    page.reload()
    expect(result).to_have_attribute("data-status", "failed")
    expect(result).to_contain_text("Not verified")
    page.unroute("**/loans/*/proof")

    page.goto(f"{site.url}/#/pool/{site.slug}/loans/NO-SUCH-LOAN")
    expect(page.locator(".notice.error")).to_contain_text(f"Loan 'NO-SUCH-LOAN' is not in pool '{pool['name']}'")
    shot(page, "loan-unknown")


def test_service_down_and_missing_library(site: Site, page: Page) -> None:
    page.goto(site.url + "/")
    expect(page.locator("main h1")).to_be_visible()
    page.route("**/investors/**", lambda route: route.abort())
    page.goto(f"{site.url}/#/investor/{site.investors[0]}")
    expect(page.locator(".notice.error")).to_contain_text("is not answering")
    expect(page.locator("#banner")).to_be_visible()
    shot(page, "service-down")

    page.route("**/vendor/sha3.mjs", lambda route: route.fulfill(
        status=503, json={"error": "the portal needs the npm package 'js-sha3', which is not installed"}))
    page.goto(f"{site.url}/#/pool/{site.slug}/loans/{site.api(f'/pools/{site.slug}/loans?limit=1')['items'][0]['loan_id']}")
    page.reload()
    result = page.locator("#proof-result")
    expect(result).to_have_attribute("data-status", "error")
    expect(result).to_contain_text("npm package 'js-sha3'")



def test_unknown_pool_and_page_say_so(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/#/pool/no-such-pool")
    expect(page.locator(".notice.error")).to_contain_text('There is no pool named "no-such-pool"')
    for path in (f"#/pool/{site.slug}/nonsense", "#/loan/L1"):  # a page under a pool, and one outside any
        page.goto(f"{site.url}/{path}")
        expect(page.locator(".notice.error")).to_contain_text("The portal has no page")
    page.get_by_role("link", name="Back to the overview.").click()
    expect(page.locator("main h1")).to_have_text(site.api(f"/pools/{site.slug}")["name"])
