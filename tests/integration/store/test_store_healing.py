"""The store's client is rebuilt from scratch when its calls keep failing while the servers
answer, and only then: a real redis-server and a real Redis Cluster, with a client whose state
was made stale on purpose (as a node replacement or a broken connection leaves redis-py's)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from exporter.events import parse_event
from exporter.store import StoreUnavailable
from exporter.store.connection import RedisConnection
from exporter.store.options import StoreOptions
from exporter.store.redis import RedisStore
from tests.redis_cluster import RedisClusterNodes, cluster_port
from tests.servers import RedisServer, free_port
from tests.store_support import current_client, redis_store

_EVENT = parse_event(b'{"type": "purchase", "value": 2.5, "occurred_at": "2026-12-01 10:00:00"}')


def _prefix() -> str:
    return f"heal-{uuid.uuid4().hex[:8]}"


async def _counted(store: RedisStore) -> int:
    return sum(totals.count for totals in (await store.snapshot()).types)


async def _dial_nowhere(client: object) -> None:
    """Make a single-node client's every new connection dial a port nothing listens on."""
    assert isinstance(client, Redis)
    pool = client.connection_pool
    await pool.disconnect()
    pool.connection_kwargs["port"] = free_port()
    pool.reset()  # type: ignore[no-untyped-call]


def _rebuilt_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "rebuilt the Redis client" in r.getMessage()]


async def test_a_client_dialling_a_dead_address_is_rebuilt_once_the_server_answers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client whose pool dials an address nothing listens on fails every call although the
    Redis of REDIS_URL answers: the failing call rebuilds it (one warning naming the cause), and
    the next call goes through on a new client."""
    store = redis_store(redis_server.url, prefix=_prefix())
    try:
        await store.apply([("id:1", _EVENT)])
        stale = await current_client(store)
        assert stale is not None
        await _dial_nowhere(stale)
        with caplog.at_level(logging.WARNING), pytest.raises(StoreUnavailable, match="Error 111"):
            await store.apply([("id:2", _EVENT)])
        assert store.connection.rebuilds == 1
        (line,) = _rebuilt_lines(caplog)
        assert "Error 111" in line.__dict__["cause"]
        await store.apply([("id:2", _EVENT)])
        assert await _counted(store) == 2
        assert await current_client(store) is not stale
    finally:
        await store.close()


async def test_an_outage_is_waited_out_without_rebuilding(fresh_redis_server: RedisServer) -> None:
    """While the server itself is down nothing answers a fresh connection either, so the client
    is kept; once the server is back redis-py reconnects and the same client carries on."""
    store = redis_store(fresh_redis_server.url, prefix=_prefix(), timeout_seconds=1.0)
    try:
        await store.apply([("id:1", _EVENT)])
        client = await current_client(store)
        fresh_redis_server.kill()
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                await store.apply([("id:2", _EVENT)])
        fresh_redis_server.start()
        await store.apply([("id:2", _EVENT)])
        assert await _counted(store) == 2
        assert store.connection.rebuilds == 0
        assert await current_client(store) is client
    finally:
        await store.close()


async def test_a_cluster_client_with_a_topology_that_no_longer_exists_is_rebuilt(
    redis_cluster: RedisClusterNodes, caplog: pytest.LogCaptureFixture
) -> None:
    """A cluster client that knows only nodes that are gone (as after every node it knew was
    replaced) cannot find the cluster again by itself: redis-py re-reads the topology only from
    the nodes it holds. The store rebuilds it from REDIS_URL's nodes, which answer, and goes on
    exactly where it was."""
    store = redis_store(redis_cluster.url(), prefix=_prefix(), shards=4)
    try:
        await store.apply([("id:1", _EVENT), ("id:2", _EVENT)])
        stale = await current_client(store)
        assert isinstance(stale, RedisCluster)
        gone = ClusterNode("127.0.0.1", cluster_port())
        manager = stale.nodes_manager
        manager.startup_nodes = {gone.name: gone}
        manager.nodes_cache = {gone.name: gone}
        manager.slots_cache = {slot: [gone] for slot in range(16384)}
        manager.default_node = gone
        with caplog.at_level(logging.WARNING), pytest.raises(StoreUnavailable):
            await store.apply([("id:3", _EVENT)])
        assert store.connection.rebuilds == 1
        (line,) = _rebuilt_lines(caplog)
        assert "all answering" in line.__dict__["answering"]
        await store.apply([("id:3", _EVENT), ("id:1", _EVENT)])  # id:1 again: a duplicate
        assert await _counted(store) == 3
    finally:
        await store.close()


async def test_rebuilds_are_spaced_while_the_new_client_fails_too(
    redis_server: RedisServer,
) -> None:
    """Calls failing together rebuild once; a rebuilt client that fails as well is rebuilt again
    only after the check interval and the backoff (a second here), not on every call."""
    now = [100.0]
    connection = RedisConnection(redis_server.url, clock=lambda: now[0])
    store = RedisStore(connection, StoreOptions(prefix=_prefix()))

    async def sabotage() -> None:
        client = await current_client(store)
        assert client is not None
        await _dial_nowhere(client)

    async def ping_fails() -> None:
        with pytest.raises(StoreUnavailable):
            await store.ping()

    try:
        await store.ping()
        await sabotage()
        await asyncio.gather(*(ping_fails() for _ in range(5)))
        assert connection.rebuilds == 1
        await sabotage()
        now[0] += 0.5
        await ping_fails()
        assert connection.rebuilds == 1, "rebuilt again within a second"
        now[0] += 1.0
        await ping_fails()
        assert connection.rebuilds == 2
        await store.ping()
    finally:
        await store.close()
