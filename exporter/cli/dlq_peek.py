"""`exporter dlq peek`'s loop: every dead letter up to the limit, or a plain word on what is left.

SQS's receive is no listing: it samples its servers and may return fewer messages than asked,
even none while some remain (a long poll, as here, makes an empty answer rare, not impossible).
A message it returned stays hidden until its visibility timeout ends, so no later receive of the
same peek returns it, unless the peek outlasts that timeout: then its first messages come back,
and a peek that stopped at the first batch of nothing new (as it did) showed 571 of 776. So each
message is hidden for as long as the whole peek may take, any message seen twice is skipped, the
peek stops before that time is up, an answer with nothing new is checked against SQS's counts,
and whatever is left is counted and said, with the reason.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TextIO

from exporter.sqs.messages import Message, QueueState

# Hidden for this long per message asked for, plus a margin: ample (a receive may bring a single
# message, and a loaded emulator took 0.2 s per message), and harmless, as every message is
# released at the end; only a peek that is killed leaves its messages hidden, for at most this
# long (nothing but another peek or a redrive reads a dead-letter queue).
SECONDS_PER_MESSAGE: Final = 1.0
MIN_VISIBILITY_SECONDS: Final = 60
MAX_VISIBILITY_SECONDS: Final = 43_200  # SQS's own maximum
# The peek stops this long before its first messages could reappear.
MARGIN_SECONDS: Final = 10
# Receives in a row that bring nothing new while SQS still counts visible messages (its counts
# lag; a FIFO group's next messages wait for the shown ones) before the peek gives up on them.
FRUITLESS_RECEIVES: Final = 3

Reason = Literal["limit", "time", "unanswered"]


class PeekableQueue(Protocol):
    """What a peek needs of a dead-letter queue (an `SqsDeadLetterQueue`)."""

    async def receive_dead_letters(
        self, max_messages: int, visibility_seconds: int
    ) -> Sequence[Message]: ...

    async def dead_letter_counts(self) -> Mapping[QueueState, int]: ...

    async def release_dead_letters(self, messages: Sequence[Message]) -> None: ...


@dataclass(frozen=True, slots=True)
class Peeked:
    """What a peek showed, what SQS still counts besides, and why the peek left those."""

    shown: int
    more: int = 0  # visible dead letters not shown (SQS's approximate count)
    in_flight: int = 0  # hidden by another reader (a redrive, another peek), not by this one
    reasons: tuple[Reason, ...] = ()  # why `more` were left; empty when none were
    seconds: float = 0.0  # how long the peek took

    def __add__(self, other: Peeked) -> Peeked:
        """Two queues' peeks as one."""
        return Peeked(
            self.shown + other.shown,
            self.more + other.more,
            self.in_flight + other.in_flight,
            tuple(dict.fromkeys(self.reasons + other.reasons)),
            self.seconds + other.seconds,
        )


def visibility_for(limit: int) -> int:
    """Seconds each shown message stays hidden: as long as a peek of `limit` may take."""
    wanted = math.ceil(limit * SECONDS_PER_MESSAGE) + MARGIN_SECONDS
    return min(MAX_VISIBILITY_SECONDS, max(MIN_VISIBILITY_SECONDS, wanted))


def describe(message: Message) -> dict[str, object]:
    """One dead-lettered message as printed by `peek`; reason null means SQS's redrive moved it."""
    described: dict[str, object] = {
        "message_id": message.message_id,
        "queue": message.queue,
        "source_queue": message.attributes.get("source_queue"),
        "reason": message.attributes.get("reason"),
        "detail": message.attributes.get("detail"),
        "original_message_id": message.attributes.get("original_message_id"),
        "first_received_at": message.attributes.get("first_received_at"),
        "body": message.body.decode("utf-8", "replace"),
    }
    if message.group_id is not None:
        described["group_id"] = message.group_id
    return described


async def peek(
    queue: PeekableQueue,
    limit: int,
    out: TextIO,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Peeked:
    """Print up to `limit` messages, each once, and leave every one of them in the queue.

    On a FIFO queue SQS hands out a group's next messages only once the earlier ones are gone,
    so a peek, which leaves them, shows at most the first ten of each message group.
    """
    visibility = visibility_for(limit)
    started = clock()
    deadline = started + visibility - MARGIN_SECONDS
    seen: dict[str, Message] = {}
    reason: Reason | None = None
    fruitless = 0
    try:
        while True:
            if len(seen) >= limit:
                reason = "limit"
                break
            if clock() >= deadline:
                reason = "time"
                break
            batch = await queue.receive_dead_letters(min(10, limit - len(seen)), visibility)
            fresh = [message for message in batch if message.message_id not in seen]
            for message in fresh:
                seen[message.message_id] = message
                out.write(json.dumps(describe(message)) + "\n")
            if fresh:
                fruitless = 0
                continue
            # Nothing new: the queue is read to its end, or SQS answered short.
            if (await queue.dead_letter_counts()).get("visible", 0) == 0:
                break
            fruitless += 1
            if fruitless == FRUITLESS_RECEIVES:
                reason = "unanswered"
                break
        # Counted before the release, while what this peek shows is still in flight.
        counts = await queue.dead_letter_counts()
    finally:
        await queue.release_dead_letters(list(seen.values()))
    more = counts.get("visible", 0) if reason is not None else 0
    return Peeked(
        shown=len(seen),
        more=more,
        in_flight=max(0, counts.get("in_flight", 0) - len(seen)),
        reasons=(reason,) if reason is not None and more else (),
        seconds=clock() - started,
    )


async def left_unread(queue: PeekableQueue) -> Peeked:
    """A queue the limit left unread: everything SQS counts in it is more to show."""
    counts = await queue.dead_letter_counts()
    more = counts.get("visible", 0)
    return Peeked(0, more, counts.get("in_flight", 0), ("limit",) if more else ())


def report(peeked: Peeked, where: str, limit: int) -> list[str]:
    """The lines that end a peek: how many were shown, and how many more there are and why."""
    lines = [f"{peeked.shown} message(s) in {where} shown"]
    if peeked.more:
        why = []
        for reason in peeked.reasons:
            if reason == "limit":
                why.append(f"--limit {limit} was reached (raise it to see more)")
            elif reason == "time":
                why.append(
                    f"the peek stopped after {peeked.seconds:.0f} s, before the messages it "
                    "had shown could reappear and be shown twice"
                )
            else:
                why.append(
                    f"SQS returned none of them in {FRUITLESS_RECEIVES} receives in a row (its "
                    "counts lag by up to a minute); peek again in a moment"
                )
        lines.append(
            f"about {peeked.more} more in {where} not shown: " + "; ".join(why or ["see above"])
        )
    if peeked.in_flight:
        lines.append(
            f"{peeked.in_flight} more in {where} are in flight, received by another reader (a "
            "redrive, another peek), and reappear when their visibility timeout ends"
        )
    return lines


__all__ = ["PeekableQueue", "Peeked", "describe", "left_unread", "peek", "report", "visibility_for"]
