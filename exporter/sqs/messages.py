"""Where messages come from: the `Source` protocol the consume loop sees, and its value types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from exporter.faults import Fatal, Transient

QueueRole = Literal["main", "dead_letter"]
QueueState = Literal["visible", "in_flight", "delayed"]


class SourceUnavailable(Transient):
    """A transient failure (network, throttling, server error); retry later, nothing was lost."""


class SourceMisconfigured(Fatal):
    """The source can never work as configured (bad credentials, missing queue); say so and exit."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received message; `receipt_handle` is what delete and visibility changes need.

    `queue` names the queue it came from (a processor may read several), `group_id` is its
    FIFO message group (None on a standard queue).
    """

    message_id: str
    receipt_handle: str
    body: bytes
    receive_count: int = 1
    first_received_at: datetime | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    queue: str = ""
    group_id: str | None = None

    @property
    def traceparent(self) -> str | None:
        """The producer's W3C trace context, when it sent one."""
        return self.attributes.get("traceparent")

    @property
    def original_message_id(self) -> str:
        """The MessageId this message was first sent with: a redriven copy carries it along as an
        attribute (SQS gives the copy a new MessageId), anything else is its own original."""
        return self.attributes.get("original_message_id") or self.message_id


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Approximate message counts of one queue, by state."""

    role: QueueRole
    name: str
    counts: Mapping[QueueState, int]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message to forward to the dead-letter queue, and why."""

    message: Message
    reason: str
    detail: str


class Source(Protocol):
    """A queue the processor consumes: receive, acknowledge, dead-letter, hide or release."""

    async def receive(self, max_messages: int) -> Sequence[Message]:
        """Up to `max_messages` messages, waiting (long polling) when none are visible."""
        ...

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        """Acknowledge `messages`; return the ones that could not be deleted after retries."""
        ...

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        """Forward to the dead-letter queue; return the messages that were durably sent."""
        ...

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        """Hide `messages` for `seconds` more (0 makes them visible again at once)."""
        ...

    async def ping(self) -> None:
        """Raise `SourceUnavailable` unless the queue answers."""
        ...

    def dead_letter_queue(self, queue: str) -> str:
        """The name of the dead-letter queue that messages of `queue` are forwarded to."""
        ...

    async def depths(self) -> Sequence[QueueDepth]:
        """Approximate message counts of every queue read and every dead-letter queue."""
        ...


__all__ = [
    "DeadLetter",
    "Message",
    "QueueDepth",
    "QueueRole",
    "QueueState",
    "Source",
    "SourceMisconfigured",
    "SourceUnavailable",
]
