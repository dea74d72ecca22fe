"""The one classifier of Redis errors: outage or refusal, whether a new client may clear it, and
what an operator should change, from redis-py's exception types."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from exporter.store import StoreRefused
from exporter.store.errors import classify, is_redis_failure, raised_inside_redis_py


@pytest.mark.parametrize(
    ("error", "reconnect"),
    [
        (RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."), True),
        (TimeoutError("Timeout reading from 127.0.0.1:6379"), True),
        (ConnectionResetError("Connection reset by peer"), True),
        (BusyLoadingError("Redis is loading the dataset in memory"), False),
        (TryAgainError("Multiple keys request during rehashing of slot"), False),
        (RedisClusterException("Redis Cluster cannot be connected."), True),
        (ClusterDownError("The cluster is down"), True),
        (SlotNotCoveredError("Slot 5000 is not covered by the cluster."), True),
        (MovedError("3999 127.0.0.1:6381"), True),
    ],
)
def test_errors_that_heal_by_waiting_are_outages(error: BaseException, reconnect: bool) -> None:
    """Connection loss, timeouts, LOADING, TRYAGAIN and a cluster failing over (CLUSTERDOWN, an
    uncovered slot, redirections that did not settle) are outages; those a client holding a
    stale connection or map may not get over are marked for a rebuilt client."""
    fault = classify(error)
    assert not fault.refused
    assert fault.reconnect is reconnect
    classified = classify(error).error("Redis apply failed")
    assert not isinstance(classified, StoreRefused)
    assert str(classified).startswith("Redis apply failed: ")


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (ReadOnlyError("You can't write against a read only replica."), "READONLY"),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "OOM"),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), "WRONGTYPE"),
        (ResponseError("Error running script (call to f_x): @user_script:3: bad"), "script"),
        (AuthenticationError("invalid username-password pair or user is disabled."), "WRONGPASS"),
        (AuthenticationError("Authentication required."), "NOAUTH"),
        (NoPermissionError("this user has no permissions to run the 'evalsha' command"), "NOPERM"),
        (ResponseError("DB index is out of range"), "DB index"),
    ],
)
def test_errors_someone_must_fix_are_refusals_named_by_their_code(
    error: RedisError, named: str
) -> None:
    """READONLY, OOM, WRONGTYPE, script errors, refused credentials, a missing permission and a
    database that does not exist are refusals, carrying the code an operator searches for."""
    classified = classify(error).error("Redis apply failed")
    assert isinstance(classified, StoreRefused)
    assert named in str(classified)


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (AuthenticationError("Authentication required."), "requires a password"),
        (AuthenticationError("invalid username-password pair"), "refused the user or password"),
        (ResponseError("DB index is out of range"), "database number in REDIS_URL"),
        (ResponseError("ERR invalid DB index"), "database number in REDIS_URL"),
        (NoPermissionError("no permissions to run the 'evalsha' command"), "lacks a permission"),
    ],
)
def test_a_refused_configuration_says_what_to_change(error: RedisError, advice: str) -> None:
    """Refusals of the configuration itself carry the operator's fix; others carry none."""
    classified = classify(error).error("Redis is not reachable")
    assert isinstance(classified, StoreRefused)
    assert classified.configuration
    assert classified.advice is not None
    assert advice in classified.advice
    wrongtype = classify(ResponseError("WRONGTYPE Operation")).error("Redis apply failed")
    assert isinstance(wrongtype, StoreRefused)
    assert not wrongtype.configuration


def test_a_readonly_primary_is_refused_but_worth_a_new_client() -> None:
    """READONLY: a replica (someone must act) or a primary demoted behind a moved DNS name, which
    new connections get past; so it is a refusal that still asks for a rebuilt client."""
    fault = classify(ReadOnlyError("You can't write against a read only replica."))
    assert fault.refused
    assert fault.reconnect


async def test_an_error_raised_inside_redis_py_is_an_outage_for_a_new_client() -> None:
    """redis-py raising something not its own (its state broken) is told apart from our bugs:
    an outage that only a rebuilt client clears; the same error from our code is no store error."""
    with pytest.raises(AttributeError) as broken:
        # A connection without its writer, as a cluster pipeline left one after a node restart.
        await Connection()._send_packed_command([b"PING"])
    assert "writelines" in str(broken.value)
    assert raised_inside_redis_py(broken.value)
    assert is_redis_failure(broken.value)
    fault = classify(broken.value)
    assert not fault.refused
    assert fault.reconnect
    assert "inside redis-py (AttributeError" in fault.words

    with pytest.raises(AttributeError) as ours:
        None.writelines([])  # type: ignore[attr-defined]
    assert not raised_inside_redis_py(ours.value)
    assert not is_redis_failure(ours.value)
    assert not is_redis_failure(KeyError("ours"))
