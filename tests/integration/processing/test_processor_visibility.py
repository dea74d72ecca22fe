"""A batch whose store call outlasts the visibility timeout keeps its messages hidden."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from exporter.events import Event
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.sqs.config import SqsConfig
from exporter.sqs.source import SqsSource
from exporter.store import ApplyResult
from exporter.store.memory import MemoryStore
from tests.integration.processing.processor_support import (
    event_body,
    queue_depth,
    unique_queue_name,
)
from tests.polling import eventually
from tests.sqs_messages import send, sqs_client

VISIBILITY_SECONDS = 2


class SlowStore(MemoryStore):
    """A real memory store whose first apply takes longer than the visibility timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(VISIBILITY_SECONDS * 1.8)
        return await super().apply(batch)


async def test_slow_store_extends_visibility_instead_of_redelivery(sqs_endpoint: str) -> None:
    """While the store is slow the batch's visibility is extended: no other poller receives it."""
    name = unique_queue_name()
    source = await SqsSource.open(
        SqsConfig(
            queue_name=name,
            dlq_name=f"{name}-dlq",
            endpoint_url=sqs_endpoint,
            create_queues=True,
            wait_time_seconds=1,
            visibility_timeout_seconds=VISIBILITY_SECONDS,
        )
    )
    registry = CollectorRegistry()
    store = SlowStore()
    processor = Processor(
        store,
        source,
        build_metrics(registry),
        ProcessorConfig(pollers=3, visibility_timeout_seconds=VISIBILITY_SECONDS),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    client = sqs_client(sqs_endpoint)
    send(client, source.queues[0].url, [event_body("slow", "1")])
    await eventually(lambda: queue_depth(client, source.queues[0].url) == 0, message="deleted")
    stop.set()
    await task
    await source.close()
    received = {"queue_name": source.queues[0].name}
    assert registry.get_sample_value("exporter_messages_received_total", received) == 1
    assert registry.get_sample_value("exporter_events_duplicate_total") == 0
    totals = (await store.snapshot()).get("slow")
    assert totals is not None
    assert totals.count == 1
