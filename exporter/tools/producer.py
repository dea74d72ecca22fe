"""Sending events to the queue: synthetic traffic or a JSON Lines file, with an exact summary."""

from __future__ import annotations

import json
import logging
import random
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from exporter.events import TYPE_RULE, InvalidEvent, is_valid_type, micros_to_text, parse_event
from exporter.retry import Retry
from exporter.sqs.batches import MAX_BATCH, MAX_BATCH_BYTES, send_chunks, sort_failures
from exporter.sqs.client import find_queue, make_client
from exporter.sqs.config import AwsCredentials
from exporter.sqs.dead_letters import text_attribute
from exporter.sqs.messages import SourceUnavailable
from exporter.sqs.names import is_fifo, url_name

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger("exporter.producer")

DEFAULT_TYPES: Final = ("pageview", "added-to-basket", "purchase")
SEND_ATTEMPTS: Final = 5
# Transient failures in a row of the queue's lookup before `exporter produce` gives up.
LOOKUP_ATTEMPTS: Final = 3
LOOKUP_RETRY: Final = Retry(None, base_seconds=0.05, cap_seconds=0.2)
# Share of synthetic events dated an hour back, as the prototype's generator did.
OLD_EVENT_RATIO: Final = 0.1
# At low rates a batch is cut short so that no event waits more than this for its batch-mates.
MAX_BATCH_DELAY_SECONDS: Final = 0.5
# The message group on a FIFO queue of a body without a usable event type.
FALLBACK_GROUP: Final = "exporter-produce"


class QueueNotFound(Exception):
    """The queue does not exist (yet); the message says how to create it."""


@dataclass(slots=True)
class TypeSent:
    """Valid events of one type that SQS accepted."""

    count: int = 0
    sum_micros: int = 0


