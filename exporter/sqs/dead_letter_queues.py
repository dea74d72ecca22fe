"""The dead-letter queues of a source, for `exporter dlq`: look, release, delete, send back.

A dead letter goes back to the queue it came from (its `source_queue` attribute); one that SQS
moved by itself carries no attributes and goes back to the first queue that uses this
dead-letter queue. Which one does not matter for the totals (one processor reads them all, into
one store); on FIFO queues the message keeps its group, so order within the group holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from exporter.sqs.batches import send_chunks
from exporter.sqs.dead_letters import fifo_fields, message_size, redrive_attributes
from exporter.sqs.messages import Message, QueueState, SourceUnavailable
from exporter.sqs.queue_calls import SINGLE_CALL_RETRY, QueueCalls, new_attempt_id
from exporter.sqs.queues import ResolvedQueue


class SqsDeadLetterQueue:
    """One dead-letter queue, called `name`, of `queues` (the queues that forward to it)."""

    def __init__(self, calls: QueueCalls, queues: Sequence[ResolvedQueue], name: str) -> None:
        self._calls = calls
        self.name = name
        self.sources = [queue for queue in queues if queue.dlq_name == name]
        if not self.sources:
            raise ValueError(f"none of these queues dead-letters to {name!r}")
        self.url = self.sources[0].dlq_url
        self.fifo = self.sources[0].fifo

    async def receive_dead_letters(
        self, max_messages: int, visibility_seconds: int
    ) -> Sequence[Message]:
        """Up to 10 dead-lettered messages, hidden for `visibility_seconds` (short poll).

        The receive's one retry layer in `exporter dlq` (SINGLE_CALL_RETRY): each try of one
        receive carries the same attempt id, which a FIFO queue answers with the same messages.
        """
        attempt_id = new_attempt_id() if self.fifo else None

        def receive() -> Awaitable[Sequence[Message]]:
            return self._calls.receive(
                self.url,
                self.name,
                max_messages,
                1,
                visibility_seconds,
                fifo=self.fifo,
                attempt_id=attempt_id,
            )

        return await SINGLE_CALL_RETRY.call(receive, on=SourceUnavailable)

    async def dead_letter_counts(self) -> Mapping[QueueState, int]:
        """How many dead letters SQS counts, visible and in flight (approximately)."""
        return await self._calls.counts(self.url)

    async def release_dead_letters(self, messages: Sequence[Message]) -> None:
        """Make dead-lettered messages visible again at once (after a peek)."""
        await self._calls.change_visibility(self.url, messages, 0)

    async def delete_dead_letters(self, messages: Sequence[Message]) -> Sequence[Message]:
        """Delete from the dead-letter queue; return the messages that could not be deleted."""
        return await self._calls.delete(self.url, messages)

    def target_of(self, message: Message) -> ResolvedQueue:
        """The queue a dead letter goes back to."""
        named = message.attributes.get("source_queue")
        for queue in self.sources:
            if queue.name == named:
                return queue
        return self.sources[0]

    async def requeue(self, messages: Sequence[Message]) -> Sequence[Message]:
        """Send dead-lettered messages back to their queues; return those that were accepted."""
        by_target: dict[str, list[Message]] = {}
        for message in messages:
            by_target.setdefault(self.target_of(message).name, []).append(message)
        failed: list[Message] = []
        by_name = {queue.name: queue for queue in self.sources}
        for name, group in by_target.items():
            target = by_name[name]

            def send(
                chunk: Sequence[Message], target: ResolvedQueue = target
            ) -> tuple[str, dict[str, Any]]:
                return _send_back(target, chunk)

            for chunk in send_chunks(group, message_size):
                failed.extend(await self._calls.batch("requeue", chunk, send))
        failed_ids = {id(m) for m in failed}
        return [m for m in messages if id(m) not in failed_ids]


def _send_back(target: ResolvedQueue, messages: Sequence[Message]) -> tuple[str, dict[str, Any]]:
    entries = []
    for i, message in enumerate(messages):
        entry: dict[str, Any] = {
            "Id": str(i),
            "MessageBody": message.body.decode("utf-8", "replace") or " ",
            "MessageAttributes": redrive_attributes(message),
        }
        if target.fifo:
            # The dead letter's group, and its MessageId as the deduplication id: a redrive cut
            # short and run again within five minutes does not put a second copy in the queue.
            entry |= fifo_fields(message)
        entries.append(entry)
    return "SendMessageBatch", {"QueueUrl": target.url, "Entries": entries}


def dead_letter_queues(
    calls: QueueCalls, queues: Sequence[ResolvedQueue]
) -> list[SqsDeadLetterQueue]:
    """Every dead-letter queue of `queues`, each once, in the order of the queues."""
    names = dict.fromkeys(queue.dlq_name for queue in queues)
    return [SqsDeadLetterQueue(calls, queues, name) for name in names]


__all__ = ["SqsDeadLetterQueue", "dead_letter_queues"]
