"""The one place that tells what a Redis error means: an outage (it heals by waiting) or a refusal
(someone must act), whether a fresh client could clear it, and what an operator should change.

The processor, `/ready`, `/health` and `/stats` all see the store's errors through this module;
the API only adds its own wording. Classes first: redis-py's exception types say most of it, and
message text is read only where redis-py has no type (a database number out of range, NOAUTH
against WRONGPASS).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis

# redis-py's ConnectionError and TimeoutError, not the builtins of the same names.
from redis.exceptions import (
    AskError,
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    CrossSlotTransactionError,
    InvalidResponse,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from exporter.store import StoreRefused, StoreUnavailable

REDIS_ERRORS = (RedisError, RedisClusterException)
"""What redis-py raises: its cluster client's own errors do not derive from RedisError."""

_REDIS_PACKAGE: Final = str(Path(redis.__file__).parent)
# Replies redis-py turns into classes without keeping their code; an operator searches for it.
_CODES: Final = {
    ReadOnlyError: "READONLY",
    ClusterDownError: "CLUSTERDOWN",
    OutOfMemoryError: "OOM",
    NoPermissionError: "NOPERM",
}
# Redis's own words for a database that does not exist: no redis-py class carries them.
_NO_SUCH_DATABASE: Final = ("DB index is out of range", "invalid DB index")
# What an operator must change when Redis refuses the configuration itself.
_NO_SUCH_DATABASE_ADVICE: Final = "the database number in REDIS_URL does not exist on this Redis"
_MISSING_CREDENTIALS: Final = "Redis requires a password and REDIS_URL gives none"
_REFUSED_CREDENTIALS: Final = "Redis refused the user or password in REDIS_URL"
_NO_PERMISSION: Final = (
    "the Redis user in REDIS_URL lacks a permission the exporter needs (scripts, WAIT, INFO)"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """What one error means for the store and the people running it."""

    refused: bool
    """Waiting alone will not clear it: logged as an error, named on /ready and /health."""
    words: str
    """Redis's (or redis-py's) own words, with the Redis error code put back."""
    reconnect: bool = False
    """A client rebuilt from scratch may clear it: the connection, the topology or the client's
    own state is what failed, not what Redis answered about the data."""
    advice: str | None = None
    """For a refused configuration: what to change, in an operator's words."""
    out_of_memory: bool = False
    """Redis refused a write for lack of memory: writes wait for headroom (decision 0017)."""

    def error(self, doing: str) -> StoreUnavailable:
        """The store's exception for this fault, met while `doing`."""
        message = f"{doing}: {self.words}"
        if self.refused:
            return StoreRefused(message, advice=self.advice)
        return StoreUnavailable(message)


def classify(exc: BaseException) -> Fault:
    """What `exc`, raised by a store call into redis-py, means."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        if "required" in text.lower():
            return Fault(True, f"NOAUTH {text}", advice=_MISSING_CREDENTIALS)
        return Fault(True, f"WRONGPASS {text}", advice=_REFUSED_CREDENTIALS)
    if isinstance(exc, AuthorizationError | NoPermissionError):
        return Fault(True, _coded(exc, text), advice=_NO_PERMISSION)
    if isinstance(exc, BusyLoadingError | TryAgainError):
        return Fault(False, text)  # loading its data, or a slot being moved: it passes
    if isinstance(exc, ClusterDownError | AskError | RedisClusterException):
        # A failover under way, redirections that did not settle, a topology that could not be
        # read: the cluster heals, and a client holding an old map of it may not.
        return Fault(False, _coded(exc, text), reconnect=True)
    if isinstance(exc, ReadOnlyError):
        # A replica, or a primary demoted by a failover behind a DNS name that has since moved:
        # new connections find the new primary, so rebuilding is worth trying.
        return Fault(True, _coded(exc, text), reconnect=True)
    if isinstance(exc, ResponseError):
        if any(marker in text for marker in _NO_SUCH_DATABASE):
            return Fault(True, text, advice=_NO_SUCH_DATABASE_ADVICE)
        # OOM, WRONGTYPE, a script error, cross-slot keys: Redis answered about the data.
        return Fault(True, _coded(exc, text), out_of_memory=isinstance(exc, OutOfMemoryError))
    if isinstance(exc, CrossSlotTransactionError):
        return Fault(True, text)
    if isinstance(exc, asyncio.TimeoutError):  # the builtin: a deadline of ours ran out
        return Fault(False, "no answer within the store's deadline", reconnect=True)
    if isinstance(exc, ConnectionError | TimeoutError | InvalidResponse | OSError):
        return Fault(False, text, reconnect=True)
    if raised_inside_redis_py(exc):
        # redis-py's own state broke (seen: a cluster pipeline whose connection lost its writer
        # after a node restart); only a new client clears that.
        words = f"the Redis client failed inside redis-py ({type(exc).__name__}: {text})"
        return Fault(False, words, reconnect=True)
    return Fault(False, text, reconnect=isinstance(exc, RedisError))


def is_redis_failure(exc: BaseException) -> bool:
    """Whether `exc` is the store's I/O failing (redis-py, the network, a deadline), not a bug of
    ours: only those become StoreUnavailable; anything else propagates as the bug it is."""
    return isinstance(exc, (*REDIS_ERRORS, OSError)) or raised_inside_redis_py(exc)


def raised_inside_redis_py(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc`'s traceback is redis-py's code, not ours."""
    trace = exc.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return trace.tb_frame.f_code.co_filename.startswith(_REDIS_PACKAGE)


def store_error(exc: BaseException, doing: str) -> StoreUnavailable:
    """`exc` as the store's error: `StoreRefused` when waiting alone will not clear it."""
    return classify(exc).error(doing)


def _coded(exc: BaseException, text: str) -> str:
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return text if text.startswith(code) else f"{code} {text}"
    return text


__all__ = [
    "REDIS_ERRORS",
    "Fault",
    "classify",
    "is_redis_failure",
    "raised_inside_redis_py",
    "store_error",
]
