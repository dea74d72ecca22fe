"""SQS's MD5 checksums of a received message's body and attributes, checked as botocore does."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from typing import Any


class ChecksumMismatch(Exception):
    """A message's body or attributes differ from the checksum SQS sent with them."""


_LENGTH = struct.Struct(">I").pack


def md5_of_body(body: str) -> str:
    """The hex MD5 of a body's UTF-8 bytes."""
    return hashlib.md5(body.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324 - SQS's


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """SQS's MD5OfMessageAttributes: by name, each part length-prefixed, a byte for the kind."""
    # Written out rather than through helpers: it runs for every message received.
    parts: list[bytes] = []
    for name in sorted(attributes):
        value = attributes[name]
        encoded_name = name.encode()
        data_type = str(value.get("DataType", "")).encode()
        parts += (_LENGTH(len(encoded_name)), encoded_name, _LENGTH(len(data_type)), data_type)
        if "StringValue" in value:
            text = str(value["StringValue"]).encode()
            parts += (b"\x01", _LENGTH(len(text)), text)
        elif "BinaryValue" in value:
            raw = base64.b64decode(value["BinaryValue"])
            parts += (b"\x02", _LENGTH(len(raw)), raw)
    return hashlib.md5(b"".join(parts)).hexdigest()  # noqa: S324 - SQS's checksum, not security


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


__all__ = ["ChecksumMismatch", "check_message", "md5_of_attributes", "md5_of_body"]
