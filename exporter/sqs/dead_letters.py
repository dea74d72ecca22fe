"""What a dead letter carries: the original body and attributes saying why, when and from where."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from exporter.sqs.messages import DeadLetter, Message

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import MessageAttributeValueTypeDef

MAX_DETAIL_CHARS: Final = 1024


def text_attribute(value: str) -> MessageAttributeValueTypeDef:
    """A String message attribute."""
    return {"DataType": "String", "StringValue": value}


def message_size(message: Message) -> int:
    """Bytes a message counts for against SQS's size limits: body plus attributes."""
    attributes = sum(len(k) + len(v) + len("String") for k, v in message.attributes.items())
    return len(message.body) + attributes


def dead_letter_attributes(letter: DeadLetter) -> dict[str, MessageAttributeValueTypeDef]:
    """The message attributes that say why and when a message was dead-lettered."""
    message = letter.message
    first = message.first_received_at or datetime.now(UTC)
    attributes = {
        "reason": text_attribute(letter.reason),
        "detail": text_attribute(letter.detail[:MAX_DETAIL_CHARS] or "-"),
        "original_message_id": text_attribute(message.original_message_id),
        "first_received_at": text_attribute(first.isoformat(timespec="milliseconds")),
    }
    if message.traceparent:
        attributes["traceparent"] = text_attribute(message.traceparent)
    return attributes


def dead_letter_size(letter: DeadLetter) -> int:
    """Bytes a dead letter will weigh once its attributes are added."""
    attributes = dead_letter_attributes(letter)
    extra = sum(len(k) + len(v.get("StringValue", "")) + 6 for k, v in attributes.items())
    return len(letter.message.body) + extra


def redrive_attributes(message: Message) -> dict[str, MessageAttributeValueTypeDef]:
    """Attributes of a dead letter's copy sent back to the main queue.

    The copy gets a new MessageId; the original one travels along so that the processor
    recognises an event without an `id` that was already counted.
    """
    attributes = {"original_message_id": text_attribute(message.original_message_id)}
    if message.traceparent:
        attributes["traceparent"] = text_attribute(message.traceparent)
    return attributes


__all__ = [
    "MAX_DETAIL_CHARS",
    "dead_letter_attributes",
    "dead_letter_size",
    "message_size",
    "redrive_attributes",
    "text_attribute",
]
