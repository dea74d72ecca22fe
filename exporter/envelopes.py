"""Events as AWS delivers them: bare, or inside an SNS notification or an EventBridge event.

Pure, like the event contract it wraps (`exporter.events`). An envelope is recognised only by its
unmistakable shape: an SNS notification is a JSON object with `"Type": "Notification"` and string
`MessageId`, `TopicArn` and `Message` (the event as text); an EventBridge event has string
`version`, `id`, `detail-type` and `source`, and a `detail` (the event as an object). EventBridge
to SNS to SQS nests the second in the first. Anything else is read as a bare event.

A bare body pays for two substring searches of its text only: a body holding neither
`"TopicArn"` nor `"detail-type"` cannot be an envelope and goes straight to the contract. The
searches run on the decoded text, which the contract needs anyway: `in` on bytes goes through
the buffer protocol and cost ten times more (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import orjson

from exporter.events import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_ID_LENGTH,
    NO_DIMENSIONS,
    ContractOptions,
    Event,
    InvalidEvent,
    parse_event,
    parse_event_text,
    validate_event,
)

EnvelopeKind = Literal["sns", "eventbridge"]

_SNS_MARK: Final = '"TopicArn"'
_EVENTBRIDGE_MARK: Final = '"detail-type"'
_EVENTBRIDGE_KEYS: Final = ("version", "id", "detail-type", "source")
# Every number with all its digits, as the event contract reads a bare body.
_EXACT: Final = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The envelope an event came in: its kind, its own id, and the trace context it carried."""

    kind: EnvelopeKind
    id: str
    where: str
    traceparent: str | None = None

    @property
    def identity(self) -> str:
        """The de-duplication identity of an event without an `id` of its own: the envelope's
        id, the same on every delivery of one notification or event (SNS and EventBridge both
        deliver at least once)."""
        return f"{self.kind}:{self.id}"


def read_event(
    body: bytes,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    options: ContractOptions = NO_DIMENSIONS,
) -> tuple[Event, Envelope | None]:
    """The event in `body` and the envelope it came in (None when bare); `InvalidEvent` with the
    contract's reason, and a detail naming the envelope, when the event breaks the contract."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return parse_event(body, max_bytes, options), None  # the contract names the reason
    if _SNS_MARK not in text and _EVENTBRIDGE_MARK not in text:
        if len(body) > max_bytes:
            return parse_event(body, max_bytes, options), None  # too large, in its words
        return parse_event_text(text, options), None
    return _read(text, len(body), max_bytes, None, options)


def _read(
    text: str, size: int, max_bytes: int, outer: Envelope | None, options: ContractOptions
) -> tuple[Event, Envelope | None]:
    if _SNS_MARK in text and outer is None:
        data = _decode(text, exact=False)
        if _is_sns(data):
            return _read_sns(data, max_bytes, options)
    if _EVENTBRIDGE_MARK in text:
        data = _decode(text, exact=True)
        if _is_eventbridge(data):
            return _read_eventbridge(data, size, max_bytes, outer, options)
    body = text.encode("utf-8", "surrogatepass")
    if outer is not None:
        return _inside(outer, lambda: parse_event(body, max_bytes, options)), outer
    return parse_event(body, max_bytes, options), None


def _decode(text: str, *, exact: bool) -> Any:
    """The text as JSON for recognising an envelope, or None when it is not JSON at all."""
    if not exact:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # a lone surrogate orjson refuses, say: the standard decoder may still read it
    try:
        return _EXACT.decode(text)
    except (ValueError, RecursionError):
        return None


def _is_sns(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("Type") == "Notification"
        and isinstance(data.get("MessageId"), str)
        and isinstance(data.get("TopicArn"), str)
        and isinstance(data.get("Message"), str)
    )


def _is_eventbridge(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and all(isinstance(data.get(key), str) for key in _EVENTBRIDGE_KEYS)
        and "detail" in data
    )


def _checked_id(value: str, where: str, field: str) -> str:
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidEvent("bad_id", f"{where}: '{field}' must be 1-{MAX_ID_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent("bad_id", f"{where}: '{field}' must be valid Unicode text") from None
    return value


def _inside(envelope: Envelope, parse: Callable[[], Event]) -> Event:
    """`parse()`, its rejection's detail naming the envelope the event came in."""
    try:
        return parse()
    except InvalidEvent as exc:
        raise InvalidEvent(exc.reason, f"{envelope.where}: {exc.detail}") from None


def _read_sns(
    data: dict[str, Any], max_bytes: int, options: ContractOptions
) -> tuple[Event, Envelope | None]:
    topic = str(data["TopicArn"]).rpartition(":")[2] or "?"
    where = f"the event in SNS notification {str(data['MessageId'])[:40]!r} (topic {topic[:80]!r})"
    envelope = Envelope(
        "sns",
        _checked_id(data["MessageId"], where, "MessageId"),
        where,
        _sns_traceparent(data.get("MessageAttributes")),
    )
    message: str = data["Message"]
    inner = message.encode("utf-8", "surrogatepass")
    if _EVENTBRIDGE_MARK in message:
        # EventBridge to SNS to SQS: the event is one level further in.
        return _read(message, len(inner), max_bytes, envelope, options)
    return _inside(envelope, lambda: parse_event(inner, max_bytes, options)), envelope


def _sns_traceparent(attributes: Any) -> str | None:
    """A W3C `traceparent` among the notification's message attributes (raw delivery turns them
    into SQS message attributes, which the processor reads already)."""
    if not isinstance(attributes, dict):
        return None
    value = attributes.get("traceparent")
    if isinstance(value, dict) and value.get("Type") == "String":
        text = value.get("Value")
        return text if isinstance(text, str) else None
    return None


def _read_eventbridge(
    data: dict[str, Any],
    size: int,
    max_bytes: int,
    outer: Envelope | None,
    options: ContractOptions,
) -> tuple[Event, Envelope | None]:
    where = (
        f"the event in EventBridge event {str(data['id'])[:40]!r} "
        f"({str(data['source'])[:80]!r}, {str(data['detail-type'])[:80]!r})"
    )
    if outer is not None:
        where = f"{where}, in {outer.where.removeprefix('the event in ')}"
    envelope = Envelope(
        "eventbridge",
        _checked_id(data["id"], where, "id"),
        where,
        outer.traceparent if outer is not None else None,
    )
    if size > max_bytes:
        raise InvalidEvent("too_large", f"{where}: {size} bytes, the limit is {max_bytes}")
    detail = data["detail"]
    return _inside(envelope, lambda: validate_event(detail, "'detail'", options)), envelope


__all__ = ["Envelope", "EnvelopeKind", "read_event"]
