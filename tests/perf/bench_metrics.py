"""Benchmark 10: the API's /metrics with dimensions, at two sizes (issue 27).

The API (`make_app`, its real middlewares) over a store holding `series` combinations: ten types,
each with `series / 10 - 1` combinations of two dimensions and its `__unattributed__` series, every
event in one of the default value buckets. Each size is scraped over HTTP on loopback, in turn,
`scrapes` times; the figure is the median time of one scrape, the ratio the larger's over the
smaller's per series (1.0 is linear). The store is the Redis one, each size under a prefix of
its own on the run's redis-server; before each scrape one more event is applied, so that every
scrape reads and renders anew, as under live traffic (an unchanged store is answered from the
API's cache).
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from exporter.events import Event
from exporter.store.detail import CountingConfig
from exporter.store.redis import RedisStore
from exporter.web import make_app
from tests.store_support import redis_store

TYPES = 10
# Prometheus's default scrape timeout.
SCRAPE_TIMEOUT_SECONDS = 10.0


async def _store(series: int, redis_url: str) -> RedisStore:
    """A store whose /metrics has `series` series of exporter_stats_events_total."""
    per_type = max(series // TYPES - 1, 1)
    store = redis_store(
        redis_url,
        prefix=f"bench-metrics-{uuid.uuid4().hex[:8]}",
        counting=CountingConfig(
            ("channel", "country"), max_values=10_000, max_combinations=per_type
        ),
    )
    now = datetime.now(UTC)
    for kind in range(TYPES):
        batch = [
            (
                f"msg:{kind}:{n}",
                Event(f"type-{kind}", (n % 5000) * 1_000_000 + 990_000, now, None,
                      (f"channel-{n % 7}", f"country-{n}")),
            )
            for n in range(per_type)
        ]  # fmt: skip
        await store.apply(batch)
    return store


async def _scrape(session: aiohttp.ClientSession, url: str) -> tuple[float, int, int]:
    """Seconds for one scrape, its bytes and its exporter_stats_events_total series."""
    started = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
    seconds = time.perf_counter() - started
    assert response.status == 200
    series = body.count(b"\nexporter_stats_events_total{")
    return seconds, len(body), series


async def _one_more(store: RedisStore) -> None:
    """One more event of an existing combination: the next scrape reads and renders anew."""
    event = Event("type-0", 1_000_000, datetime.now(UTC), None, ("channel-0", "country-0"))
    await store.apply([(f"msg:{uuid.uuid4()}", event)])


async def metrics_scrape(
    redis_url: str, *, series: tuple[int, ...], scrapes: int
) -> dict[str, Any]:
    """Median scrape time of each size; how it grows per series."""
    servers = {}
    stores: dict[int, RedisStore] = {}
    for size in series:
        stores[size] = await _store(size, redis_url)
        app = make_app(stores[size], CollectorRegistry(), admin_token=None)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers[size] = server
    times: dict[int, list[float]] = {size: [] for size in series}
    shape: dict[int, tuple[int, int]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for server in servers.values():  # warm up: the first answer of each app is not timed
                await _scrape(session, str(server.make_url("/metrics")))
            for _ in range(scrapes):
                for size, server in servers.items():
                    await _one_more(stores[size])
                    seconds, size_bytes, counted = await _scrape(
                        session, str(server.make_url("/metrics"))
                    )
                    times[size].append(seconds)
                    shape[size] = (size_bytes, counted)
    finally:
        for server in servers.values():
            await server.close()
        for store in stores.values():
            await store.close()
    medians = {size: statistics.median(values) for size, values in times.items()}
    small, large = min(series), max(series)
    per_series = {size: medians[size] / shape[size][1] for size in series}
    return {
        "benchmark": "metrics_scrape",
        "sizes": {
            str(size): {
                "series": shape[size][1],
                "bytes": shape[size][0],
                "scrape_ms": round(medians[size] * 1000, 1),
                "scrape_ms_rounds": [round(t * 1000, 1) for t in times[size]],
                "us_per_series": round(per_series[size] * 1e6, 2),
            }
            for size in series
        },
        "ratio": round(per_series[large] / per_series[small], 3),
        "target": f"linear in series (ratio per series near 1 or below); {large} series well "
        f"under {SCRAPE_TIMEOUT_SECONDS:g} s",
        "target_met": medians[large] < SCRAPE_TIMEOUT_SECONDS / 4
        and per_series[large] <= 1.5 * per_series[small],
    }
