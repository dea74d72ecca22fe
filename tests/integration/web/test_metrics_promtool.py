"""`promtool check metrics` accepts both /metrics: the API's (totals, dimensions, the value
histogram family) and a processor's (its value histogram and folds), each fetched over HTTP from
the real app with data in every family."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.events import OTHER, ContractOptions, Event
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.store import Store
from exporter.store.detail import CountingConfig
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from exporter.web import make_app
from exporter.web.health import make_health_app
from tests.polling import scaled
from tests.servers import require_binary
from tests.store_support import unique_prefix
from tests.unit.processing.processor_fakes import RecordingSource, message

COUNTING = CountingConfig(("channel", "country"), max_values=2, max_combinations=2)


def promtool_check(exposition: str) -> subprocess.CompletedProcess[str]:
    """The exposition piped through `promtool check metrics`."""
    return subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(60),
    )


async def fetch_metrics(app: web.Application) -> str:
    """GET /metrics of `app` served on a real loopback port."""
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        return await response.text()


@pytest.fixture(name="store", params=["memory-dimensions", "memory", "redis-dimensions", "redis"])
async def fixture_store(
    request: pytest.FixtureRequest, open_store: Callable[..., RedisStore]
) -> Store:
    """Stores with events: dimensions and folds of every kind, or none; in memory and in Redis."""
    now = datetime.now(UTC)
    kind: str = request.param
    counting = COUNTING if kind.endswith("-dimensions") else CountingConfig()
    store: Store = (
        MemoryStore(counting=counting)
        if kind.startswith("memory")
        else open_store(prefix=unique_prefix(), counting=counting)
    )
    values = [("web", "NL"), ("app", "DE"), ("web", "FR"), (OTHER, "NL"), ("app", "NL")]
    width = len(counting.dimensions)
    await store.apply(
        [
            (f"msg:{uuid.uuid4()}", Event("purchase", 12_500_000 * i, now, None, pair[:width]))
            for i, pair in enumerate(values)
        ]
    )
    return store


async def test_the_api_metrics_pass_promtool(store: Store) -> None:
    """The API's exposition, `exporter_stats_value_sum` now a histogram's sum, is accepted."""
    app = make_app(store, CollectorRegistry(), admin_token=None)
    text = await fetch_metrics(app)
    assert "# TYPE exporter_stats_value histogram" in text
    assert "exporter_stats_value_sum{" in text
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_processor_metrics_pass_promtool() -> None:
    """A processor's exposition after a batch with folds and values in several buckets."""
    registry = CollectorRegistry()
    store = MemoryStore(counting=COUNTING)
    processor = Processor(
        store,
        RecordingSource(),
        build_metrics(registry),
        ProcessorConfig(contract=ContractOptions(COUNTING.dimensions)),
    )
    bodies = [
        ('{"type":"purchase","value":5,"occurred_at":"2020-10-06 10:02:05",'
         f'"channel":"web","country":"{country}"}}')
        for country in ("NL", "DE", "FR", "BE")
    ]  # fmt: skip
    await processor.handle_batch([message(b, f"m-{i}") for i, b in enumerate(bodies)])
    text = await fetch_metrics(make_health_app(registry, {}))
    assert "exporter_dimension_folded_total{" in text
    assert 'exporter_event_value_bucket{le="5.0",type="purchase"} 4.0' in text
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr
