"""A small in-memory `Source` for unit tests of the batch logic (real stores, fake queue)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from exporter.sqs.messages import DeadLetter, Message, QueueDepth, SourceUnavailable


@dataclass
class RecordingSource:
    """Records what the processor asked for; can be told to fail dead-lettering or deleting."""

    deleted: list[Message] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    visibility: list[tuple[str, int]] = field(default_factory=list)
    fail_dead_letter: bool = False
    fail_delete: bool = False
    to_receive: list[Message] = field(default_factory=list)

    async def receive(self, max_messages: int) -> Sequence[Message]:
        batch, self.to_receive = self.to_receive[:max_messages], self.to_receive[max_messages:]
        return batch

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        if self.fail_delete:
            raise SourceUnavailable("delete refused by the test")
        self.deleted.extend(messages)
        return []

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        if self.fail_dead_letter:
            raise SourceUnavailable("dead-letter queue refused by the test")
        self.dead_letters.extend(letters)
        return [letter.message for letter in letters]

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        self.visibility.extend((m.message_id, seconds) for m in messages)

    async def ping(self) -> None:
        return None

    async def depths(self) -> Sequence[QueueDepth]:
        return [QueueDepth("main", "events", {"visible": len(self.to_receive)})]

    def dead_letter_queue(self, queue: str) -> str:
        return f"{queue or 'events'}-dlq"


def message(body: bytes | str, message_id: str = "m-1", **attributes: str) -> Message:
    """A received message with `body`."""
    raw = body.encode() if isinstance(body, str) else body
    return Message(
        message_id=message_id, receipt_handle=f"rh-{message_id}", body=raw, attributes=attributes
    )


# Bodies of every shape: raw bytes, text, and JSON objects near (and far from) an event.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(["t", "u", "page_view"]), json_values),
        "value": st.one_of(st.integers(), st.floats(), st.decimals().map(str), json_values),
        "occurred_at": st.one_of(
            st.sampled_from(["2020-10-06 10:02:05", "2020-10-06T10:02:05Z", "10/06/2020 10:02"]),
            json_values,
        ),
        "id": st.one_of(st.text(max_size=5), json_values),
    },
).map(lambda d: json.dumps(d, allow_nan=True).encode())
bodies = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode), event_like)
