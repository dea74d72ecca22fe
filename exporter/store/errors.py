"""Which Redis errors are outages (they heal by waiting) and which need someone to act."""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from exporter.store import StoreRefused, StoreUnavailable

REDIS_ERRORS = (RedisError, RedisClusterException)
"""What redis-py raises: its cluster client's own errors do not derive from RedisError."""


def store_error(exc: RedisError | RedisClusterException, doing: str) -> StoreUnavailable:
    """`exc` as the store's error: `StoreRefused` when waiting alone will not clear it.

    Connection loss, timeouts, a node still loading its data and TRYAGAIN during a slot move heal
    by themselves, and so does a cluster the client cannot reach or map at the moment (a failover
    in progress). Whatever Redis answered with an error (READONLY, OOM, WRONGTYPE, a script
    error, NOAUTH/WRONGPASS, CLUSTERDOWN, redirections that never settle) needs an operator, or at
    least a cluster that is whole again, and is named with Redis's own words.
    """
    if isinstance(exc, BusyLoadingError | TryAgainError):
        return StoreUnavailable(f"{doing}: {exc}")
    # Refused credentials arrive as connection errors in redis-py; they never heal by waiting.
    if isinstance(exc, AuthenticationError | AuthorizationError | ResponseError | ClusterError):
        return StoreRefused(f"{doing}: {_named(exc)}")
    return StoreUnavailable(f"{doing}: {exc}")


def _named(exc: RedisError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        auth = "NOAUTH" if "required" in text.lower() else "WRONGPASS"
        return f"{auth} {text} (check the password in REDIS_URL)"
    # redis-py drops the error code of a few replies it turns into classes; put it back.
    codes = {"ReadOnlyError": "READONLY", "ClusterDownError": "CLUSTERDOWN"}
    code = codes.get(type(exc).__name__)
    return text if code is None or text.startswith(code) else f"{code} {text}"


__all__ = ["REDIS_ERRORS", "store_error"]
