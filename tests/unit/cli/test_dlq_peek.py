"""`exporter dlq peek`'s loop against SQS's ways: short and empty answers while messages remain,
messages that come back, messages never handed out, a peek that runs out of time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.cli.dlq_peek import (
    FRUITLESS_RECEIVES,
    MARGIN_SECONDS,
    Peeked,
    left_unread,
    peek,
    report,
    visibility_for,
)
from exporter.sqs.messages import Message, QueueState


@dataclass
class SamplingQueue:
    """Dead letters in memory, handed out as SQS might: `sizes` says how many each receive
    returns at most (0: an empty answer); `stuck` are counted visible but never handed out (a
    FIFO group behind shown messages); `again` are returned a second time (a lapsed timeout)."""

    visible: list[Message]
    sizes: Iterator[int]
    stuck: int = 0
    again: list[Message] = field(default_factory=list)
    in_flight: list[Message] = field(default_factory=list)
    others_in_flight: int = 0
    released: list[Message] = field(default_factory=list)
    visibilities: list[int] = field(default_factory=list)

    async def receive_dead_letters(
        self, max_messages: int, visibility_seconds: int
    ) -> Sequence[Message]:
        self.visibilities.append(visibility_seconds)
        size = min(max_messages, next(self.sizes, 10))
        batch, self.visible = self.visible[:size], self.visible[size:]
        if self.again and len(batch) < size:
            batch.append(self.again.pop())
        self.in_flight += batch
        return batch

    async def dead_letter_counts(self) -> Mapping[QueueState, int]:
        return {
            "visible": len(self.visible) + self.stuck,
            "in_flight": len(self.in_flight) + self.others_in_flight,
            "delayed": 0,
        }

    async def release_dead_letters(self, messages: Sequence[Message]) -> None:
        self.released += messages


def letters(count: int) -> list[Message]:
    return [Message(f"m{n}", f"r{n}", f"bad {n}".encode()) for n in range(count)]


def shown_ids(out: io.StringIO) -> list[str]:
    return [json.loads(line)["message_id"] for line in out.getvalue().splitlines()]


async def test_short_and_empty_answers_do_not_end_the_peek_while_messages_remain() -> None:
    """SQS returning 1, 0, 3, 0, 0 ... messages per receive while 25 remain: all 25 are shown,
    each once, and the peek ends with nothing said to be left."""
    queue = SamplingQueue(letters(25), iter([1, 0, 3, 0, 0, 2, 0, 1] * 10))
    out = io.StringIO()
    peeked = await peek(queue, 100, out)
    assert sorted(shown_ids(out)) == sorted(f"m{n}" for n in range(25))
    assert peeked == Peeked(25, seconds=peeked.seconds)
    assert len(queue.released) == 25


async def test_a_message_returned_twice_is_shown_once() -> None:
    """A message whose hiding lapsed comes back: it is neither printed nor counted again."""
    messages = letters(12)
    queue = SamplingQueue(messages, iter([5, 5, 5, 5]), again=[messages[0], messages[3]])
    out = io.StringIO()
    peeked = await peek(queue, 100, out)
    assert sorted(shown_ids(out)) == sorted(f"m{n}" for n in range(12))
    assert peeked.shown == 12


async def test_a_limit_below_the_count_says_how_many_more_and_why() -> None:
    """--limit 30 of 77: 30 shown, about 47 more, the limit named as the reason."""
    queue = SamplingQueue(letters(77), iter([]))
    out = io.StringIO()
    peeked = await peek(queue, 30, out)
    assert len(shown_ids(out)) == 30
    assert (peeked.shown, peeked.more, peeked.reasons) == (30, 47, ("limit",))
    assert report(peeked, "the dead-letter queue", 30) == [
        "30 message(s) in the dead-letter queue shown",
        "about 47 more in the dead-letter queue not shown: --limit 30 was reached (raise it to "
        "see more)",
    ]


async def test_messages_sqs_counts_but_never_hands_out_are_said_to_be_left() -> None:
    """Six counted visible but never returned (a FIFO group waits behind the shown ones): after
    a few receives with nothing new the peek stops and says so, instead of looping or keeping
    quiet; another reader's in-flight messages are named too."""
    queue = SamplingQueue(letters(4), iter([]), stuck=6, others_in_flight=2)
    out = io.StringIO()
    peeked = await peek(queue, 100, out)
    assert (peeked.shown, peeked.more, peeked.in_flight) == (4, 6, 2)
    assert peeked.reasons == ("unanswered",)
    lines = report(peeked, "the dead-letter queue", 100)
    assert lines[1].startswith("about 6 more in the dead-letter queue not shown: SQS returned")
    assert f"{FRUITLESS_RECEIVES} receives in a row" in lines[1]
    assert lines[2].startswith("2 more in the dead-letter queue are in flight")


async def test_the_peek_stops_before_its_first_messages_could_reappear() -> None:
    """Each receive hides its messages for as long as the whole peek may take; a peek slower
    than that stops before they reappear and says how many it left."""
    now = [0.0]

    def clock() -> float:
        now[0] += 7.0  # a slow link: every look at the clock is 7 s later
        return now[0]

    queue = SamplingQueue(letters(40), iter([1] * 40))
    peeked = await peek(queue, 40, io.StringIO(), clock=clock)
    visibility = visibility_for(40)
    assert set(queue.visibilities) == {visibility}
    assert peeked.reasons == ("time",)
    assert peeked.shown + peeked.more == 40
    assert peeked.shown * 7.0 < visibility - MARGIN_SECONDS + 7.0
    assert "before the messages it had shown could reappear" in report(peeked, "q", 40)[1]


async def test_queues_the_limit_left_unread_are_counted_as_more() -> None:
    """With several dead-letter queues, those after the limit was reached add to what is left."""
    first = await peek(SamplingQueue(letters(3), iter([])), 3, io.StringIO())
    unread = await left_unread(SamplingQueue(letters(5), iter([])))
    both = first + unread
    assert (both.shown, both.more, both.reasons) == (3, 5, ("limit",))
