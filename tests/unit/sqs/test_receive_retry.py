"""A receive's retry is its poller's next receive: on a FIFO queue that next receive of the same
queue carries the failed one's attempt id, so SQS answers it with what the failure lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from exporter.sqs.config import SqsConfig
from exporter.sqs.errors import SqsUnreachable
from exporter.sqs.messages import SourceUnavailable
from exporter.sqs.queue_calls import QueueCalls
from exporter.sqs.queues import ResolvedQueue
from exporter.sqs.source import SqsSource


@dataclass
class FlakyReceives:
    """A client double (the logic is pure): the first `failures` receives get no answer."""

    failures: int
    attempt_ids: list[str | None] = field(default_factory=list)

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert operation == "ReceiveMessage"
        self.attempt_ids.append(payload.get("ReceiveRequestAttemptId"))
        if self.failures:
            self.failures -= 1
            raise SqsUnreachable("the answer was lost on the way")
        return {}


def _source(client: FlakyReceives, name: str) -> SqsSource:
    queue = ResolvedQueue(name, f"http://sqs/1/{name}", f"{name}-dlq", f"http://sqs/1/{name}-dlq")
    config = SqsConfig(queue_name=name, dlq_name=None)
    return SqsSource(QueueCalls(client), config, [queue])  # type: ignore[arg-type]


async def test_a_fifo_receive_after_a_failure_carries_the_failed_attempt_id() -> None:
    """Two failed receives and a good one share an attempt id; the receive after a success
    gets a new one."""
    client = FlakyReceives(failures=2)
    source = _source(client, "events.fifo")
    for _ in range(2):
        with pytest.raises(SourceUnavailable):
            await source.receive(10)
    assert await source.receive(10) == []
    await source.receive(10)
    first, second, third, fourth = client.attempt_ids
    assert first is not None
    assert first == second == third != fourth


async def test_a_standard_queue_sends_no_attempt_id() -> None:
    """Only FIFO queues take a ReceiveRequestAttemptId."""
    client = FlakyReceives(failures=1)
    source = _source(client, "events")
    with pytest.raises(SourceUnavailable):
        await source.receive(10)
    await source.receive(10)
    assert client.attempt_ids == [None, None]
