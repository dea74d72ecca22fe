"""The SQS source: long-polled receive, batched delete, dead-letter, visibility, queue depth, for
every queue a processor reads.

Every call goes through the SQS wire client (`exporter.sqs.wire`): asynchronous, so a long poll
holds a connection but no thread, and lean, since this is the processor's hot path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from exporter.retry import Backoff
from exporter.sqs.batches import BATCH_ATTEMPTS, MAX_BATCH, send_chunks, sort_failures
from exporter.sqs.checksums import ChecksumMismatch
from exporter.sqs.config import SqsConfig
from exporter.sqs.credentials import find_credentials
from exporter.sqs.dead_letters import dead_letter_attributes, dead_letter_size, fifo_fields
from exporter.sqs.errors import SqsFailure, SqsUnreachable, classify
from exporter.sqs.messages import (
    DeadLetter,
    Message,
    QueueDepth,
    QueueRole,
    QueueState,
    SourceUnavailable,
)
from exporter.sqs.queues import ResolvedQueue, resolve_queues
from exporter.sqs.received import read_messages, to_message
from exporter.sqs.wire import SqsClient

log = logging.getLogger(__name__)

Answer = dict[str, Any]
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


def _by_queue(messages: Sequence[Message]) -> dict[str, list[Message]]:
    """Messages grouped by the queue they came from, in order."""
    groups: dict[str, list[Message]] = {}
    for message in messages:
        groups.setdefault(message.queue, []).append(message)
    return groups


class SourceOpening:
    """A connected client whose queues are still to be found: `find` once per try (the start-up
    deadline decides how often), then `source()`, or `close()` when it is given up."""

    def __init__(
        self, client: SqsClient, config: SqsConfig, on_error: Callable[[str], None]
    ) -> None:
        self.client = client
        self.config = config
        self._on_error = on_error
        self._queues: tuple[ResolvedQueue, ...] = ()

    @property
    def endpoint(self) -> str:
        """The URL the client sends to."""
        return self.client.endpoint

    async def find(self) -> None:
        """Find (or create, when allowed) every queue: SourceUnavailable to try again later,
        SourceMisconfigured for what no retry can fix."""
        try:
            self._queues = await resolve_queues(self.client, self.config)
        except SourceUnavailable:
            self._on_error("resolve_queue")
            raise
        for queue in self._queues:
            log.info(
                "queues ready",
                extra={"queue_url": queue.url, "dlq_url": queue.dlq_url, "fifo": queue.fifo},
            )

    def source(self) -> SqsSource:
        """The source on the queues found; only after `find` succeeded."""
        if not self._queues:
            raise RuntimeError("the queues are not found yet")
        return SqsSource(self.client, self.config, queues=self._queues, on_error=self._on_error)

    async def close(self) -> None:
        """Close the client's connections (when the queues are never found)."""
        await self.client.close()


