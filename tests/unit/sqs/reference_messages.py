"""The plain reading of a received SQS message, one step at a time, as botocore checks it: the
reference `exporter.sqs.received.read_messages` (which fuses the steps into one pass for speed)
must equal."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from exporter.sqs.checksums import ChecksumMismatch, md5_of_attributes
from exporter.sqs.messages import Message


def md5_of_body(body: str) -> str:
    """The hex MD5 of a body's UTF-8 bytes."""
    return hashlib.md5(body.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324 - SQS's


def check_message(raw: Mapping[str, Any]) -> None:
    """Raise ChecksumMismatch unless the body and attributes match their MD5s (when sent)."""
    expected = raw.get("MD5OfBody")
    if expected is not None and md5_of_body(raw.get("Body", "")) != expected:
        raise ChecksumMismatch(f"message {raw.get('MessageId')}: body does not match MD5OfBody")
    expected = raw.get("MD5OfMessageAttributes")
    attributes = raw.get("MessageAttributes")
    if expected is not None and attributes and md5_of_attributes(attributes) != expected:
        raise ChecksumMismatch(
            f"message {raw.get('MessageId')}: attributes do not match MD5OfMessageAttributes"
        )


def to_message(raw: Mapping[str, Any], queue: str = "") -> Message:
    """One received message (string attributes only) from `queue`, unchecked."""
    system = raw.get("Attributes") or {}
    custom = raw.get("MessageAttributes") or {}
    count = system.get("ApproximateReceiveCount", "1")
    stamp = system.get("ApproximateFirstReceiveTimestamp")
    return Message(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", "").encode("utf-8", "surrogatepass"),
        receive_count=int(count) if count.isdigit() else 1,
        first_received_at=(
            datetime.fromtimestamp(int(stamp) / 1000, UTC)
            if stamp is not None and stamp.isdigit()
            else None
        ),
        attributes={
            name: value["StringValue"] for name, value in custom.items() if "StringValue" in value
        },
        queue=queue,
        group_id=system.get("MessageGroupId"),
    )
