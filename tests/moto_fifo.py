"""moto's SQS server with FIFO receives in the group order AWS documents; run as
`python -m tests.moto_fifo -H HOST -p PORT` (the arguments of `moto.server`).

AWS hands out a message of a FIFO group only while no earlier message of its group is in flight
("subsequent messages in that group are not made available until the in-flight message is either
deleted or the visibility timeout expires", SQS Developer Guide, FIFO delivery logic). moto 5.2.5
(`moto/sqs/models.py`, `SQSBackend.receive_message`) keeps a set of groups with a message in
flight, and breaks that rule in two ways that the fault suite met:

- when the visibility timeout of several messages of a group has passed, it takes them out of
  the set one at a time and skips each while another is still in it, so the *last* of them is
  handed out first, with the group's later messages, ahead of the earlier ones;
- a long poll computes the set once when it starts, so it hands out later messages of a group
  that another receive took in the meantime, while the earlier ones are in flight.

Either lets a processor forward a group's second malformed message before its first. Here a FIFO
receive walks the queue in order and skips every message behind one of its group that is in
flight or delayed, under the queue's lock so that two receives never take the same group at once;
everything else (standard queues, the redrive to the dead-letter queue, attributes) is moto's.
`tests/integration/sqs/test_moto_fifo.py` shows both differences and that plain moto still has
them: when it stops having them, this module can go.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from moto.core.utils import unix_time
from moto.server import main as moto_main
from moto.sqs import models

# Visibility timeouts pass without a notification: a waiting receive looks again this often.
_RECHECK_SECONDS = 0.1

_plain_receive = models.SQSBackend.receive_message


def _take(
    backend: Any, queue: Any, count: int, visibility: int, attribute_names: list[str]
) -> list[Any]:
    """Up to `count` messages of `queue` that AWS would hand out now, marked received."""
    blocked: set[str] = set()
    taken: list[Any] = []
    to_dead_letter: list[Any] = []
    for message in list(queue._messages):  # moto keeps them here, in send order
        group = message.group_id
        if group in blocked:
            continue
        if not message.visible or message.delayed:
            blocked.add(group)  # in flight or not yet due: its group waits for it
            continue
        queue.pending_messages.discard(message)
        policy = queue.redrive_policy
        if (
            queue.dead_letter_queue is not None
            and policy
            and message.approximate_receive_count >= policy["maxReceiveCount"]
        ):
            to_dead_letter.append(message)  # as moto does: moved, and the group goes on
            continue
        if not backend.is_message_valid_based_on_retention_period(queue.name, message):
            continue
        queue.pending_messages.add(message)
        message.mark_received(visibility_timeout=visibility)
        copy = deepcopy(message)
        models._filter_message_attributes(copy, attribute_names)
        taken.append(copy)
        if len(taken) >= count:
            break
    for message in to_dead_letter:
        queue._messages.remove(message)
        queue.dead_letter_queue.add_message(message)
    return taken


def receive_message(  # noqa: PLR0917 - moto's signature, called positionally
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    """moto's receive for a standard queue; AWS's group order for a FIFO queue."""
    queue = self.get_queue(queue_name)
    if not queue.fifo_queue:
        return _plain_receive(
            self,
            queue_name,
            count,
            wait_seconds_timeout,
            visibility_timeout,
            message_attribute_names,
        )
    deadline = unix_time() + wait_seconds_timeout
    lock = queue._messages_lock  # a send notifies under it
    with lock:
        while True:
            taken = _take(self, queue, count, visibility_timeout, message_attribute_names or [])
            left = deadline - unix_time()
            if taken or left <= 0:
                return taken
            lock.wait(timeout=min(left, _RECHECK_SECONDS))


def patch() -> None:
    """Make every SQS backend of this process receive FIFO messages in AWS's group order."""
    models.SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


if __name__ == "__main__":
    patch()
    moto_main()
