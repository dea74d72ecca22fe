"""Telling a store that refuses its configuration (retrying cannot help) from one that is down."""

from __future__ import annotations

from redis.exceptions import AuthenticationError, ResponseError

# Redis's own words for a configuration it refuses, and what to tell the operator instead.
_REFUSALS = (
    ("DB index is out of range", "the database number in REDIS_URL does not exist on this Redis"),
    ("invalid DB index", "the database number in REDIS_URL does not exist on this Redis"),
    ("NOAUTH", "Redis requires a password and REDIS_URL gives none"),
    ("WRONGPASS", "Redis refused the user or password in REDIS_URL"),
    ("NOPERM", "the Redis user in REDIS_URL lacks a permission the exporter needs"),
)


def misconfiguration(exc: BaseException) -> str | None:
    """Why the store refuses this configuration, or None when `exc` looks like an outage."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AuthenticationError):
            return "Redis refused the user or password in REDIS_URL"
        if isinstance(seen, ResponseError):
            text = str(seen)
            for marker, meaning in _REFUSALS:
                if marker in text:
                    return f"{meaning} (Redis said: {text.strip()[:120]})"
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = ["misconfiguration"]
