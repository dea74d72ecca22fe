"""REDIS_URL as the commands use it: a URL that cannot name a Redis is a configuration error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from exporter.settings import ConfigurationError
from exporter.store.urls import redacted


@contextmanager
def redis_url_checked(url: str) -> Iterator[None]:
    """Around `RedisConnection(url)`: a refused URL becomes a ConfigurationError.

    The store checks the URL (scheme, host, port, user part, database, redis-py's options) when
    it is made, after settings were loaded and before anything connects; without this a mistake
    would end the command with a traceback, or look like an outage for ever, instead of one line.
    """
    try:
        yield
    except ValueError as exc:
        # The messages name the bad part, never the password; the value is shown redacted.
        shown = redacted(url)
        raise ConfigurationError(f"REDIS_URL is not usable: {exc} (REDIS_URL={shown!r})") from None
