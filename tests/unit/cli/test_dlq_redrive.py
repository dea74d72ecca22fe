"""`exporter dlq redrive`'s loop: what it reports when SQS accepts only part of the work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.cli.dlq import redrive
from exporter.sqs.messages import Message


@dataclass
class FakeDeadLetterQueue:
    """Dead letters in memory; deletes of the ids in `undeletable` fail."""

    waiting: list[Message]
    undeletable: set[str] = field(default_factory=set)
    requeued: list[Message] = field(default_factory=list)
    released: list[Message] = field(default_factory=list)

    async def receive_dead_letters(
        self, max_messages: int, visibility_seconds: int
    ) -> Sequence[Message]:
        del visibility_seconds
        batch, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        return batch

    async def release_dead_letters(self, messages: Sequence[Message]) -> None:
        self.released += messages

    async def delete_dead_letters(self, messages: Sequence[Message]) -> Sequence[Message]:
        return [m for m in messages if m.message_id in self.undeletable]

    async def requeue(self, messages: Sequence[Message]) -> Sequence[Message]:
        self.requeued += messages
        return messages


def letters(count: int) -> list[Message]:
    return [Message(f"m{n}", f"r{n}", b"{}") for n in range(count)]


async def test_everything_moves_when_sqs_accepts_everything() -> None:
    """All 25 dead letters are sent back in batches of 10 and nothing is left undeleted."""
    queue = FakeDeadLetterQueue(letters(25))
    result = await redrive(queue, limit=100)
    assert result.moved == 25
    assert list(result.not_deleted) == []
    assert len(queue.requeued) == 25


async def test_a_failed_delete_stops_the_redrive_and_names_the_message() -> None:
    """A letter sent back but not deleted is reported, and no further batch is redriven."""
    queue = FakeDeadLetterQueue(letters(25), undeletable={"m3"})
    result = await redrive(queue, limit=100)
    assert result.moved == 10
    assert [m.message_id for m in result.not_deleted] == ["m3"]
    assert len(queue.requeued) == 10
