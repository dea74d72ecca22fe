"""Redis URLs as they may be shown: never with a password."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

# redis-py also takes the password as a query option (`unix:///run/redis.sock?password=...`).
_PASSWORD_OPTION: Final = re.compile(r"([?&]password=)[^&#]*")


def redacted(url: str) -> str:
    """`url` with any password (in the user part or a `password=` option) shown as `***`."""
    userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    if at and ":" in userinfo:
        url = url.replace(f"{userinfo}@", f"{userinfo.partition(':')[0]}:***@", 1)
    return _PASSWORD_OPTION.sub(r"\1***", url)


__all__ = ["redacted"]
