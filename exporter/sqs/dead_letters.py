"""What a dead letter carries: the original body and attributes saying why, when and from where.

On FIFO queues every send also carries the message's group and a deduplication id that is the
same for every attempt to send the same message, so that a retried send is not a second copy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from exporter.sqs.messages import DeadLetter, Message

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import MessageAttributeValueTypeDef

MAX_DETAIL_CHARS: Final = 1024
# A FIFO message always has a group; this is only for one that somehow lacks it.
FALLBACK_GROUP: Final = "exporter"


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
    if message.queue:
        # Which queue it came from: `exporter dlq redrive` sends it back there, also when
        # several queues share one dead-letter queue.
        attributes["source_queue"] = text_attribute(message.queue)
    if message.traceparent:
        attributes["traceparent"] = text_attribute(message.traceparent)
    return attributes


def dead_letter_size(letter: DeadLetter) -> int:
    """Bytes a dead letter will weigh once its attributes are added."""
    attributes = dead_letter_attributes(letter)
    extra = sum(len(k) + len(v.get("StringValue", "")) + 6 for k, v in attributes.items())
    return len(letter.message.body) + extra


def fifo_fields(message: Message) -> dict[str, str]:
    """The FIFO fields of a send that forwards `message`: its own group, so that order within the
    group holds in the next queue too, and its MessageId as the deduplication id.

    A redelivered message keeps its MessageId, so forwarding it again within SQS's five-minute
    deduplication interval is dropped by SQS; a redriven copy has a MessageId of its own, so its
    own forward is never mistaken for the earlier one's.
    """
    return {
        "MessageGroupId": message.group_id or FALLBACK_GROUP,
        "MessageDeduplicationId": message.message_id,
    }


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
    "FALLBACK_GROUP",
    "MAX_DETAIL_CHARS",
    "dead_letter_attributes",
    "dead_letter_size",
    "fifo_fields",
    "message_size",
    "redrive_attributes",
    "text_attribute",
]
