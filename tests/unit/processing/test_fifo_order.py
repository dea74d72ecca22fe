"""FIFO order at acknowledgement: a message group never moves past a message that is unsettled."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.fifo import in_group_order
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.sqs.messages import Message
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource, message

GOOD = '{"type":"t","value":1,"occurred_at":"2020-10-06 10:02:05"}'


def grouped(body: str, message_id: str, group: str | None) -> Message:
    """A received message of FIFO group `group` (None: a standard queue's)."""
    return replace(message(body, message_id), group_id=group, queue="events.fifo")


def test_a_group_is_held_from_its_first_unsettled_message_on() -> None:
    """a1 settled, a2 not: a3 is held behind a2; group b and ungrouped messages are unaffected."""
    a1, a2, a3 = (grouped(GOOD, f"a{n}", "a") for n in (1, 2, 3))
    b1, b2 = (grouped(GOOD, f"b{n}", "b") for n in (1, 2))
    received = [a1, b1, a2, a3, b2]
    order = in_group_order(received, [a1, b1, a3, b2])
    assert [m.message_id for m in order.deletable] == ["a1", "b1", "b2"]
    assert [m.message_id for m in order.held] == ["a3"]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.booleans()), min_size=1, max_size=10
    )
)
def test_nothing_deletable_follows_an_unsettled_message_of_its_group(
    plan: list[tuple[str | None, bool]],
) -> None:
    """For any batch: deletable and held split the settled messages, and no deletable message of
    a group comes after an unsettled one of the same group."""
    received = [grouped(GOOD, f"m{i}", group) for i, (group, _) in enumerate(plan)]
    settled = [m for m, (_, ok) in zip(received, plan, strict=True) if ok]
    order = in_group_order(received, settled)
    assert sorted(m.message_id for m in order.deletable + order.held) == sorted(
        m.message_id for m in settled
    )
    deletable = {m.message_id for m in order.deletable}
    for i, (group, ok) in enumerate(plan):
        if ok or group is None:
            continue
        later = [f"m{j}" for j, (g, _) in enumerate(plan) if j > i and g == group]
        assert not deletable.intersection(later)


async def test_a_failed_dead_letter_holds_back_the_rest_of_its_group() -> None:
    """On a FIFO queue, a reject whose dead-letter send failed keeps every later message of its
    group in flight (they come back with it, in order); other groups are deleted as usual."""
    source = RecordingSource(fail_dead_letter=True)
    registry = CollectorRegistry()
    store = MemoryStore()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig())
    batch = [
        grouped(GOOD, "a1", "a"),
        grouped("not json", "a2", "a"),
        grouped(GOOD, "a3", "a"),
        grouped(GOOD, "b1", "b"),
    ]
    await processor.handle_batch(batch)
    assert [m.message_id for m in source.deleted] == ["a1", "b1"]
    totals = (await store.snapshot()).get("t")
    assert totals is not None
    assert totals.count == 3  # a3 is counted once now; its redelivery will be a duplicate
    await processor.handle_batch([grouped("not json", "a2", "a"), grouped(GOOD, "a3", "a")])
    assert [m.message_id for m in source.deleted] == ["a1", "b1"]  # the DLQ still fails
    source.fail_dead_letter = False
    await processor.handle_batch([grouped("not json", "a2", "a"), grouped(GOOD, "a3", "a")])
    assert [m.message_id for m in source.deleted] == ["a1", "b1", "a2", "a3"]
    again = (await store.snapshot()).get("t")
    assert again is not None
    assert again.count == 3
    assert registry.get_sample_value("exporter_events_duplicate_total") == 2


async def test_a_standard_queue_deletes_past_a_failed_dead_letter() -> None:
    """Without groups, order is not promised: the valid messages are deleted at once."""
    source = RecordingSource(fail_dead_letter=True)
    processor = Processor(
        MemoryStore(), source, build_metrics(CollectorRegistry()), ProcessorConfig()
    )
    await processor.handle_batch([message(GOOD, "a"), message("no", "b"), message(GOOD, "c")])
    assert [m.message_id for m in source.deleted] == ["a", "c"]
