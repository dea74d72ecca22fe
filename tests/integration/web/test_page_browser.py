"""The live page in real headless Chromium: the numbers, charts and rejects the API serves."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright, expect
from prometheus_client import CollectorRegistry

from exporter.events import ABSENT, Event
from exporter.store.detail import CountingConfig
from exporter.store.redis import RedisStore
from exporter.web import make_app
from exporter.web.page import PageInfo
from tests.integration.web.api_support import add, event
from tests.servers import require_binary
from tests.store_support import unique_prefix

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The page polls every 2 s; a few polls is plenty on a slow machine.
UPDATE_TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOT = Path(__file__).parents[3] / "docs" / "page.png"
INFO = PageInfo(
    store_description="Redis redis://redis:6379/0, prefix exporter",
    grafana_url="http://grafana.example:3000/d/exporter",
    prometheus_url="http://prometheus.example:9090",
)


def traffic(now: datetime) -> list[Event]:
    """Most of an hour of a shop's traffic: page views in a wave, baskets and purchases following.

    The oldest events are 57 minutes old, not 59: the page's hour ends at the minute it loads, and
    on a slow machine a minute boundary may pass between this fixture and the page's request.
    """
    events = []
    for ago in range(58):
        moment = now - timedelta(minutes=ago, seconds=ago % 50)
        views = 20 + (ago * 7) % 23 + (15 if 20 <= ago <= 35 else 0)
        events += [Event("pageview", 1_000_000, moment)] * views
        events += [Event("added-to-basket", 1_000_000 * (1 + ago % 4), moment)] * (views // 6)
        events += [Event("purchase", 19_990_000 + 1_250_000 * (ago % 5), moment)] * (views // 12)
    return events


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    chromium = require_binary("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(name="store")
async def fixture_store(store: RedisStore) -> RedisStore:
    """A Redis store of the test's own: three types over the last hour, and some rejects."""
    events = traffic(datetime.now(UTC))
    await store.apply([(f"msg:{uuid.uuid4()}", e) for e in events])
    await store.add_rejected({"bad_value": 31, "not_json": 12, "bad_timestamp": 7})
    return store


@pytest.fixture(name="server")
async def fixture_server(store: RedisStore) -> AsyncIterator[TestServer]:
    """The API on a real loopback port, told about its store and dashboards."""
    app = make_app(store, CollectorRegistry(), admin_token=None, page_info=INFO)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def money(exact: str) -> str:
    """The page's one format for sums: half away from zero to cents, thousands separated."""
    return f"{Decimal(exact).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


async def open_page(browser: Browser, server: TestServer, viewport: dict[str, int]) -> Page:
    page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    await page.goto(str(server.make_url("/")))
    await expect(page.locator("#status")).to_have_class("ok", timeout=UPDATE_TIMEOUT_MS)
    return page


async def test_the_page_shows_the_numbers_charts_and_rejects_the_api_returns(
    browser: Browser, server: TestServer, tmp_path: Path
) -> None:
    """Each type's count, sum and mean equal /stats, its chart has 60 minutes, rejects match."""
    page = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    foreign: list[str] = []
    origin = str(server.make_url("/")).rstrip("/")
    page.on("request", lambda r: None if r.url.startswith(origin) else foreign.append(r.url))
    await page.goto(str(server.make_url("/")))
    stats = await api_get(server, "/stats")
    cards = page.locator("article.type")
    await expect(cards).to_have_count(len(stats), timeout=UPDATE_TIMEOUT_MS)
    for item in stats:
        card = page.locator(f'article[data-type="{item["type"]}"]')
        await expect(card.locator("h3")).to_have_text(item["type"])
        await expect(card.locator("dd.count")).to_have_text(f"{item['count']:,}")
        await expect(card.locator("dd.sum")).to_have_text(money(item["sum_exact"]))
        await expect(card.locator("dd.sum")).to_have_attribute("data-exact", item["sum_exact"])
        await expect(card.locator("dd.mean")).to_have_text(f"{item['mean']:,.2f}")
        bars = card.locator("svg.chart rect.bar")
        await expect(bars).to_have_count(60, timeout=UPDATE_TIMEOUT_MS)
        drawn = [int(c or 0) for c in await bars.evaluate_all("bs => bs.map(b => b.dataset.count)")]
        assert sum(drawn) == item["count"]  # every event of the fixture is in the last hour
    assert [item["type"] for item in stats] == ["added-to-basket", "pageview", "purchase"]
    await expect(page.locator("#total-count")).to_have_text(f"{sum(i['count'] for i in stats):,}")
    rejected = await api_get(server, "/rejected")
    rows = page.locator("#reasons tr")
    await expect(rows).to_have_count(3)
    reasons = rejected["reasons"]
    await expect(rows.locator("td:first-child")).to_have_text([r["reason"] for r in reasons])
    await expect(rows.locator("td.count")).to_have_text([str(r["count"]) for r in reasons])
    await expect(page.locator("#total-rejected")).to_contain_text("50")
    await expect(page.locator("#source")).to_have_text(f"Reading {INFO.store_description}")
    for name, url in [("grafana", INFO.grafana_url), ("prometheus", INFO.prometheus_url)]:
        await expect(page.locator(f"#{name}-link")).to_have_attribute("href", str(url))
    await page.screenshot(path=tmp_path / "page.png", full_page=False)
    assert foreign == []  # self-contained: nothing but this origin is ever requested


COUNTRIES = ("NL", "DE", "FR", "BE", "NL", "NL", "DE", "US")
CHANNELS = ("web", "app", "web", "kiosk")


def with_dimensions(events: list[Event]) -> list[Event]:
    """The same traffic with a channel and a country on each event (some absent)."""
    return [
        replace(e, dimensions=(
            CHANNELS[i % len(CHANNELS)] if i % 17 else ABSENT,
            COUNTRIES[(i * 3) % len(COUNTRIES)],
        ))
        for i, e in enumerate(events)
    ]  # fmt: skip


@pytest.fixture(name="shop_server")
async def fixture_shop_server(
    open_store: Callable[..., RedisStore],
) -> AsyncIterator[TestServer]:
    """The API over a Redis store with dimensions (channel, country) and value buckets."""
    store = open_store(prefix=unique_prefix(), counting=CountingConfig(("channel", "country")))
    events = with_dimensions(traffic(datetime.now(UTC)))
    await store.apply([(f"msg:{uuid.uuid4()}", e) for e in events])
    await store.add_rejected({"bad_value": 31, "not_json": 12, "bad_timestamp": 7})
    app = make_app(store, CollectorRegistry(), admin_token=None, page_info=INFO)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_each_type_shows_its_value_distribution_and_top_values(
    browser: Browser, shop_server: TestServer, tmp_path: Path
) -> None:
    """Each card draws its events per value bucket and the estimated percentiles /stats gives,
    and for each dimension its most counted values as ?by= answers them."""
    page = await open_page(browser, shop_server, DESKTOP)
    stats = await api_get(shop_server, "/stats")
    for item in stats:
        card = page.locator(f'article[data-type="{item["type"]}"]')
        cumulative = [b["count"] for b in item["buckets"]]
        per_bucket = [c - (cumulative[i - 1] if i else 0) for i, c in enumerate(cumulative)]
        bars = card.locator("svg.dist rect.bucket")
        await expect(bars).to_have_count(len(per_bucket))
        drawn = await bars.evaluate_all("bs => bs.map(b => Number(b.dataset.count))")
        assert drawn == per_bucket
        p50 = item["percentiles"]["p50"]
        await expect(card.locator(".percentiles .p50")).to_have_attribute(
            "data-value", str(p50["value"]).removesuffix(".0")
        )
        for dimension in ("channel", "country"):
            answer = await api_get(shop_server, f"/stats/{item['type']}?by={dimension}&limit=5")
            rows = card.locator(f'.dim[data-dimension="{dimension}"] tr')
            await expect(rows).to_have_count(len(answer["values"]), timeout=UPDATE_TIMEOUT_MS)
            await expect(rows.locator("td.count")).to_have_text(
                [f"{v['count']:,}" for v in answer["values"]]
            )
            await expect(rows.locator("td:first-child")).to_have_text(
                [v["value"] for v in answer["values"]]
            )
    await page.screenshot(path=tmp_path / "page.png", full_page=False)
    if os.environ.get("UPDATE_PAGE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "page.png", SCREENSHOT)


async def test_the_page_fits_a_phone_screen(
    browser: Browser, server: TestServer, tmp_path: Path
) -> None:
    """At 390 px wide nothing scrolls sideways and every card and the rejects panel show."""
    page = await open_page(browser, server, PHONE)
    await expect(page.locator("article.type svg.chart")).to_have_count(3, timeout=UPDATE_TIMEOUT_MS)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await expect(page.locator("#rejected")).to_be_visible()
    await page.screenshot(path=tmp_path / "page-phone.png", full_page=True)


async def test_without_dashboards_configured_there_are_no_links(
    browser: Browser, store: RedisStore
) -> None:
    """No Grafana or Prometheus URL: no such link, and no store line is invented."""
    server = TestServer(make_app(store, CollectorRegistry(), admin_token=None), host="127.0.0.1")
    await server.start_server()
    try:
        page = await open_page(browser, server, DESKTOP)
        await expect(page.locator("#grafana-link")).to_have_count(0)
        await expect(page.locator("#prometheus-link")).to_have_count(0)
        await expect(page.locator("#source")).to_have_text("")
    finally:
        await server.close()


async def test_the_page_follows_new_events(
    browser: Browser, server: TestServer, store: RedisStore
) -> None:
    """Events added after load appear on a later poll, in the count and the current minute."""
    page = await open_page(browser, server, DESKTOP)
    card = page.locator('article[data-type="refund"]')
    await add(store, [event("refund", "-5")] * 3)
    await expect(card.locator("dd.count")).to_have_text("3", timeout=UPDATE_TIMEOUT_MS)
    await expect(card.locator("dd.sum")).to_have_text("-15.00")
    last = card.locator("svg.chart rect.bar").last
    await expect(last).to_have_attribute("data-count", "3", timeout=UPDATE_TIMEOUT_MS)


async def test_the_page_says_clearly_when_the_api_is_unreachable(
    browser: Browser, server: TestServer
) -> None:
    """Once the server is gone the status turns to an error, and the last numbers stay, dimmed."""
    page = await open_page(browser, server, DESKTOP)
    await server.close()
    status = page.locator("#status")
    await expect(status).to_have_class("error", timeout=UPDATE_TIMEOUT_MS)
    await expect(status).to_contain_text("API unreachable")
    await expect(page.locator("body")).to_have_class("stale")
    await expect(page.locator("article.type")).to_have_count(3)


async def api_get(server: TestServer, path: str) -> Any:
    """What the API answers at `path` right now."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url(path)) as response,
    ):
        return await response.json()
