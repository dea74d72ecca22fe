"""Fixtures shared by every suite: real Redis and SQS servers, started once per session."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings

from exporter.store.redis import RedisStore
from tests.leak_guard import pytest_sessionfinish  # noqa: F401

# Hooks are found by name on this module: the session fails if a test leaked a process.
from tests.polling import TIMEOUT_SCALE, set_test_deadline
from tests.redis_cluster import RedisClusterNodes
from tests.servers import AWS_TEST_ENV, MotoServer, RedisServer
from tests.store_support import redis_store, unique_prefix
from tests.tls_certs import Certificates, make_certificates

# CI shares its machine: a load average of 10 on 2 cores has been seen. Hypothesis must judge the
# code, not the machine, so no per-example deadline and no "too slow" health check.
settings.register_profile(
    "shared-machine",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "shared-machine"))

for _name, _value in AWS_TEST_ENV.items():
    # boto3 must never find real credentials or a real region from the developer's machine.
    os.environ[_name] = _value


def pytest_configure(config: pytest.Config) -> None:
    """Stretch pytest-timeout's per-test limit with the suite's one knob for a slow machine."""
    # Runs before pytest-timeout reads its settings (conftest hooks are called first).
    if config.getoption("timeout", None) is None:
        ini = config.getini("timeout")
        if ini:
            config.option.timeout = float(ini) * TIMEOUT_SCALE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stretch per-test `timeout` marks the same way (they are written for an idle machine)."""
    if TIMEOUT_SCALE == 1:
        return
    for item in items:
        marker = item.get_closest_marker("timeout")
        if marker is not None and marker.args:
            item.add_marker(pytest.mark.timeout(marker.args[0] * TIMEOUT_SCALE), append=False)


@pytest.fixture(autouse=True)
def _test_deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let waits know when this test times out, so that they fail first and say what they
    waited for (pytest-timeout's kill prints only a stack)."""
    marker = request.node.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else None
    if limit is None:
        configured = request.config.getoption("timeout", None)
        limit = float(configured) if configured else None
    set_test_deadline(time.monotonic() + limit if limit else None)
    yield
    set_test_deadline(None)


@pytest.fixture(name="redis_server", scope="session")
def fixture_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests isolate themselves by key prefix or FLUSHALL."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="fresh_redis_server")
def fixture_fresh_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, append-only, for tests that kill and restart it."""
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.kill()


@pytest.fixture(name="redis_client")
async def fixture_redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's server, emptied before the test."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(name="open_store")
async def fixture_open_store(
    redis_server: RedisServer,
) -> AsyncIterator[Callable[..., RedisStore]]:
    """Opens Redis stores as the commands do (the session's server unless `url=` names another;
    StoreOptions' fields as keywords), and closes them after the test."""
    opened: list[RedisStore] = []

    def open_store(url: str | None = None, **options: Any) -> RedisStore:
        store = redis_store(url or redis_server.url, **options)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture(name="store")
def fixture_store(open_store: Callable[..., RedisStore]) -> RedisStore:
    """An empty Redis store of the test's own (a prefix no other test uses) on the session's
    server; a module that needs data in it overrides this fixture, asking for `store`."""
    return open_store(prefix=unique_prefix(), timeout_seconds=2.0)


@pytest.fixture(name="moto_server", scope="session")
def fixture_moto_server() -> Iterator[MotoServer]:
    """One moto SQS server for the session."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="sqs_endpoint")
def fixture_sqs_endpoint(moto_server: MotoServer) -> str:
    """The endpoint URL of an SQS server with no queues."""
    moto_server.reset()
    return moto_server.url


@pytest.fixture(name="redis_cluster", scope="session")
def fixture_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """One 3-master Redis Cluster for the session; tests isolate themselves by key prefix."""
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("cluster"), masters=3)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(name="certificates", scope="session")
def fixture_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """The TLS tests' certificates (a private CA, the server's, wrong ones, clients'), made once
    with openssl."""
    return make_certificates(tmp_path_factory.mktemp("tls"))
