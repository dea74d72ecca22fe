"""A batch the store refused is kept hidden while the processor is paused and worked on again by
the same processor when polling resumes, with no further receive (given back to SQS only when it
stops): at a memory limit another replica would otherwise receive it while the store still
refuses, and each receive spends one of the redrive's count (decision 0017)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from exporter.events import Event
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.sqs.messages import Message
from exporter.store import ApplyResult, StoreRefused
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource, message

BODY = '{"type": "view", "value": 1, "occurred_at": "2026-11-26 10:00:00"}'


@dataclass
class PollingSource(RecordingSource):
    """A recording source whose empty receive waits a little, as a long poll does; it says when
    a batch was given back (visibility 0)."""

    given_back: asyncio.Event = field(default_factory=asyncio.Event)
    receives: int = 0
    all_deleted: asyncio.Event = field(default_factory=asyncio.Event)

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        left = await super().delete(messages)
        self.all_deleted.set()
        return left

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        await super().change_visibility(messages, seconds)
        if seconds == 0:
            self.given_back.set()

    async def receive(self, max_messages: int) -> Sequence[Message]:
        batch = await super().receive(max_messages)
        self.receives += len(batch)
        if not batch:
            await asyncio.sleep(0.01)
        return batch


@dataclass
class RefusingStore(MemoryStore):
    """A memory store that refuses applies while `full` is set, and probes too once an apply
    was refused (at a memory limit a small write may pass where a batch does not)."""

    full: asyncio.Event = field(default_factory=asyncio.Event)
    refused: asyncio.Event = field(default_factory=asyncio.Event)
    probes_refused: int = 0
    probed_thrice: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        super().__init__()

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        if self.full.is_set():
            self.refused.set()
            raise StoreRefused("Redis apply failed: OOM, Redis is out of memory: used ...")
        return await super().apply(batch)

    async def probe_write(self) -> None:
        if self.full.is_set() and self.refused.is_set():
            self.probes_refused += 1
            if self.probes_refused >= 3:
                self.probed_thrice.set()
            raise StoreRefused("Redis ran out of memory and is not below its low-water mark")


async def test_a_refused_batch_is_held_and_worked_on_again_when_the_store_takes_writes() -> None:
    """Refused: its messages are kept hidden (extended, never made visible) while paused; once a
    probe passes the same processor applies and deletes them, never giving them back to SQS nor
    receiving them again, and nothing was deleted before."""
    store = RefusingStore()
    store.full.set()
    messages = [message(BODY, f"m-{i}") for i in range(3)]
    source = PollingSource(to_receive=list(messages))
    config = ProcessorConfig(pollers=1, visibility_timeout_seconds=5, store_probe_cap_seconds=0.05)
    processor = Processor(store, source, build_metrics(CollectorRegistry()), config)
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    try:
        await asyncio.wait_for(store.probed_thrice.wait(), timeout=10)
        assert (source.visibility, source.deleted) == ([], [])  # paused three probes: held
        store.full.clear()
        await asyncio.wait_for(source.all_deleted.wait(), timeout=10)
        assert [m.message_id for m in source.deleted] == [m.message_id for m in messages]
        view = (await store.snapshot()).get("view")
        assert view is not None
        assert view.count == 3
        assert source.visibility == []  # never given back
        assert source.receives == 3  # each message received once
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_held_batches_are_given_back_when_the_processor_stops() -> None:
    """Stopping while paused gives every held message back at once, nothing deleted."""
    store = RefusingStore()
    store.full.set()
    messages = [message(BODY, f"m-{i}") for i in range(2)]
    source = PollingSource(to_receive=list(messages))
    config = ProcessorConfig(pollers=1, store_probe_cap_seconds=0.05)
    processor = Processor(store, source, build_metrics(CollectorRegistry()), config)
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    await asyncio.wait_for(store.refused.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert source.visibility == [(m.message_id, 0) for m in messages]
    assert source.deleted == []
