"""REDIS_URL as the commands use it: a URL redis-py refuses is a configuration error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from exporter.settings import ConfigurationError


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
