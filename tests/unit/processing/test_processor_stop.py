"""What a stop does to receives in progress: a long poll is abandoned, a short one is let end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import (
    ABANDON_RECEIVES_LONGER_THAN_SECONDS,
    Processor,
    ProcessorConfig,
)
from exporter.sqs.messages import Message
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource


@dataclass
class WaitingSource(RecordingSource):
    """A queue with nothing in it: each receive waits until the test lets it answer (empty)."""

    answer: asyncio.Event = field(default_factory=asyncio.Event)
    both_waiting: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0
    cancelled: int = 0

    async def receive(self, max_messages: int) -> Sequence[Message]:
        del max_messages
        self.waiting += 1
        if self.waiting == 2:
            self.both_waiting.set()
        try:
            await self.answer.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.waiting -= 1
        return ()


async def _polling(
    source: WaitingSource, wait_seconds: int
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """A processor of two pollers, both waiting in a receive."""
    config = ProcessorConfig(pollers=2, receive_wait_seconds=wait_seconds)
    processor = Processor(MemoryStore(), source, build_metrics(CollectorRegistry()), config)
    stop = asyncio.Event()
    running = asyncio.create_task(processor.run(stop))
    await asyncio.wait_for(source.both_waiting.wait(), timeout=5)
    return stop, running


async def test_a_stop_abandons_long_polls_at_once() -> None:
    """With 20 s receives, a stop ends the run without waiting for them: both are cancelled."""
    source = WaitingSource()
    stop, running = await _polling(source, 20)
    stop.set()
    await asyncio.wait_for(running, timeout=5)  # only a bound: the run ends at once
    assert source.cancelled == 2


@pytest.mark.parametrize("wait_seconds", [0, 1, ABANDON_RECEIVES_LONGER_THAN_SECONDS])
async def test_a_stop_lets_short_receives_end(wait_seconds: int) -> None:
    """With receives of at most 2 s, a stop waits for them (then nothing SQS hands them stays
    hidden): the run ends only once they answer, and none is cancelled."""
    source = WaitingSource()
    stop, running = await _polling(source, wait_seconds)
    stop.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not running.done()
    source.answer.set()
    await asyncio.wait_for(running, timeout=5)
    assert source.cancelled == 0
