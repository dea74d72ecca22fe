"""GET /metrics: request metrics by route template, and the global totals read at scrape time."""

from __future__ import annotations

import platform

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.store.redis import RedisStore
from tests.integration.web.api_support import add, api_client, event, redis_store
from tests.servers import RedisServer, free_port
from tests.store_support import unique_prefix


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(
    client: TestClient[web.Request, web.Application],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    return samples(await response.text())


async def test_requests_are_counted_by_route_template_not_raw_path(store: RedisStore) -> None:
    """Two different types share the `/stats/{type}` series; unknown paths are `unmatched`."""
    registry = CollectorRegistry()
    async with api_client(store, registry=registry) as client:
        await client.get("/stats/alpha")
        await client.get("/stats/beta")
        await client.get("/stats/-bad")
        await client.get("/no/such/path")
        await client.get("/stats")
        found = await scrape(client)
    key = "exporter_api_requests_total"
    assert found[(key, (("method", "GET"), ("route", "/stats/{type}"), ("status", "404")))] == 2
    assert found[(key, (("method", "GET"), ("route", "/stats/{type}"), ("status", "400")))] == 1
    assert found[(key, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert found[(key, (("method", "GET"), ("route", "/stats"), ("status", "200")))] == 1
    routes = {dict(labels)["route"] for name, labels in found if name == key}
    assert "/stats/alpha" not in routes
    duration = registry.get_sample_value(
        "exporter_api_request_duration_seconds_count", {"route": "/stats/{type}", "method": "GET"}
    )
    assert duration == 3


async def test_global_totals_are_read_from_the_store_at_scrape_time(store: RedisStore) -> None:
    """exporter_stats_* equal the store's totals, including events added after start-up."""
    await add(store, [event("purchase", "19.99"), event("purchase", "0.01")])
    async with api_client(store) as client:
        first = await scrape(client)
        await add(store, [event("pageview", 1)] * 4)
        second = await scrape(client)
    assert first[("exporter_stats_events_total", (("type", "purchase"),))] == 2
    assert first[("exporter_stats_value_sum", (("type", "purchase"),))] == 20.0
    assert ("exporter_stats_events_total", (("type", "pageview"),)) not in first
    assert second[("exporter_stats_events_total", (("type", "pageview"),))] == 4
    assert second[("exporter_stats_value_sum", (("type", "pageview"),))] == 4.0
    assert second[("exporter_stats_store_up", ())] == 1


async def test_totals_survive_a_restart_of_the_api(redis_server: RedisServer) -> None:
    """A new API process (fresh registry, new connection) reports the same global totals."""
    prefix = unique_prefix()
    writer = redis_store(redis_server.url, prefix)
    await add(writer, [event("purchase", "7.5")] * 3)
    scrapes = []
    for _ in range(2):
        store = redis_store(redis_server.url, prefix)
        async with api_client(store) as client:
            scrapes.append(await scrape(client))
        await store.close()
    await writer.close()
    for found in scrapes:
        assert found[("exporter_stats_events_total", (("type", "purchase"),))] == 3
        assert found[("exporter_stats_value_sum", (("type", "purchase"),))] == 22.5


async def test_an_unreachable_store_is_store_up_zero_not_a_failed_scrape() -> None:
    """With Redis down /metrics still answers 200: store_up 0, and no stale totals."""
    store = redis_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        async with api_client(store) as client:
            found = await scrape(client)
    finally:
        await store.close()
    assert found[("exporter_stats_store_up", ())] == 0
    assert not [name for name, _ in found if name == "exporter_stats_events_total"]


async def test_build_info_names_the_version(store: RedisStore) -> None:
    """exporter_build_info is 1 with the package version and the Python version."""
    async with api_client(store) as client:
        found = await scrape(client)
    labels = (("python", platform.python_version()), ("version", __version__))
    assert found[("exporter_build_info", labels)] == 1


async def test_openmetrics_is_served_when_asked_for(store: RedisStore) -> None:
    """A scraper that accepts OpenMetrics gets it (Prometheus negotiates this by default)."""
    await add(store, [event("purchase", 1)])
    async with api_client(store) as client:
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        text = await response.text()
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert 'exporter_stats_events_total{type="purchase"} 1.0' in text
