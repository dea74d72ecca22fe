"""Several queues, polled fairly: each keeps its share of the pollers whatever the others hold."""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field
from typing import Any

from exporter.sqs.config import SqsConfig
from exporter.sqs.queue_calls import QueueCalls
from exporter.sqs.queues import ResolvedQueue
from exporter.sqs.source import SqsSource


@dataclass
class FakeSqs:
    """A client double for pure scheduling logic: `busy` queues answer at once with ten
    messages, the others hold each long poll until released."""

    busy: set[str]
    in_progress: collections.Counter[str] = field(default_factory=collections.Counter)
    most: collections.Counter[str] = field(default_factory=collections.Counter)
    answered: collections.Counter[str] = field(default_factory=collections.Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert operation == "ReceiveMessage"
        url = str(payload["QueueUrl"])
        self.in_progress[url] += 1
        self.most[url] = max(self.most[url], self.in_progress[url])
        try:
            if url in self.busy:
                await asyncio.sleep(0)
            else:
                await self.release.wait()
                return {}
        finally:
            self.in_progress[url] -= 1
        self.answered[url] += 1
        messages = [
            {"MessageId": f"m{next(self.ids)}", "ReceiptHandle": "r", "Body": "{}"}
            for _ in range(10)
        ]
        return {"Messages": messages}

    async def close(self) -> None:
        return None


def source(fake: FakeSqs, names: list[str]) -> SqsSource:
    queues = [ResolvedQueue(name, name, f"{name}-dlq", f"{name}-dlq") for name in names]
    config = SqsConfig(queue_name=names[0], dlq_name=None)
    return SqsSource(QueueCalls(fake), config, queues)  # type: ignore[arg-type]


async def _poll(sqs: SqsSource, rounds: int) -> list[str]:
    seen = []
    for _ in range(rounds):
        seen += [m.queue for m in await sqs.receive(10)]
    return seen


async def test_an_idle_queue_keeps_its_pollers_and_takes_no_more() -> None:
    """Four pollers for two queues: the idle one holds two long polls, never more; the busy one
    is read by the other two all along."""
    fake = FakeSqs(busy={"busy"})
    sqs = source(fake, ["idle", "busy"])
    pollers = [asyncio.create_task(_poll(sqs, 20)) for _ in range(4)]
    done: set[asyncio.Task[list[str]]] = set()
    pending = set(pollers)
    while len(done) < 2:
        finished, pending = await asyncio.wait(
            pending, timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        assert finished, "the pollers of the busy queue did not finish"
        done |= finished
    assert len(done) == 2  # the two on the busy queue finished; two still wait on the idle one
    assert fake.answered["busy"] == 40
    assert fake.most["idle"] == 2
    assert fake.in_progress["idle"] == 2
    fake.release.set()
    await asyncio.gather(*pollers)


async def test_busy_queues_are_read_in_turn() -> None:
    """Three busy queues and one poller: receives go round the queues, each its equal share."""
    fake = FakeSqs(busy={"a", "b", "c"})
    sqs = source(fake, ["a", "b", "c"])
    received = await _poll(sqs, 30)
    assert collections.Counter(received) == {"a": 100, "b": 100, "c": 100}
    assert received[::10][:6] == ["a", "b", "c", "a", "b", "c"]
