"""The processor's part in event-time series and rejected counts, with a real in-memory store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.store import StoreUnavailable
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource, message


def body(occurred_at: datetime, event_type: str = "t") -> str:
    moment = occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"type": event_type, "value": 2, "occurred_at": moment})


async def test_rejected_events_are_counted_by_reason_in_the_store() -> None:
    """Dead-lettered events add to the store's rejected counts, by reason, before deletion."""
    store, source = MemoryStore(max_types=1), RecordingSource()
    processor = Processor(store, source, build_metrics(CollectorRegistry()), ProcessorConfig())
    now = datetime.now(UTC)
    batch = [
        message("{", "a"),
        message('{"type":"t"}', "b"),
        message("[]", "c"),
        message(body(now, "t"), "d"),
        message(body(now, "u"), "e"),  # a second type past the cap of one
    ]
    await processor.handle_batch(batch)
    assert await store.rejected() == {
        "not_json": 1,
        "missing_field": 1,
        "not_object": 1,
        "too_many_types": 1,
    }


async def test_rejects_the_dead_letter_queue_refused_are_not_counted() -> None:
    """Only rejects that reached the dead-letter queue count; the others come back from SQS."""
    store, source = MemoryStore(), RecordingSource(fail_dead_letter=True)
    processor = Processor(store, source, build_metrics(CollectorRegistry()), ProcessorConfig())
    await processor.handle_batch([message("{", "a")])
    assert await store.rejected() == {}


async def test_a_failed_rejected_count_leaves_the_rejects_for_redelivery() -> None:
    """If the count cannot be stored, nothing is deleted: the count is at least once, not lost."""

    class NoCounts(MemoryStore):
        async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
            raise StoreUnavailable("down")

    source = RecordingSource()
    processor = Processor(NoCounts(), source, build_metrics(CollectorRegistry()), ProcessorConfig())
    with pytest.raises(StoreUnavailable):
        await processor.handle_batch([message("{", "a")])
    assert source.deleted == []


async def test_events_outside_the_series_window_are_counted_by_a_metric() -> None:
    """Applied events too old or too far ahead for a bucket raise exporter_events_unbucketed."""
    registry = CollectorRegistry()
    store, source = MemoryStore(), RecordingSource()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig())
    now = datetime.now(UTC)
    await processor.handle_batch(
        [
            message(body(now), "a"),
            message(body(now - timedelta(days=30)), "b"),
            message(body(now + timedelta(hours=2)), "c"),
        ]
    )
    assert registry.get_sample_value("exporter_events_unbucketed_total") == 2
    assert registry.get_sample_value("exporter_events_processed_total", {"type": "t"}) == 3
