"""The SQS source: long-polled receive, batched delete, dead-letter, visibility, queue depth.

Every call goes through the SQS wire client (`exporter.sqs.wire`): asynchronous, so a long poll
holds a connection but no thread, and lean, since this is the processor's hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from exporter.retry import Backoff
from exporter.sqs.batches import BATCH_ATTEMPTS, MAX_BATCH, send_chunks, sort_failures
from exporter.sqs.checksums import ChecksumMismatch, check_message
from exporter.sqs.config import SqsConfig
from exporter.sqs.credentials import find_credentials
from exporter.sqs.dead_letters import (
    dead_letter_attributes,
    dead_letter_size,
    message_size,
    redrive_attributes,
)
from exporter.sqs.errors import SqsFailure, SqsUnreachable, classify
from exporter.sqs.messages import (
    DeadLetter,
    Message,
    QueueRole,
    QueueState,
    SourceMisconfigured,
    SourceUnavailable,
)
from exporter.sqs.queues import resolve_queues
from exporter.sqs.wire import SqsClient

log = logging.getLogger(__name__)

Answer = dict[str, Any]
_SYSTEM_ATTRIBUTES: Final = ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"]
_DEPTH_ATTRIBUTES: Final[Mapping[str, QueueState]] = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


@functools.lru_cache(maxsize=64)
def _moment(stamp: str) -> datetime:
    # The messages of one receive mostly share their first-receive millisecond.
    return datetime.fromtimestamp(int(stamp) / 1000, UTC)


def to_message(raw: Mapping[str, Any]) -> Message:
    """Our view of one received SQS message (string attributes only)."""
    system = raw.get("Attributes") or {}
    custom = raw.get("MessageAttributes")
    attributes = (
        {name: value["StringValue"] for name, value in custom.items() if "StringValue" in value}
        if custom
        else {}
    )
    count = system.get("ApproximateReceiveCount", "1")
    stamp = system.get("ApproximateFirstReceiveTimestamp")
    return Message(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        # SQS bodies are text; surrogatepass keeps any oddity for the parser to reject cleanly.
        body=raw.get("Body", "").encode("utf-8", "surrogatepass"),
        receive_count=int(count) if count.isdigit() else 1,
        first_received_at=_moment(stamp) if stamp is not None and stamp.isdigit() else None,
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
        client: SqsClient,
        config: SqsConfig,
        *,
        queue_url: str,
        dlq_url: str,
        on_error: Callable[[str], None] = lambda _operation: None,
    ) -> None:
        self._client = client
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
        environ: Mapping[str, str] | None = None,
    ) -> SqsSource:
        """Connect, find (or create) both queues; retry transient errors until `stop` is set.

        Credentials come from `environ` when it holds static keys, else from botocore's chain.
        """
        try:
            credentials = await find_credentials(environ or {})
        except SqsFailure as exc:
            raise classify(exc, "credentials") from exc
        environ = environ or {}
        client = SqsClient.connect(
            region=config.region,
            # As botocore: the SQS-only variable applies when no endpoint is configured.
            endpoint_url=config.endpoint_url or environ.get("AWS_ENDPOINT_URL_SQS"),
            credentials=credentials,
            environ=environ,
            # Each poller holds one connection for its long poll; visibility changes, deletes
            # and depth polls need a few more at the same time.
            pool=2 * config.pollers + 4,
            # A long poll legitimately takes wait_time_seconds; only silence beyond is a fault.
            read_timeout=config.wait_time_seconds + 10,
        )
        backoff = Backoff(base_seconds=0.2, cap_seconds=10.0)
        while True:
            try:
                queue_url, dlq_url = await resolve_queues(client, config)
                break
            except SourceUnavailable as exc:
                on_error("resolve_queue")
                if stop is not None and stop.is_set():
                    await client.close()
                    raise
                log.warning("SQS not reachable yet, retrying", extra={"error": str(exc)})
                # Waiting on `stop`, not sleeping: the backoff reaches 10 s, and SIGTERM during an
                # outage at start must end the process now, not after one more failed attempt.
                if await _stopped_within(stop, backoff.next_delay()):
                    await client.close()
                    raise
            except SourceMisconfigured:
                await client.close()
                raise
        log.info("queues ready", extra={"queue_url": queue_url, "dlq_url": dlq_url})
        return cls(client, config, queue_url=queue_url, dlq_url=dlq_url, on_error=on_error)

    async def close(self) -> None:
        """Close the connections (a long poll in progress ends with them)."""
        await self._client.close()

    async def _call(self, operation: str, target: str, payload: dict[str, Any]) -> Answer:
        try:
            return await self._client.call(target, payload)
        except SqsFailure as exc:
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
            "ReceiveMessage",
            {
                "QueueUrl": url,
                "MaxNumberOfMessages": max(1, min(max_messages, MAX_BATCH)),
                "WaitTimeSeconds": wait_seconds,
                "VisibilityTimeout": visibility_seconds,
                "MessageSystemAttributeNames": _SYSTEM_ATTRIBUTES,
                "MessageAttributeNames": ["All"],
            },
        )
        raws = response.get("Messages") or []
        try:
            for raw in raws:
                check_message(raw)
        except ChecksumMismatch as exc:
            # As botocore: the whole answer is suspect; its messages come back after the
            # visibility timeout, and this poll counts as a transient failure.
            self._on_error("receive")
            raise classify(SqsUnreachable(str(exc)), "receive") from exc
        return [to_message(raw) for raw in raws]

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        """DeleteMessageBatch in chunks of 10, retrying entries that failed on the server side."""
        return await self._delete_from(self.queue_url, messages)

    async def _delete_from(self, url: str, messages: Sequence[Message]) -> Sequence[Message]:
        def delete_chunk(chunk: Sequence[Message]) -> tuple[str, Answer]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ]
            return "DeleteMessageBatch", {"QueueUrl": url, "Entries": entries}

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
            ) -> tuple[str, Answer]:
                return self._send_chunk([letters[id(m)] for m in messages])

            failed.extend(await self._batch("dead_letter", [c.message for c in chunk], send))
        failed_ids = {id(m) for m in failed}
        return [letter.message for letter in letters if id(letter.message) not in failed_ids]

    def _send_chunk(self, letters: Sequence[DeadLetter]) -> tuple[str, Answer]:
        entries = [
            {
                "Id": str(i),
                "MessageBody": letter.message.body.decode("utf-8", "replace") or " ",
                "MessageAttributes": dead_letter_attributes(letter),
            }
            for i, letter in enumerate(letters)
        ]
        return "SendMessageBatch", {"QueueUrl": self.dlq_url, "Entries": entries}

    async def _batch(
        self,
        operation: str,
        chunk: Sequence[Message],
        request: Callable[[Sequence[Message]], tuple[str, Answer]],
    ) -> list[Message]:
        """Run a *Batch call, retrying entries that failed through no fault of the request."""
        pending = list(chunk)
        backoff = Backoff(base_seconds=0.05, cap_seconds=1.0)
        for attempt in range(BATCH_ATTEMPTS):
            try:
                failures = (await self._call(operation, *request(pending))).get("Failed") or []
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
        def change(chunk: Sequence[Message]) -> tuple[str, Answer]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, m in enumerate(chunk)
            ]
            return "ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": entries}

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

        def send(chunk: Sequence[Message]) -> tuple[str, Answer]:
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": message.body.decode("utf-8", "replace") or " ",
                    "MessageAttributes": redrive_attributes(message),
                }
                for i, message in enumerate(chunk)
            ]
            return "SendMessageBatch", {"QueueUrl": self.queue_url, "Entries": entries}

        failed: list[Message] = []
        for chunk in send_chunks(messages, message_size):
            failed.extend(await self._batch("requeue", chunk, send))
        failed_ids = {id(m) for m in failed}
        return [m for m in messages if id(m) not in failed_ids]

    async def ping(self) -> None:
        """GetQueueAttributes of the main queue."""
        await self._call(
            "ping",
            "GetQueueAttributes",
            {"QueueUrl": self.queue_url, "AttributeNames": ["QueueArn"]},
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
                "GetQueueAttributes",
                {"QueueUrl": url, "AttributeNames": list(_DEPTH_ATTRIBUTES)},
            )
            attributes = response.get("Attributes") or {}
            result[role] = {
                state: int(attributes.get(name) or 0) for name, state in _DEPTH_ATTRIBUTES.items()
            }
        return result


__all__ = ["SqsSource", "to_message"]
