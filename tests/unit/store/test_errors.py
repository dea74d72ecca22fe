"""Which Redis errors pause the processor as outages and which as refusals someone must fix."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from exporter.store import StoreRefused
from exporter.store.errors import store_error


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."),
        TimeoutError("Timeout reading from 127.0.0.1:6379"),
        BusyLoadingError("Redis is loading the dataset in memory"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        RedisClusterException("Redis Cluster cannot be connected."),
    ],
)
def test_errors_that_heal_by_waiting_are_outages(error: RedisError) -> None:
    """Connection loss, timeouts, LOADING, TRYAGAIN and an unreachable cluster are outages."""
    classified = store_error(error, "Redis apply failed")
    assert not isinstance(classified, StoreRefused)
    assert str(classified).startswith("Redis apply failed: ")


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (ReadOnlyError("You can't write against a read only replica."), "READONLY"),
        (OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."), "OOM"),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), "WRONGTYPE"),
        (ResponseError("Error running script (call to f_x): @user_script:3: bad"), "script"),
        (AuthenticationError("invalid username-password pair or user is disabled."), "WRONGPASS"),
        (AuthenticationError("Authentication required."), "NOAUTH"),
        (ClusterDownError("The cluster is down"), "CLUSTERDOWN"),
    ],
)
def test_errors_someone_must_fix_are_refusals_named_by_their_code(
    error: RedisError, named: str
) -> None:
    """READONLY, OOM, WRONGTYPE, script errors, refused credentials and CLUSTERDOWN are refusals,
    and the message carries the Redis error code an operator searches for."""
    classified = store_error(error, "Redis apply failed")
    assert isinstance(classified, StoreRefused)
    assert named in str(classified)
