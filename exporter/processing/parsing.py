"""The parse step of a batch: each body read once against the event contract, in or out of its
envelope, with the identity the store de-duplicates it by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.envelopes import Envelope, read_event
from exporter.events import NO_DIMENSIONS, ContractOptions, Event, InvalidEvent, parse_event
from exporter.sqs.messages import DeadLetter, Message


def identity_of(event: Event, message: Message, envelope: Envelope | None = None) -> str:
    """The de-duplication identity: the producer's event id; else the envelope's own id (an SNS
    notification delivered twice, or an EventBridge event, keeps it); else the SQS MessageId it
    was first sent with (a redriven copy carries that along, so redriving never counts twice)."""
    if event.id is not None:
        return f"id:{event.id}"
    if envelope is not None:
        return envelope.identity
    return f"msg:{message.original_message_id}"


@dataclass(slots=True)
class ParsedBatch:
    """A batch's valid events with their identities, its rejects, and the trace contexts its
    envelopes carried (a raw message's own is in its attributes)."""

    events: list[tuple[Message, str, Event]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    envelope_traceparents: list[str] = field(default_factory=list)


def parse_batch(
    messages: Sequence[Message],
    max_bytes: int,
    *,
    unwrap: bool,
    options: ContractOptions = NO_DIMENSIONS,
) -> ParsedBatch:
    """Read every message of a batch against the contract with `options` (the dimensions the
    deployment declares); `unwrap` off reads each body as a bare event."""
    batch = ParsedBatch()
    events = batch.events
    letters = batch.letters
    if not unwrap:
        for message in messages:
            try:
                event = parse_event(message.body, max_bytes, options)
            except InvalidEvent as exc:
                letters.append(DeadLetter(message, exc.reason, exc.detail))
                continue
            events.append((message, identity_of(event, message), event))
        return batch
    for message in messages:
        try:
            event, envelope = read_event(message.body, max_bytes, options)
        except InvalidEvent as exc:
            letters.append(DeadLetter(message, exc.reason, exc.detail))
            continue
        if envelope is not None and envelope.traceparent:
            batch.envelope_traceparents.append(envelope.traceparent)
        events.append((message, identity_of(event, message, envelope), event))
    return batch


__all__ = ["ParsedBatch", "identity_of", "parse_batch"]
