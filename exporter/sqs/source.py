"""The SQS source: long-polled receive, batched delete, dead-letter, visibility, queue depth.

boto3 is synchronous, so every call runs in an executor of this source's own, sized for the
pollers: 20-second long polls would otherwise starve asyncio's small default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from exporter.retry import Backoff
from exporter.sqs.batches import BATCH_ATTEMPTS, MAX_BATCH, send_chunks, sort_failures
from exporter.sqs.client import SqsConfig, client_for, resolve_queues
from exporter.sqs.dead_letters import (
    dead_letter_attributes,
    dead_letter_size,
    message_size,
    redrive_attributes,
)
from exporter.sqs.errors import classify
from exporter.sqs.messages import (
    DeadLetter,
    Message,
    QueueRole,
    QueueState,
    SourceMisconfigured,
    SourceUnavailable,
)

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.literals import MessageSystemAttributeNameType, QueueAttributeNameType
    from types_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

T = TypeVar("T")
log = logging.getLogger(__name__)

_SYSTEM_ATTRIBUTES: Final[list[MessageSystemAttributeNameType]] = [
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
]
_DEPTH_ATTRIBUTES: Final[Mapping[QueueAttributeNameType, QueueState]] = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


def _first_received(raw: MessageTypeDef) -> datetime | None:
    stamp = raw.get("Attributes", {}).get("ApproximateFirstReceiveTimestamp")
    if stamp is None or not stamp.isdigit():
        return None
    return datetime.fromtimestamp(int(stamp) / 1000, UTC)


def to_message(raw: MessageTypeDef) -> Message:
    """Our view of one received SQS message (string attributes only)."""
    attributes = {
        name: value["StringValue"]
        for name, value in raw.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    count = raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")
    return Message(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        # SQS bodies are text; surrogatepass keeps any oddity for the parser to reject cleanly.
        body=raw.get("Body", "").encode("utf-8", "surrogatepass"),
        receive_count=int(count) if count.isdigit() else 1,
        first_received_at=_first_received(raw),
        attributes=attributes,
    )


async def _stopped_within(stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set meanwhile; whether it was set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


class SqsSource:
    """The main queue and its dead-letter queue, resolved (and created if allowed) by `open`."""

    def __init__(
        self,
        client: SQSClient,
        executor: ThreadPoolExecutor,
        config: SqsConfig,
        *,
        queue_url: str,
        dlq_url: str,
        on_error: Callable[[str], None] = lambda _operation: None,
    ) -> None:
        self._client = client
        self._executor = executor
        self._config = config
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self._on_error = on_error

    @classmethod
    async def open(
        cls,
        config: SqsConfig,
        *,
        on_error: Callable[[str], None] = lambda _operation: None,
        stop: asyncio.Event | None = None,
    ) -> SqsSource:
        """Connect, find (or create) both queues; retry transient errors until `stop` is set."""
        # Each poller holds one connection for its long poll; visibility changes, deletes and
        # depth polls need a few more at the same time.
        pool = 2 * config.pollers + 4
        client = client_for(config, pool)
        executor = ThreadPoolExecutor(max_workers=pool, thread_name_prefix="sqs")
        loop = asyncio.get_running_loop()
        backoff = Backoff(base_seconds=0.2, cap_seconds=10.0)
        while True:
            try:
                queue_url, dlq_url = await loop.run_in_executor(
                    executor, resolve_queues, client, config
                )
                break
            except SourceUnavailable as exc:
                on_error("resolve_queue")
                if stop is not None and stop.is_set():
                    executor.shutdown(wait=False)
                    raise
                log.warning("SQS not reachable yet, retrying", extra={"error": str(exc)})
                # Waiting on `stop`, not sleeping: the backoff reaches 10 s, and SIGTERM during an
                # outage at start must end the process now, not after one more failed attempt.
                if await _stopped_within(stop, backoff.next_delay()):
                    executor.shutdown(wait=False)
                    raise
            except SourceMisconfigured:
                executor.shutdown(wait=False)
                raise
        log.info("queues ready", extra={"queue_url": queue_url, "dlq_url": dlq_url})
        return cls(
            client, executor, config, queue_url=queue_url, dlq_url=dlq_url, on_error=on_error
        )

    async def close(self) -> None:
        """Stop the executor without waiting for a long poll in progress to return."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _call(self, operation: str, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, call)
        except (BotoCoreError, ClientError) as exc:
            self._on_error(operation)
            raise classify(exc, operation) from exc

    async def receive(self, max_messages: int) -> Sequence[Message]:
        """One long poll of the main queue for up to `max_messages` (at most 10)."""
        return await self._receive(
            self.queue_url,
            max_messages,
            self._config.wait_time_seconds,
            self._config.visibility_timeout_seconds,
        )

    async def _receive(
        self, url: str, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> Sequence[Message]:
        response = await self._call(
            "receive",
            lambda: self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max(1, min(max_messages, MAX_BATCH)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_seconds,
                MessageSystemAttributeNames=_SYSTEM_ATTRIBUTES,
                MessageAttributeNames=["All"],
            ),
        )
        return [to_message(raw) for raw in response.get("Messages", [])]

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        """DeleteMessageBatch in chunks of 10, retrying entries that failed on the server side."""
        return await self._delete_from(self.queue_url, messages)

    async def _delete_from(self, url: str, messages: Sequence[Message]) -> Sequence[Message]:
        def delete_chunk(chunk: Sequence[Message]) -> Sequence[Mapping[str, Any]]:
            response = self._client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
                ],
            )
            return response.get("Failed", [])

        failed: list[Message] = []
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start : start + MAX_BATCH]
            failed.extend(await self._batch("delete", chunk, delete_chunk))
        return failed

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        """SendMessageBatch to the dead-letter queue; return the messages it accepted."""
        failed: list[Message] = []
        for chunk in send_chunks(letters, dead_letter_size):
            by_message = {id(letter.message): letter for letter in chunk}

            def send(
                messages: Sequence[Message], letters: Mapping[int, DeadLetter] = by_message
            ) -> Sequence[Mapping[str, Any]]:
                return self._send_chunk([letters[id(m)] for m in messages])

            failed.extend(await self._batch("dead_letter", [c.message for c in chunk], send))
        failed_ids = {id(m) for m in failed}
        return [letter.message for letter in letters if id(letter.message) not in failed_ids]

    def _send_chunk(self, letters: Sequence[DeadLetter]) -> Sequence[Mapping[str, Any]]:
        response = self._client.send_message_batch(
            QueueUrl=self.dlq_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": letter.message.body.decode("utf-8", "replace") or " ",
                    "MessageAttributes": dead_letter_attributes(letter),
                }
                for i, letter in enumerate(letters)
            ],
        )
        return response.get("Failed", [])

    async def _batch(
        self,
        operation: str,
        chunk: Sequence[Message],
        call: Callable[[Sequence[Message]], Sequence[Mapping[str, Any]]],
    ) -> list[Message]:
        """Run a *Batch call, retrying entries that failed through no fault of the request."""
        pending = list(chunk)
        backoff = Backoff(base_seconds=0.05, cap_seconds=1.0)
        for attempt in range(BATCH_ATTEMPTS):
            try:
                failures = await self._call(operation, lambda p=pending: call(p))  # type: ignore[misc]
            except SourceUnavailable:
                if attempt == BATCH_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(backoff.next_delay())
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
                self._on_error(operation)
            if not retry:
                return given_up
            if attempt == BATCH_ATTEMPTS - 1:
                return given_up + retry
            pending = retry
            await asyncio.sleep(backoff.next_delay())
        return pending  # pragma: no cover - the loop always returns

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        """ChangeMessageVisibilityBatch; a failed entry only means the message reappears early."""
        await self._change_visibility_in(self.queue_url, messages, seconds)

    async def _change_visibility_in(
        self, url: str, messages: Sequence[Message], seconds: int
    ) -> None:
        def change(chunk: Sequence[Message]) -> Sequence[Mapping[str, Any]]:
            response = self._client.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )
            return response.get("Failed", [])

        for start in range(0, len(messages), MAX_BATCH):
            await self._batch("change_visibility", messages[start : start + MAX_BATCH], change)

    # -- the dead-letter queue, for `exporter dlq` ---------------------------------------------

    async def receive_dead_letters(
        self, max_messages: int, visibility_seconds: int
    ) -> Sequence[Message]:
        """Up to 10 dead-lettered messages, hidden for `visibility_seconds` (short poll)."""
        return await self._receive(self.dlq_url, max_messages, 1, visibility_seconds)

    async def release_dead_letters(self, messages: Sequence[Message]) -> None:
        """Make dead-lettered messages visible again at once (after a peek)."""
        await self._change_visibility_in(self.dlq_url, messages, 0)

    async def delete_dead_letters(self, messages: Sequence[Message]) -> Sequence[Message]:
        """Delete from the dead-letter queue; return the messages that could not be deleted."""
        return await self._delete_from(self.dlq_url, messages)

    async def requeue(self, messages: Sequence[Message]) -> Sequence[Message]:
        """Send dead-lettered messages back to the main queue; return those it accepted."""

        def send(chunk: Sequence[Message]) -> Sequence[Mapping[str, Any]]:
            entries: list[SendMessageBatchRequestEntryTypeDef] = []
            for i, message in enumerate(chunk):
                entry: SendMessageBatchRequestEntryTypeDef = {
                    "Id": str(i),
                    "MessageBody": message.body.decode("utf-8", "replace") or " ",
                }
                entry["MessageAttributes"] = redrive_attributes(message)
                entries.append(entry)
            response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            return response.get("Failed", [])

        failed: list[Message] = []
        for chunk in send_chunks(messages, message_size):
            failed.extend(await self._batch("requeue", chunk, send))
        failed_ids = {id(m) for m in failed}
        return [m for m in messages if id(m) not in failed_ids]

    async def ping(self) -> None:
        """GetQueueAttributes of the main queue."""
        await self._call(
            "ping",
            lambda: self._client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            ),
        )

    async def depths(self) -> Mapping[QueueRole, Mapping[QueueState, int]]:
        """Approximate visible, in-flight and delayed counts of both queues."""
        result: dict[QueueRole, Mapping[QueueState, int]] = {}
        roles: tuple[tuple[QueueRole, str], ...] = (
            ("main", self.queue_url),
            ("dead_letter", self.dlq_url),
        )
        for role, url in roles:
            response = await self._call(
                "queue_attributes",
                lambda u=url: self._client.get_queue_attributes(  # type: ignore[misc]
                    QueueUrl=u, AttributeNames=list(_DEPTH_ATTRIBUTES)
                ),
            )
            attributes = response.get("Attributes", {})
            result[role] = {
                state: int(attributes.get(name) or 0) for name, state in _DEPTH_ATTRIBUTES.items()
            }
        return result


__all__ = ["SqsSource", "to_message"]
