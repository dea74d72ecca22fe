"""SQS's MD5 checksum of a received message's attributes, computed as botocore does (the body's
is one `hashlib.md5` in `received.py`)."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from typing import Any


class ChecksumMismatch(Exception):
    """A message's body or attributes differ from the checksum SQS sent with them."""


_LENGTH = struct.Struct(">I").pack


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


__all__ = ["ChecksumMismatch", "md5_of_attributes"]
