"""Envelopes in a batch: SNS trace context linked, identities, and unwrapping turned off."""

from __future__ import annotations

import json

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource, message

GOOD = '{"type":"t","value":1,"occurred_at":"2020-10-06 10:02:05"}'
PRODUCER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PRODUCER_TRACE}-b7ad6b7169203331-01"


def notification(message_id: str) -> str:
    """An SNS notification of GOOD with the producer's trace context as a message attribute."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
            "Message": GOOD,
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "MessageAttributes": {"traceparent": {"Type": "String", "Value": TRACEPARENT}},
        }
    )


async def test_an_sns_trace_context_links_the_batch_to_the_producer() -> None:
    """The traceparent inside a notification links the batch span, like an SQS attribute does."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    processor = Processor(
        MemoryStore(),
        RecordingSource(),
        build_metrics(CollectorRegistry()),
        ProcessorConfig(),
        tracer=provider.get_tracer("test"),
    )
    await processor.handle_batch([message(notification("n-1"), "a")])
    [batch] = [s for s in spans.get_finished_spans() if s.name == "batch"]
    assert [f"{link.context.trace_id:032x}" for link in batch.links] == [PRODUCER_TRACE]


async def test_one_notification_delivered_twice_counts_once() -> None:
    """Two SQS messages of one SNS notification: the second is a duplicate of the first."""
    store = MemoryStore()
    source = RecordingSource()
    registry = CollectorRegistry()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig())
    await processor.handle_batch([message(notification("n-1"), "a"), message(GOOD, "b")])
    await processor.handle_batch([message(notification("n-1"), "c")])
    totals = (await store.snapshot()).get("t")
    assert totals is not None
    assert totals.count == 2
    assert registry.get_sample_value("exporter_events_duplicate_total") == 1
    assert [m.message_id for m in source.deleted] == ["a", "b", "c"]


async def test_with_unwrapping_off_an_envelope_is_read_as_a_bare_event() -> None:
    """EXPORTER_UNWRAP_ENVELOPES=false: a notification is an event without `type`."""
    source = RecordingSource()
    processor = Processor(
        MemoryStore(),
        source,
        build_metrics(CollectorRegistry()),
        ProcessorConfig(unwrap_envelopes=False),
    )
    await processor.handle_batch([message(notification("n-1"), "a")])
    [letter] = source.dead_letters
    assert (letter.reason, letter.detail) == ("missing_field", "required field 'type' is missing")