@dataclass(slots=True)
class SendSummary:
    """Exactly what SQS accepted: valid events per type and malformed ones, plus what failed."""

    types: dict[str, TypeSent] = field(default_factory=dict)
    malformed: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def sent(self) -> int:
        """Messages SQS accepted."""
        return self.malformed + sum(t.count for t in self.types.values())

    def record(self, body: bytes) -> None:
        """Count one accepted message the way the processor will judge it."""
        try:
            event = parse_event(body)
        except InvalidEvent:
            self.malformed += 1
            return
        totals = self.types.setdefault(event.type, TypeSent())
        totals.count += 1
        totals.sum_micros += event.value_micros

    def rate(self) -> float:
        """Accepted messages per second so far."""
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as plain JSON (sums as exact decimal strings)."""
        return {
            "sent": self.sent,
            "malformed": self.malformed,
            "failed": self.failed,
            "types": {
                name: {"count": t.count, "sum": micros_to_text(t.sum_micros)}
                for name, t in sorted(self.types.items())
            },
        }

    def to_text(self) -> str:
        """The summary as a small table for a person."""
        lines = [f"{'type':<24} {'count':>10} {'sum':>20}"]
        lines += [
            f"{name:<24} {t.count:>10} {micros_to_text(t.sum_micros):>20}"
            for name, t in sorted(self.types.items())
        ]
        lines.append(f"sent {self.sent}, of which malformed {self.malformed}; failed {self.failed}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- event sources


@dataclass(frozen=True, slots=True)
class SyntheticTraffic:
    """Events shaped like the prototype's generator, about `malformed_ratio` of them broken."""

    types: Sequence[str] = DEFAULT_TYPES
    malformed_ratio: float = 0.15
    seed: int | None = None
    with_ids: bool = False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        bad = [t for t in self.types if not is_valid_type(t)]
        if bad or not self.types:
            raise ValueError(f"invalid event types {bad}: each must be {TYPE_RULE}")
        if not 0 <= self.malformed_ratio <= 1:
            raise ValueError("the malformed ratio must be between 0 and 1")

    def __iter__(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)  # noqa: S311 - test traffic, not cryptography
        # The dimension fields draw from a stream of their own, so a seed gives the same types,
        # values and breakage as before they existed.
        fields = random.Random(None if self.seed is None else self.seed + 1)  # noqa: S311
        while True:
            event = self._one(rng)
            event["country"] = _weighted(COUNTRIES, fields)
            event["channel"] = _weighted(CHANNELS, fields)
            yield json.dumps(event).encode()

    def _one(self, rng: random.Random) -> dict[str, Any]:
        event_type = rng.choice(self.types)
        moment = self.clock()
        if rng.random() < OLD_EVENT_RATIO:
            moment -= timedelta(hours=1)
        event: dict[str, Any] = {
            "type": event_type,
            "value": _value(event_type, rng),
            "occurred_at": moment.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if self.with_ids:
            # Not from the seeded generator: a rerun with the same seed must not look like a retry.
            event["id"] = str(uuid.uuid4())
        if rng.random() < self.malformed_ratio:
            _break(event, rng)
        return event


# The fields a shop would break its events down by (EXPORTER_DIMENSIONS=country,channel in the
# demo and the compose stack), each value with its weight. "??" breaks the value rule, so the
# demo's breakdowns show a fold (`__other__`, exporter_dimension_folded_total) as real traffic
# would.
COUNTRIES: Final = (("NL", 40), ("DE", 25), ("FR", 15), ("BE", 10), ("ES", 6), ("??", 4))
CHANNELS: Final = (("web", 60), ("app", 35), ("store", 5))


def _weighted(choices: Sequence[tuple[str, int]], rng: random.Random) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _value(event_type: str, rng: random.Random) -> int | float:
    if event_type == "pageview":
        return 1
    if event_type == "added-to-basket":
        return rng.randint(1, 5)
    return float(Decimal(rng.randint(0, 10_000)).scaleb(-2))  # 0-100 with two decimals


def _break(event: dict[str, Any], rng: random.Random) -> None:
    """Spoil one field the way real producers do: drop it, or send letters instead."""
    letters = "".join(rng.choices(string.ascii_letters, k=rng.randint(3, 10)))
    match rng.randrange(3):
        case 0:
            del event[rng.choice(("type", "value", "occurred_at"))]
        case 1:
            event["value"] = letters
        case _:
            event["occurred_at"] = letters


def json_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Each non-blank line of `stream` as one message body, sent as it is (checked or not)."""
    for line in stream:
        body = line.strip()
        if body:
            yield body


# ---------------------------------------------------------------------------- sending


def make_sqs_client(
    endpoint_url: str | None, region: str, credentials: AwsCredentials | None = None
) -> SQSClient:
    """A boto3 SQS client with short timeouts, which makes one attempt per call."""
    return make_client(region=region, endpoint_url=endpoint_url, credentials=credentials)


def resolve_queue_url(
    client: SQSClient,
    queue_name: str,
    queue_url: str | None,
    *,
    wait_seconds: float = 0,
    stop: threading.Event | None = None,
) -> str:
    """The queue's URL; with `wait_seconds`, wait that long for someone else to create it.

    The lookup's one retry layer (the boto3 client makes one attempt): a transient failure is
    tried again, up to LOOKUP_ATTEMPTS in a row, in the same loop that waits for the queue.
    """
    if queue_url:
        return queue_url
    deadline = time.monotonic() + wait_seconds
    failures = 0
    for _ in LOOKUP_RETRY.blocking_tries(stop or threading.Event()):
        try:
            url = find_queue(client, queue_name)
        except SourceUnavailable:
            failures += 1
            if failures == LOOKUP_ATTEMPTS:
                raise
            continue
        failures = 0
        if url is not None:
            return url
        if time.monotonic() >= deadline:
            break
    raise QueueNotFound(
        f"queue {queue_name!r} does not exist: create it, start `exporter processor` "
        "with EXPORTER_CREATE_QUEUES=true (it creates the queue and its dead-letter "
        "queue), or set SQS_QUEUE_URL"
    )


ProgressCallback = Callable[[SendSummary], None]


class Producer:
    """Sends message bodies in batches, retrying what SQS did not accept, and counts exactly."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        retry_delay_seconds: float = 0.2,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        # Delays of about 1, 2, 4 and 8 times `retry_delay_seconds` between the tries.
        self._retry = Retry(SEND_ATTEMPTS, retry_delay_seconds, retry_delay_seconds * 8)
        self._tracer = tracer
        # A FIFO queue needs a group and a deduplication id on every message.
        self._fifo = is_fifo(url_name(queue_url))

    def run(
        self,
        bodies: Iterable[bytes],
        *,
        count: int | None = None,
        rate: float = 0,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> SendSummary:
        """Send up to `count` bodies at `rate` per second (0: as fast as possible) until `stop`."""
        stop = stop or threading.Event()
        summary = SendSummary()
        batch_size = MAX_BATCH
        if rate > 0:
            batch_size = max(1, min(MAX_BATCH, int(rate * MAX_BATCH_DELAY_SECONDS)))
        started = time.monotonic()
        taken = 0
        source = iter(bodies)
        while not stop.is_set() and (count is None or taken < count):
            size = batch_size if count is None else min(batch_size, count - taken)
            batch = _take(source, size)
            if not batch:
                break
            if rate > 0:
                # Pace by schedule, not by sleeping a fixed time: slow sends do not slow the rate.
                due = started + taken / rate
                if stop.wait(max(0.0, due - time.monotonic())):
                    break
            taken += len(batch)
            if self._tracer is None:
                self._send(batch, summary, stop, {})
            else:
                with self._tracer.start_as_current_span(
                    "send events", kind=trace.SpanKind.PRODUCER
                ) as span:
                    span.set_attribute("messaging.batch.message_count", len(batch))
                    self._send(batch, summary, stop, _trace_attributes())
            if progress is not None:
                progress(summary)
        return summary

    def _send(
        self,
        batch: Sequence[bytes],
        summary: SendSummary,
        stop: threading.Event,
        attributes: dict[str, MessageAttributeValueTypeDef],
    ) -> None:
        pending: dict[int, bytes] = {}
        for index, raw in enumerate(batch):
            body = _as_sent(raw)
            if len(body) > MAX_BATCH_BYTES:
                summary.failed += 1
                log.error("message larger than SQS accepts", extra={"bytes": len(body)})
            else:
                pending[index] = body
        # One deduplication id per message for all its attempts: on a FIFO queue, a retry of a
        # send whose answer was lost is then not a second copy.
        dedup = {index: uuid.uuid4().hex for index in pending} if self._fifo else {}
        # A send's one retry layer (decision 0022): the boto3 client makes one attempt, and a
        # call that failed is tried again here together with the entries SQS did not take.
        for _ in self._retry.blocking_tries(stop):
            if not pending:
                break
            retry: dict[int, bytes] = {}
            for chunk in send_chunks(list(pending.items()), lambda item: len(item[1])):
                retry |= self._send_chunk(dict(chunk), summary, attributes, dedup)
            pending = retry
        if pending:
            summary.failed += len(pending)
            log.error("messages not accepted after retries", extra={"failed": len(pending)})

    def _send_chunk(
        self,
        chunk: dict[int, bytes],
        summary: SendSummary,
        attributes: dict[str, MessageAttributeValueTypeDef],
        dedup: dict[int, str],
    ) -> dict[int, bytes]:
        """Send one SendMessageBatch call; return what should be tried again."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, body in chunk.items():
            entry: SendMessageBatchRequestEntryTypeDef = {
                "Id": str(index),
                "MessageBody": body.decode("utf-8"),
            }
            if attributes:
                entry["MessageAttributes"] = attributes
            if self._fifo:
                entry["MessageGroupId"] = message_group(body)
                entry["MessageDeduplicationId"] = dedup[index]
            entries.append(entry)
        try:
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            log.warning("send failed, will retry", extra={"error": str(exc)})
            return chunk
        for accepted in response.get("Successful", []):
            summary.record(chunk[int(accepted["Id"])])
        failed = response.get("Failed", [])
        failures = sort_failures(failed)
        if failures.refused:
            # SQS will never take these bodies (bad characters, too big): retrying cannot help.
            summary.failed += len(failures.refused)
            for failure in failed:
                if failure.get("SenderFault"):
                    log.error(
                        "message refused by SQS",
                        extra={"code": failure.get("Code"), "detail": failure.get("Message")},
                    )
        return {int(i): chunk[int(i)] for i in failures.retry}


def message_group(body: bytes) -> str:
    """A body's message group on a FIFO queue: its event type (events of one type stay in
    order), or one group for bodies without a usable type."""
    try:
        data = json.loads(body)
    except ValueError:
        return FALLBACK_GROUP
    kind = data.get("type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) and is_valid_type(kind) else FALLBACK_GROUP


def _trace_attributes() -> dict[str, MessageAttributeValueTypeDef]:
    """The current span as a W3C `traceparent` message attribute (none if it is not recording)."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    if "traceparent" not in carrier:
        return {}
    return {"traceparent": text_attribute(carrier["traceparent"])}


def _as_sent(body: bytes) -> bytes:
    """The body as SQS will hold it: bytes that are not UTF-8 become U+FFFD.

    The summary judges this form, not the raw line: a stray byte in a field the parser ignores
    still makes a valid event once replaced, and the processor will count it.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace").encode()
    return body


def _take(source: Iterator[bytes], size: int) -> list[bytes]:
    batch = []
    for body in source:
        batch.append(body)
        if len(batch) == size:
            break
    return batch