class SqsSource:
    """The queues a processor reads and their dead-letter queues, found (and created if allowed)
    by `open`. Each receive reads the queue with the fewest receives in progress, so that every
    queue keeps its share of the pollers whatever the others hold."""

    def __init__(
        self,
        client: SqsClient,
        config: SqsConfig,
        *,
        queues: Sequence[ResolvedQueue] = (),
        queue_url: str | None = None,
        dlq_url: str | None = None,
        on_error: Callable[[str], None] = lambda _operation: None,
    ) -> None:
        if not queues:
            # One queue given by its URLs (tests, stand-ins): named after the URLs' last part.
            if queue_url is None or dlq_url is None:
                raise ValueError("give the resolved queues, or both URLs of one queue")
            queues = (
                ResolvedQueue(
                    queue_url.rstrip("/").rpartition("/")[2],
                    queue_url,
                    config.dlq_name or dlq_url.rstrip("/").rpartition("/")[2],
                    dlq_url,
                ),
            )
        self._client = client
        self._config = config
        self.queues: tuple[ResolvedQueue, ...] = tuple(queues)
        self._by_name = {queue.name: queue for queue in self.queues}
        self._receiving = [0] * len(self.queues)
        self._next = 0
        self._on_error = on_error

    @property
    def queue_url(self) -> str:
        """The URL of the first (often only) queue."""
        return self.queues[0].url

    @property
    def dlq_url(self) -> str:
        """The URL of the first queue's dead-letter queue."""
        return self.queues[0].dlq_url

    @classmethod
    async def connect(
        cls,
        config: SqsConfig,
        *,
        on_error: Callable[[str], None] = lambda _operation: None,
        environ: Mapping[str, str] | None = None,
    ) -> SourceOpening:
        """A client of the endpoint with its credentials, whose queues are yet to be found.

        Credentials come from `environ` when it holds static keys, else from botocore's chain;
        none usable is SourceMisconfigured, at once.
        """
        try:
            credentials = await find_credentials(environ or {})
        except SqsFailure as exc:
            raise classify(exc, "credentials") from exc
        environ = environ or {}
        queue_count = len(config.specs())
        client = SqsClient.connect(
            region=config.region,
            # As botocore: the SQS-only variable applies when no endpoint is configured.
            endpoint_url=config.endpoint_url or environ.get("AWS_ENDPOINT_URL_SQS"),
            credentials=credentials,
            environ=environ,
            # Each poller holds one connection for its long poll; visibility changes, deletes
            # and depth polls need a few more at the same time.
            pool=2 * config.pollers * queue_count + 4,
            # A long poll legitimately takes wait_time_seconds; only silence beyond is a fault.
            read_timeout=config.wait_time_seconds + 10,
        )
        return SourceOpening(client, config, on_error)

    @classmethod
    async def open(
        cls,
        config: SqsConfig,
        *,
        on_error: Callable[[str], None] = lambda _operation: None,
        environ: Mapping[str, str] | None = None,
    ) -> SqsSource:
        """Connect and find (or create) every queue, in one try: SourceUnavailable when SQS
        does not answer (a start-up that waits for it uses `connect` and `find` instead)."""
        opening = await cls.connect(config, on_error=on_error, environ=environ)
        try:
            await opening.find()
        except BaseException:
            await opening.close()
            raise
        return opening.source()

    async def close(self) -> None:
        """Close the connections (a long poll in progress ends with them)."""
        await self._client.close()

    def queue(self, name: str) -> ResolvedQueue:
        """The queue called `name` (a message's `queue`; a message made without one belongs to
        the only queue of a source that reads one)."""
        found = self._by_name.get(name)
        if found is None:
            if not name and len(self.queues) == 1:
                return self.queues[0]
            raise KeyError(f"this source reads no queue called {name!r}")
        return found

    def dead_letter_queue(self, queue: str) -> str:
        """The name of the dead-letter queue of the queue called `queue`."""
        return self._by_name[queue].dlq_name

    async def _call(self, operation: str, target: str, payload: dict[str, Any]) -> Answer:
        try:
            return await self._client.call(target, payload)
        except SqsFailure as exc:
            self._on_error(operation)
            raise classify(exc, operation) from exc

    def _pick(self) -> int:
        """The queue with the fewest receives in progress; ties go round the queues in turn."""
        count = len(self._receiving)
        if count == 1:
            return 0
        start = self._next
        best = min(range(count), key=lambda i: (self._receiving[i], (i - start) % count))
        self._next = (best + 1) % count
        return best

    async def receive(self, max_messages: int) -> Sequence[Message]:
        """One long poll, of the queue that has fewest pollers on it, for up to `max_messages`."""
        index = self._pick()
        queue = self.queues[index]
        self._receiving[index] += 1
        try:
            return await self.receive_from(
                queue.url,
                queue.name,
                max_messages,
                self._config.wait_time_seconds,
                self._config.visibility_timeout_seconds,
                fifo=queue.fifo,
            )
        finally:
            self._receiving[index] -= 1

    async def receive_from(
        self,
        url: str,
        name: str,
        max_messages: int,
        wait_seconds: int,
        visibility_seconds: int,
        *,
        fifo: bool = False,
    ) -> Sequence[Message]:
        """One receive of the queue at `url` (called `name`), checked against the MD5s."""
        payload: dict[str, Any] = {
            "QueueUrl": url,
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_BATCH)),
            "WaitTimeSeconds": wait_seconds,
            "VisibilityTimeout": visibility_seconds,
            "MessageSystemAttributeNames": _SYSTEM_ATTRIBUTES,
            "MessageAttributeNames": ["All"],
        }
        if fifo:
            # The wire client sends the same payload when it tries a receive again: an answer
            # lost on the way then returns the same messages, instead of hiding them (and
            # holding up their groups) until their visibility timeout.
            payload["ReceiveRequestAttemptId"] = uuid.uuid4().hex
        response = await self._call("receive", "ReceiveMessage", payload)
        try:
            return read_messages(response.get("Messages") or [], name)
        except ChecksumMismatch as exc:
            # As botocore: the whole answer is suspect; its messages come back after the
            # visibility timeout, and this poll counts as a transient failure.
            self._on_error("receive")
            raise classify(SqsUnreachable(str(exc)), "receive") from exc

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        """DeleteMessageBatch in chunks of 10, retrying entries that failed on the server side."""
        failed: list[Message] = []
        for name, group in _by_queue(messages).items():
            failed.extend(await self.delete_from(self.queue(name).url, group))
        return failed

    async def delete_from(self, url: str, messages: Sequence[Message]) -> Sequence[Message]:
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

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        """SendMessageBatch to each message's dead-letter queue; return the messages it accepted."""
        by_queue: dict[str, list[DeadLetter]] = {}
        for letter in letters:
            by_queue.setdefault(letter.message.queue, []).append(letter)
        failed: list[Message] = []
        for name, group in by_queue.items():
            queue = self.queue(name)
            for chunk in send_chunks(group, dead_letter_size):
                by_message = {id(letter.message): letter for letter in chunk}

                def send(
                    messages: Sequence[Message],
                    letters: Mapping[int, DeadLetter] = by_message,
                    queue: ResolvedQueue = queue,
                ) -> tuple[str, Answer]:
                    return _send_letters(queue, [letters[id(m)] for m in messages])

                failed.extend(await self.batch("dead_letter", [c.message for c in chunk], send))
        failed_ids = {id(m) for m in failed}
        return [letter.message for letter in letters if id(letter.message) not in failed_ids]

    async def batch(
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
        for name, group in _by_queue(messages).items():
            await self.change_visibility_in(self.queue(name).url, group, seconds)

    async def change_visibility_in(
        self, url: str, messages: Sequence[Message], seconds: int
    ) -> None:
        """Hide `messages` of the queue at `url` for `seconds` (0: visible at once)."""

        def change(chunk: Sequence[Message]) -> tuple[str, Answer]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, m in enumerate(chunk)
            ]
            return "ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": entries}

        for start in range(0, len(messages), MAX_BATCH):
            await self.batch("change_visibility", messages[start : start + MAX_BATCH], change)

    async def ping(self) -> None:
        """GetQueueAttributes of every queue read."""
        for queue in self.queues:
            await self._call(
                "ping",
                "GetQueueAttributes",
                {"QueueUrl": queue.url, "AttributeNames": ["QueueArn"]},
            )

    async def depths(self) -> Sequence[QueueDepth]:
        """Approximate visible, in-flight and delayed counts of every queue and dead-letter queue
        (a dead-letter queue shared by several queues once)."""
        targets: dict[str, tuple[QueueRole, str]] = {}
        for queue in self.queues:
            targets.setdefault(queue.url, ("main", queue.name))
        for queue in self.queues:
            targets.setdefault(queue.dlq_url, ("dead_letter", queue.dlq_name))
        return [
            QueueDepth(role, name, await self.counts_of(url))
            for url, (role, name) in targets.items()
        ]

    async def counts_of(self, url: str) -> Mapping[QueueState, int]:
        """The approximate visible, in-flight and delayed counts of the queue at `url` (SQS
        updates them within seconds, not at once)."""
        response = await self._call(
            "queue_attributes",
            "GetQueueAttributes",
            {"QueueUrl": url, "AttributeNames": list(_DEPTH_ATTRIBUTES)},
        )
        attributes = response.get("Attributes") or {}
        return {state: int(attributes.get(name) or 0) for name, state in _DEPTH_ATTRIBUTES.items()}


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


__all__ = ["SqsSource", "to_message"]
