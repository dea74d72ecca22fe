"""A receive's answer read once: each message checked against its MD5s and made a `Message`."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from exporter.sqs.checksums import ChecksumMismatch, md5_of_attributes
from exporter.sqs.messages import Message


@functools.lru_cache(maxsize=64)
def _moment(stamp: str) -> datetime:
    # The messages of one receive mostly share their first-receive millisecond.
    return datetime.fromtimestamp(int(stamp) / 1000, UTC)


def _message(raw: Mapping[str, Any], body: bytes, queue: str) -> Message:
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
        body=body,
        receive_count=int(count) if count.isdigit() else 1,
        first_received_at=_moment(stamp) if stamp is not None and stamp.isdigit() else None,
        attributes=attributes,
        queue=queue,
        group_id=system.get("MessageGroupId"),
    )


def read_messages(raws: Sequence[Mapping[str, Any]], queue: str) -> list[Message]:
    """The messages of one answer from `queue`; ChecksumMismatch if any differs from its MD5s.

    One pass, the body encoded once for its MD5 and its `Message`: this runs for every message
    the processor receives (decision 0006). The checks are botocore's; the tests hold the plain,
    one-step-at-a-time reading this must equal (tests/unit/sqs/reference_messages.py).
    """
    messages = []
    for raw in raws:
        body = raw.get("Body", "").encode("utf-8", "surrogatepass")
        expected = raw.get("MD5OfBody")
        # SQS's checksum, not security.
        if expected is not None and hashlib.md5(body).hexdigest() != expected:  # noqa: S324
            raise ChecksumMismatch(f"message {raw.get('MessageId')}: body does not match MD5OfBody")
        expected = raw.get("MD5OfMessageAttributes")
        if expected is not None:
            attributes = raw.get("MessageAttributes")
            if attributes and md5_of_attributes(attributes) != expected:
                raise ChecksumMismatch(
                    f"message {raw.get('MessageId')}: attributes do not match "
                    "MD5OfMessageAttributes"
                )
        messages.append(_message(raw, body, queue))
    return messages


__all__ = ["read_messages"]
