"""Arbitrary bodies through the batch handler with the real Redis store: never a crash, all kept."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from tests.servers import RedisServer
from tests.store_support import redis_store
from tests.unit.processing.processor_fakes import RecordingSource, bodies, message

_prefixes = itertools.count()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(bodies, min_size=1, max_size=10))
async def test_any_body_through_the_redis_store(
    redis_server: RedisServer, batch: list[bytes]
) -> None:
    """Each message ends applied, duplicate or dead-lettered, and every one is acknowledged."""
    store = redis_store(redis_server.url, prefix=f"hyp{next(_prefixes)}", max_types=2)
    source = RecordingSource()
    registry = CollectorRegistry()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig())
    try:
        await processor.handle_batch([message(body, f"m-{n}") for n, body in enumerate(batch)])
        applied = sum(t.count for t in (await store.snapshot()).types)
    finally:
        await store.close()
    duplicates = registry.get_sample_value("exporter_events_duplicate_total") or 0
    assert len(source.deleted) == len(batch)
    assert applied + duplicates + len(source.dead_letters) == len(batch)
