"""The live page in real headless Chromium: shows what /stats says, updates, and shows outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright, expect
from prometheus_client import CollectorRegistry

from exporter.store.redis import RedisStore
from exporter.web import make_app
from tests.integration.web.api_support import add, event, redis_store
from tests.servers import RedisServer, require_binary

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


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    chromium = require_binary("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(name="store")
async def fixture_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """A Redis store of the test's own, holding three types."""
    store = redis_store(redis_server.url)
    await add(store, [event("purchase", "12.5"), event("purchase", "7.25")])
    await add(store, [event("pageview", 1)] * 5)
    await add(store, [event("added-to-basket", 3)])
    yield store
    await store.close()


@pytest.fixture(name="server")
async def fixture_server(store: RedisStore) -> AsyncIterator[TestServer]:
    """The API on a real loopback port."""
    server = TestServer(make_app(store, CollectorRegistry(), admin_token=None), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_the_page_shows_the_numbers_the_api_returns(
    browser: Browser, server: TestServer
) -> None:
    """Every type in /stats is a row with the same count, exact sum and mean (two decimals)."""
    page = await browser.new_page()
    foreign: list[str] = []
    origin = str(server.make_url("/")).rstrip("/")
    page.on("request", lambda r: None if r.url.startswith(origin) else foreign.append(r.url))
    await page.goto(str(server.make_url("/")))
    stats = await api_stats(server)
    await expect(page.locator("tbody tr")).to_have_count(len(stats), timeout=UPDATE_TIMEOUT_MS)
    for item in stats:
        cells = page.locator(f'tr[data-type="{item["type"]}"] td')
        await expect(cells).to_have_text(
            [item["type"], str(item["count"]), item["sum_exact"], f"{item['mean']:.2f}", "—"]
        )
    assert [item["type"] for item in stats] == ["added-to-basket", "pageview", "purchase"]
    await expect(page.locator("#status")).to_have_class("ok")
    assert foreign == []  # self-contained: nothing but this origin is ever requested


async def test_the_page_follows_new_events_and_shows_a_rate(
    browser: Browser, server: TestServer, store: RedisStore
) -> None:
    """Events added after load appear on a later poll, with a positive events/s rate."""
    page = await browser.new_page()
    await page.goto(str(server.make_url("/")))
    count = page.locator('tr[data-type="pageview"] td').nth(1)
    await expect(count).to_have_text("5", timeout=UPDATE_TIMEOUT_MS)
    await add(store, [event("pageview", 1)] * 20)
    await expect(count).to_have_text("25", timeout=UPDATE_TIMEOUT_MS)
    rate = await page.locator('tr[data-type="pageview"] td').nth(4).text_content()
    assert rate is not None
    assert float(rate) > 0


async def test_the_page_says_clearly_when_the_api_is_unreachable(
    browser: Browser, server: TestServer
) -> None:
    """Once the server is gone the status turns to an error, and the last numbers stay, dimmed."""
    page = await browser.new_page()
    await page.goto(str(server.make_url("/")))
    await expect(page.locator("#status")).to_have_class("ok", timeout=UPDATE_TIMEOUT_MS)
    await server.close()
    status = page.locator("#status")
    await expect(status).to_have_class("error", timeout=UPDATE_TIMEOUT_MS)
    await expect(status).to_contain_text("API unreachable")
    await expect(page.locator("body")).to_have_class("stale")
    await expect(page.locator("tbody tr")).to_have_count(3)


async def api_stats(server: TestServer) -> list[dict[str, Any]]:
    """What /stats answers right now."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/stats")) as response,
    ):
        stats: list[dict[str, Any]] = await response.json()
        return stats
