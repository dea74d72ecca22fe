"""FIFO order at acknowledgement: within a message group, nothing is deleted past a message that
is not settled yet.

A FIFO queue hands out a group's messages in order and no more of the group while any is in
flight. If the processor deleted a group's later messages while an earlier one stayed (its
dead-letter send failed), the group would move past it. So every message from the first unsettled
one of its group on stays in flight with it: they all come back after the visibility timeout, in
order, the unsettled one first; those already applied are then duplicates, deleted at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.sqs.messages import Message


@dataclass(frozen=True, slots=True)
class GroupOrder:
    """The settled messages of a batch that may be deleted, and those held behind an earlier
    unsettled message of their group."""

    deletable: list[Message]
    held: list[Message]


def in_group_order(received: Sequence[Message], settled: Sequence[Message]) -> GroupOrder:
    """Split `settled` by the order of `received`: a message is deletable unless an earlier
    message of its group is not settled. Messages without a group are always deletable."""
    settled_handles = {message.receipt_handle for message in settled}
    blocked: set[str] = set()
    deletable: list[Message] = []
    held: list[Message] = []
    for message in received:
        group = message.group_id
        if message.receipt_handle in settled_handles:
            (held if group is not None and group in blocked else deletable).append(message)
        elif group is not None:
            blocked.add(group)
    return GroupOrder(deletable, held)


__all__ = ["GroupOrder", "in_group_order"]
