"""The processor's source: every queue it reads, polled fairly, and each message's way back to
its queue (delete, visibility, dead letters), over the calls of `exporter.sqs.queue_calls`.

This is the polling policy only: which queue a receive reads, and which queue each message
belongs to. The calls themselves, and where each is tried again, are in `queue_calls.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from exporter.sqs.config import SqsConfig
from exporter.sqs.credentials import find_credentials
from exporter.sqs.errors import SqsFailure, classify
from exporter.sqs.messages import DeadLetter, Message, QueueDepth, QueueRole, SourceUnavailable
from exporter.sqs.queue_calls import SINGLE_CALL_RETRY, QueueCalls, new_attempt_id
from exporter.sqs.queues import ResolvedQueue, resolve_queues
from exporter.sqs.wire import SqsClient

log = logging.getLogger(__name__)


def _by_queue(messages: Sequence[Message]) -> dict[str, list[Message]]:
    """Messages grouped by the queue they came from, in order."""
    groups: dict[str, list[Message]] = {}
    for message in messages:
        groups.setdefault(message.queue, []).append(message)
    return groups


class SourceOpening:
    """A connected client whose queues are still to be found: `find` once per try (the caller's
    retry layer decides how often), then `source()`, or `close()` when it is given up."""

    def __init__(self, calls: QueueCalls, config: SqsConfig) -> None:
        self._calls = calls
        self._config = config
        self._queues: tuple[ResolvedQueue, ...] = ()

    async def find(self) -> None:
        """Find (or create, when allowed) every queue, in one try: SourceUnavailable to try
        again later, SourceMisconfigured for what no retry can fix."""
        try:
            self._queues = await resolve_queues(self._calls.client, self._config)
        except SourceUnavailable:
            self._calls.count_error("resolve_queue")
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
        return SqsSource(self._calls, self._config, self._queues)

    async def close(self) -> None:
        """Close the client's connections (when the queues are never found)."""
        await self._calls.close()


class SqsSource:
    """The queues a processor reads and their dead-letter queues, found (and created if allowed)
    by `open`. Each receive reads the queue with the fewest receives in progress, so that every
    queue keeps its share of the pollers whatever the others hold."""

    def __init__(
        self, calls: QueueCalls, config: SqsConfig, queues: Sequence[ResolvedQueue]
    ) -> None:
        if not queues:
            raise ValueError("a source reads at least one queue")
        self.calls = calls
        self._wait_seconds = config.wait_time_seconds
        self._visibility_seconds = config.visibility_timeout_seconds
        self.queues: tuple[ResolvedQueue, ...] = tuple(queues)
        self._by_name = {queue.name: queue for queue in self.queues}
        self._receiving = [0] * len(self.queues)
        self._next = 0
        # The attempt id of a FIFO queue's receive that failed, for the next receive of that
        # queue: the poller's retry (queue_calls.py) then gets the answer the failure lost.
        self._retry_attempt: dict[int, str] = {}

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
        return SourceOpening(QueueCalls(client, on_error), config)

    @classmethod
    async def open(
        cls,
        config: SqsConfig,
        *,
        on_error: Callable[[str], None] = lambda _operation: None,
        environ: Mapping[str, str] | None = None,
    ) -> SqsSource:
        """Connect and find (or create) every queue, for a command that does not wait for SQS
        (`exporter dlq`): SourceUnavailable when SQS does not answer. A processor's start-up,
        which waits up to its deadline, uses `connect` and `find` instead.

        Finding has its one retry layer here (SINGLE_CALL_RETRY): a few tries, then the error.
        """
        opening = await cls.connect(config, on_error=on_error, environ=environ)
        try:
            await SINGLE_CALL_RETRY.call(opening.find, on=SourceUnavailable)
        except BaseException:
            await opening.close()
            raise
        return opening.source()

    async def close(self) -> None:
        """Close the connections (a long poll in progress ends with them)."""
        await self.calls.close()

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
        """One long poll, of the queue that has fewest pollers on it, for up to `max_messages`;
        one attempt (the poller is the receive's retry layer)."""
        index = self._pick()
        queue = self.queues[index]
        attempt_id = None
        if queue.fifo:
            attempt_id = self._retry_attempt.pop(index, None) or new_attempt_id()
        self._receiving[index] += 1
        try:
            return await self.calls.receive(
                queue.url,
                queue.name,
                max_messages,
                self._wait_seconds,
                self._visibility_seconds,
                fifo=queue.fifo,
                attempt_id=attempt_id,
            )
        except SourceUnavailable:
            if attempt_id is not None:
                self._retry_attempt[index] = attempt_id
            raise
        finally:
            self._receiving[index] -= 1

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        """DeleteMessageBatch in chunks of 10; return the messages that could not be deleted."""
        failed: list[Message] = []
        for name, group in _by_queue(messages).items():
            failed.extend(await self.calls.delete(self.queue(name).url, group))
        return failed

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        """SendMessageBatch to each message's dead-letter queue; return the messages it accepted."""
        by_queue: dict[str, list[DeadLetter]] = {}
        for letter in letters:
            by_queue.setdefault(letter.message.queue, []).append(letter)
        failed: list[Message] = []
        for name, group in by_queue.items():
            failed.extend(await self.calls.dead_letter(self.queue(name), group))
        failed_ids = {id(m) for m in failed}
        return [letter.message for letter in letters if id(letter.message) not in failed_ids]

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        """ChangeMessageVisibilityBatch; a failed entry only means the message reappears early."""
        for name, group in _by_queue(messages).items():
            await self.calls.change_visibility(self.queue(name).url, group, seconds)

    async def ping(self) -> None:
        """GetQueueAttributes of every queue read."""
        for queue in self.queues:
            await self.calls.ping(queue.url)

    async def depths(self) -> Sequence[QueueDepth]:
        """Approximate visible, in-flight and delayed counts of every queue and dead-letter queue
        (a dead-letter queue shared by several queues once)."""
        targets: dict[str, tuple[QueueRole, str]] = {}
        for queue in self.queues:
            targets.setdefault(queue.url, ("main", queue.name))
        for queue in self.queues:
            targets.setdefault(queue.dlq_url, ("dead_letter", queue.dlq_name))
        return [
            QueueDepth(role, name, await self.calls.counts(url))
            for url, (role, name) in targets.items()
        ]


__all__ = ["SourceOpening", "SqsSource"]
