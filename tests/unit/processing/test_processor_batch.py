"""One batch through `Processor.handle_batch` with a real in-memory store: ordering of effects."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporter.events import parse_event
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig, identity_of
from exporter.store import StoreUnavailable
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource, bodies, message

GOOD = '{"type":"t","value":1.5,"occurred_at":"2020-10-06 10:02:05"}'


def make(
    store: MemoryStore | None = None, source: RecordingSource | None = None
) -> tuple[Processor, MemoryStore, RecordingSource, CollectorRegistry]:
    registry = CollectorRegistry()
    store = store or MemoryStore()
    source = source or RecordingSource()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig())
    return processor, store, source, registry


def test_identity_is_the_event_id_else_the_message_id() -> None:
    """Events with an id de-duplicate by it; events without one by the SQS MessageId."""
    with_id = parse_event(b'{"type":"t","value":1,"occurred_at":"2020-10-06 10:02:05","id":"x"}')
    without = parse_event(GOOD.encode())
    assert identity_of(with_id, message(GOOD, "m-9")) == "id:x"
    assert identity_of(without, message(GOOD, "m-9")) == "msg:m-9"


async def test_applied_duplicate_and_rejected_messages_are_acknowledged() -> None:
    """Applied and duplicate messages are deleted; rejects are dead-lettered, then deleted."""
    processor, store, source, registry = make()
    batch = [message(GOOD, "a"), message(GOOD, "a"), message("{", "b"), message(GOOD, "c")]
    await processor.handle_batch(batch)
    totals = (await store.snapshot()).get("t")
    assert totals is not None
    assert (totals.count, totals.sum_micros) == (2, 3_000_000)
    assert [letter.reason for letter in source.dead_letters] == ["not_json"]
    assert sorted(m.message_id for m in source.deleted) == ["a", "a", "b", "c"]
    assert registry.get_sample_value("exporter_events_duplicate_total") == 1
    assert registry.get_sample_value("exporter_events_invalid_total", {"reason": "not_json"}) == 1
    assert (
        registry.get_sample_value("exporter_messages_dead_lettered_total", _dlq_labels(source)) == 1
    )


def _dlq_labels(source: RecordingSource) -> dict[str, str]:
    """The labels of the dead-lettered counter of a not_json reject from the default queue."""
    return {"reason": "not_json", "queue_name": source.dead_letter_queue(message(GOOD, "x").queue)}


async def test_store_unavailable_leaves_every_message_untouched() -> None:
    """When the store fails, nothing is deleted or dead-lettered: SQS redelivers it all later."""

    class DownStore(MemoryStore):
        async def apply(self, batch: object) -> object:  # type: ignore[override]
            raise StoreUnavailable("down")

    processor, _, source, _ = make(store=DownStore())
    with pytest.raises(StoreUnavailable):
        await processor.handle_batch([message(GOOD, "a"), message("nope", "b")])
    assert source.deleted == []
    assert source.dead_letters == []


async def test_a_reject_is_not_deleted_when_the_dead_letter_queue_fails() -> None:
    """If the DLQ send fails, the rejected message stays; the valid one is still acknowledged."""
    processor, _, source, registry = make(source=RecordingSource(fail_dead_letter=True))
    await processor.handle_batch([message(GOOD, "a"), message("nope", "b")])
    assert [m.message_id for m in source.deleted] == ["a"]
    # The same labels count 1 when the send succeeds (the test above): nothing was counted here.
    dead = registry.get_sample_value("exporter_messages_dead_lettered_total", _dlq_labels(source))
    assert dead in (None, 0.0)
    assert registry.get_sample_value("exporter_events_invalid_total", {"reason": "not_json"}) == 1


async def test_too_many_types_go_to_the_dead_letter_queue() -> None:
    """A store refusal (type cap) becomes a dead letter with reason too_many_types."""
    processor, _, source, _ = make(store=MemoryStore(max_types=1))
    other = GOOD.replace('"t"', '"u"')
    await processor.handle_batch([message(GOOD, "a"), message(other, "b")])
    assert [(d.message.message_id, d.reason) for d in source.dead_letters] == [
        ("b", "too_many_types")
    ]
    assert "'u'" in source.dead_letters[0].detail
    assert len(source.deleted) == 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(bodies, min_size=1, max_size=10))
async def test_any_body_is_applied_or_dead_lettered_never_crashes(batch: list[bytes]) -> None:
    """Whatever the bodies, handling never raises; each message ends applied or dead-lettered."""
    processor, store, source, registry = make(store=MemoryStore(max_types=2))
    messages = [message(body, f"m-{n}") for n, body in enumerate(batch)]
    await processor.handle_batch(messages)
    assert len(source.deleted) == len(messages)
    dead_ids = {d.message.message_id for d in source.dead_letters}
    applied = sum((t.count for t in (await store.snapshot()).types), 0)
    duplicates = registry.get_sample_value("exporter_events_duplicate_total") or 0
    assert applied + duplicates + len(dead_ids) == len(messages)
    for letter in source.dead_letters:
        assert letter.reason
        assert letter.detail
