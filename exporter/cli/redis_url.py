"""REDIS_URL as the commands use it: a bad one is a configuration error, and it prints safely."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final
from urllib.parse import urlsplit

from exporter.settings import ConfigurationError

# redis-py also takes the password as a query option (`unix:///run/redis.sock?password=...`).
_PASSWORD_OPTION: Final = re.compile(r"([?&]password=)[^&#]*")


@contextmanager
def redis_url_checked() -> Iterator[None]:
    """Around `RedisStore.from_url`: redis-py's ValueError becomes a ConfigurationError.

    redis-py checks the URL only when a store is opened, after settings were loaded; without this
    a wrong scheme or port would end the command with a traceback instead of one line.
    """
    try:
        yield
    except ValueError as exc:
        # redis-py's messages name the bad part (scheme, port, option), never the password.
        raise ConfigurationError(f"REDIS_URL is not usable: {exc}") from None


def redacted(url: str) -> str:
    """`url` with any password (in the user part or a `password=` option) shown as `***`."""
    userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    if at and ":" in userinfo:
        url = url.replace(f"{userinfo}@", f"{userinfo.partition(':')[0]}:***@", 1)
    return _PASSWORD_OPTION.sub(r"\1***", url)
