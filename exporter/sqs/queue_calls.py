"""The SQS calls on one queue, by its URL: receive, delete, visibility, dead letters, counts.

The processor's source (`exporter.sqs.source`) and `exporter dlq` (`dead_letter_queues.py`) both
call SQS through here. The wire client makes one attempt per call; each call path tries again in
exactly one layer (decision 0022), named here per call:

- ReceiveMessage: never here. The caller's loop is the layer: a processor's poller pauses with
  its backoff and receives again (`exporter.processing.loop`), `exporter dlq` tries a receive up
  to three times (`dead_letter_queues.py`). On a FIFO queue the caller gives the same
  `attempt_id` to each try, so an answer lost on the way returns the same messages on the next
  try instead of hiding them, and holding up their groups, until their visibility timeout.
- The *Batch calls (delete, change visibility, dead letters, redrive): `batch`, `BATCH_RETRY`:
  the whole call failing and entries failed through no fault of the request, alike.
- GetQueueAttributes (readiness, depths, a dead-letter queue's counts): `SINGLE_CALL_RETRY`
  here, as botocore's standard mode tried: nothing above it tries again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from exporter.retry import Retry
from exporter.sqs.batches import BATCH_ATTEMPTS, MAX_BATCH, send_chunks, sort_failures
from exporter.sqs.checksums import ChecksumMismatch
from exporter.sqs.dead_letters import dead_letter_attributes, dead_letter_size, fifo_fields
from exporter.sqs.errors import SqsFailure, SqsUnreachable, classify
from exporter.sqs.messages import DeadLetter, Message, QueueState, SourceUnavailable
from exporter.sqs.queues import ResolvedQueue
from exporter.sqs.received import read_messages
from exporter.sqs.wire import SqsClient

log = logging.getLogger(__name__)

Answer = dict[str, Any]
BatchRequest = Callable[[Sequence[Message]], tuple[str, Answer]]

# A *Batch call's one retry layer: whole-call failures and retryable entries share the attempts.
BATCH_RETRY: Final = Retry(BATCH_ATTEMPTS, base_seconds=0.05, cap_seconds=1.0)
# A single call nothing above tries again: three attempts, as botocore's standard retry mode.
SINGLE_CALL_RETRY: Final = Retry(3, base_seconds=0.05, cap_seconds=2.0)
# MessageGroupId: a FIFO message's group, which its dead letter keeps (absent on standard queues).
_SYSTEM_ATTRIBUTES: Final = [
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "MessageGroupId",
]
_DEPTH_ATTRIBUTES: Final[Mapping[str, QueueState]] = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


def new_attempt_id() -> str:
    """A ReceiveRequestAttemptId for a FIFO receive and every try of it."""
    return uuid.uuid4().hex


class QueueCalls:
    """One SQS client's calls on queues by URL; each failure is counted by `on_error` under its
    operation, then raised as SourceUnavailable (transient) or SourceMisconfigured."""

    def __init__(
        self, client: SqsClient, on_error: Callable[[str], None] = lambda _operation: None
    ) -> None:
        self.client = client
        self._on_error = on_error

    def count_error(self, operation: str) -> None:
        """Count a failure of `operation` that did not come through `call`."""
        self._on_error(operation)

    async def close(self) -> None:
        """Close the client's connections (a receive in progress ends with them)."""
        await self.client.close()

    async def call(self, operation: str, target: str, payload: Answer) -> Answer:
        """One attempt of `target` (an SQS action), a failure counted under `operation`."""
        try:
            return await self.client.call(target, payload)
        except SqsFailure as exc:
            self.count_error(operation)
            raise classify(exc, operation) from exc

    async def receive(
        self,
        url: str,
        name: str,
        max_messages: int,
        wait_seconds: int,
        visibility_seconds: int,
        *,
        fifo: bool = False,
        attempt_id: str | None = None,
    ) -> Sequence[Message]:
        """One receive of the queue at `url` (called `name`), checked against the MD5s; on a
        FIFO queue with `attempt_id` (a new one when None)."""
        payload: Answer = {
            "QueueUrl": url,
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_BATCH)),
            "WaitTimeSeconds": wait_seconds,
            "VisibilityTimeout": visibility_seconds,
            "MessageSystemAttributeNames": _SYSTEM_ATTRIBUTES,
            "MessageAttributeNames": ["All"],
        }
        if fifo:
            payload["ReceiveRequestAttemptId"] = attempt_id or new_attempt_id()
        response = await self.call("receive", "ReceiveMessage", payload)
        try:
            return read_messages(response.get("Messages") or [], name)
        except ChecksumMismatch as exc:
            # As botocore: the whole answer is suspect; its messages come back after the
            # visibility timeout, and this poll counts as a transient failure.
            self.count_error("receive")
            raise classify(SqsUnreachable(str(exc)), "receive") from exc

    async def delete(self, url: str, messages: Sequence[Message]) -> Sequence[Message]:
        """Delete `messages` from the queue at `url`; return those that could not be deleted."""

        def delete_chunk(chunk: Sequence[Message]) -> tuple[str, Answer]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ]
            return "DeleteMessageBatch", {"QueueUrl": url, "Entries": entries}

        failed: list[Message] = []
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start : start + MAX_BATCH]
            failed.extend(await self.batch("delete", chunk, delete_chunk))
        return failed

    async def change_visibility(self, url: str, messages: Sequence[Message], seconds: int) -> None:
        """Hide `messages` of the queue at `url` for `seconds` (0: visible at once); a failed
        entry only means the message reappears early."""

        def change(chunk: Sequence[Message]) -> tuple[str, Answer]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, m in enumerate(chunk)
            ]
            return "ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": entries}

        for start in range(0, len(messages), MAX_BATCH):
            await self.batch("change_visibility", messages[start : start + MAX_BATCH], change)

    async def dead_letter(
        self, queue: ResolvedQueue, letters: Sequence[DeadLetter]
    ) -> Sequence[Message]:
        """SendMessageBatch of `letters` to `queue`'s dead-letter queue; return the messages
        it could not take."""
        failed: list[Message] = []
        for chunk in send_chunks(letters, dead_letter_size):
            by_message = {id(letter.message): letter for letter in chunk}

            def send(
                messages: Sequence[Message], letters: Mapping[int, DeadLetter] = by_message
            ) -> tuple[str, Answer]:
                return _send_letters(queue, [letters[id(m)] for m in messages])

            failed.extend(await self.batch("dead_letter", [c.message for c in chunk], send))
        return failed

    async def batch(
        self, operation: str, chunk: Sequence[Message], request: BatchRequest
    ) -> list[Message]:
        """Run a *Batch call; return the messages it could not handle.

        The one retry layer of every *Batch call (BATCH_RETRY): a whole call that fails is
        tried again, and so are the entries that failed through no fault of the request
        (not `SenderFault`), together, up to BATCH_ATTEMPTS calls in all.
        """
        pending = list(chunk)
        async for attempt in BATCH_RETRY.tries():
            try:
                failures = (await self.call(operation, *request(pending))).get("Failed") or []
            except SourceUnavailable:
                if attempt.last:
                    raise
                continue
            sorted_failures = sort_failures(failures)
            retry = [pending[int(i)] for i in sorted_failures.retry]
            given_up = [pending[int(i)] for i in sorted_failures.refused]
            for failure in failures:
                log.warning(
                    "SQS %s entry failed",
                    operation,
                    extra={"code": failure.get("Code"), "sender_fault": failure.get("SenderFault")},
                )
            if failures:
                self.count_error(operation)
            if not retry:
                return given_up
            if attempt.last:
                return given_up + retry
            pending = retry
        return pending  # pragma: no cover - the last attempt returns or raises

    async def counts(self, url: str) -> Mapping[QueueState, int]:
        """The approximate visible, in-flight and delayed counts of the queue at `url` (SQS
        updates them within seconds, not at once); tried again here (SINGLE_CALL_RETRY)."""

        def attributes() -> Awaitable[Answer]:
            return self.call(
                "queue_attributes",
                "GetQueueAttributes",
                {"QueueUrl": url, "AttributeNames": list(_DEPTH_ATTRIBUTES)},
            )

        response = await SINGLE_CALL_RETRY.call(attributes, on=SourceUnavailable)
        found = response.get("Attributes") or {}
        return {state: int(found.get(name) or 0) for name, state in _DEPTH_ATTRIBUTES.items()}

    async def ping(self, url: str) -> None:
        """GetQueueAttributes of the queue at `url`; tried again here (SINGLE_CALL_RETRY)."""

        def attributes() -> Awaitable[Answer]:
            return self.call(
                "ping", "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]}
            )

        await SINGLE_CALL_RETRY.call(attributes, on=SourceUnavailable)


def _send_letters(queue: ResolvedQueue, letters: Sequence[DeadLetter]) -> tuple[str, Answer]:
    entries = []
    for i, letter in enumerate(letters):
        entry: dict[str, Any] = {
            "Id": str(i),
            "MessageBody": letter.message.body.decode("utf-8", "replace") or " ",
            "MessageAttributes": dead_letter_attributes(letter),
        }
        if queue.fifo:
            entry |= fifo_fields(letter.message)
        entries.append(entry)
    return "SendMessageBatch", {"QueueUrl": queue.dlq_url, "Entries": entries}


__all__ = ["BATCH_RETRY", "SINGLE_CALL_RETRY", "QueueCalls", "new_attempt_id"]
