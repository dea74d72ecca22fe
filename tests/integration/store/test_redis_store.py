"""Redis-only behaviour of the store: failures, overflow, key layout and memory per identity."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from exporter.events import Event
from exporter.store import MAX_ABS_SUM_UNITS, StoreUnavailable
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from tests.polling import eventually
from tests.servers import RedisServer, two_redis_servers
from tests.store_support import DEFAULT_KEYS, redis_store

WHEN = datetime(2020, 10, 6, tzinfo=UTC)


def event(kind: str, micros: int) -> Event:
    return Event(type=kind, value_micros=micros, occurred_at=WHEN)


async def test_unreachable_redis_raises_one_clear_error(fresh_redis_server: RedisServer) -> None:
    """With Redis down, every call raises StoreUnavailable; after restart the store works again."""
    store = redis_store(fresh_redis_server.url, timeout_seconds=1)
    await store.apply([("msg:1", event("a", 1_000_000))])
    fresh_redis_server.kill()
    with pytest.raises(StoreUnavailable):
        await store.apply([("msg:2", event("a", 1_000_000))])
    with pytest.raises(StoreUnavailable):
        await store.snapshot()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.reset()
    fresh_redis_server.start()
    await store.apply([("msg:2", event("a", 1_000_000))])
    totals = (await store.snapshot()).get("a")
    assert totals is not None
    # Append-only with fsync on every write: the event applied before the crash survived it.
    assert totals.count == 2
    await store.close()


async def test_sum_overflow_refuses_only_that_type(
    redis_client: aioredis.Redis, open_store: Callable[..., RedisStore]
) -> None:
    """A batch that would push a type's sum past the 64-bit bound is refused for that type only."""
    store = open_store()
    await store.apply([("msg:0", event("big", 1_000_000))])
    await redis_client.hset(DEFAULT_KEYS.legacy_totals, "units:big", str(MAX_ABS_SUM_UNITS - 10))
    # 11,000 units past the bound: Lua compares in doubles, which are exact to 1,024 units here.
    result = await store.apply(
        [("msg:1", event("big", 11_000 * 1_000_000)), ("msg:2", event("small", 5))]
    )
    assert result.outcomes == ("sum_overflow", "applied")
    big = (await store.snapshot()).get("big")
    assert big is not None
    assert big.count == 1
    assert big.sum_micros == (MAX_ABS_SUM_UNITS - 10) * 1_000_000
    retry = await store.apply([("msg:1", event("big", 9 * 1_000_000))])
    assert retry.outcomes == ("applied",)


async def test_memory_store_refuses_overflow_the_same_way() -> None:
    """The in-memory store applies the same bound as Redis."""
    store = MemoryStore()
    limit_micros = MAX_ABS_SUM_UNITS * 1_000_000
    await store.apply([("msg:0", event("big", limit_micros - 10_000_000))])
    result = await store.apply(
        [("msg:1", event("big", 11_000 * 1_000_000)), ("msg:2", event("x", 1))]
    )
    assert result.outcomes == ("sum_overflow", "applied")


async def test_every_key_shares_one_cluster_slot(
    redis_client: aioredis.Redis, open_store: Callable[..., RedisStore]
) -> None:
    """With one shard all keys live under the prefix's hash tag (one cluster slot), named as before
    shards existed, plus the recorded shard count, and the value buckets' detail hash per type
    with their index (decision 0021)."""
    store = open_store(prefix="shop")
    await store.apply([(f"msg:{i}", event(f"t{i % 3}", i)) for i in range(20)])
    keys = [k.decode() if isinstance(k, bytes) else k for k in await redis_client.keys("*")]
    assert {"{shop}:totals", "{shop}:types", "{shop}:shards", "{shop}:detail-index"} < set(keys)
    assert {"{shop}:detail:t0", "{shop}:detail:t1", "{shop}:detail:t2"} < set(keys)
    assert len(keys) == 20 + 7
    assert all(k.startswith("{shop}:") for k in keys)
    assert len({key_slot(k.encode()) for k in keys}) == 1


async def test_memory_per_identity_is_small_and_bounded(
    redis_client: aioredis.Redis, open_store: Callable[..., RedisStore]
) -> None:
    """Each remembered identity costs a bounded number of bytes, and expires with the window."""
    store = open_store(dedupe_window_seconds=1)
    await store.apply([("msg:warm", event("a", 1))])
    before = int((await redis_client.info("memory"))["used_memory"])
    ids = [f"msg:{i:08d}-0000-0000-0000-000000000000" for i in range(20_000)]
    for start in range(0, len(ids), 1000):
        await store.apply([(i, event("a", 1)) for i in ids[start : start + 1000]])
    after = int((await redis_client.info("memory"))["used_memory"])
    per_identity = (after - before) / len(ids)
    # Measured about 150 bytes for a 40-character identity (docs/decisions/0001).
    assert 40 < per_identity < 250, per_identity

    # The window is one second; Redis's active expiry then reclaims the identities (the totals,
    # the type set, the recorded shard count, the type's value buckets and their index stay)
    # without any reads.
    await eventually(
        redis_client.dbsize,
        until=lambda keys: keys <= 5,
        timeout=15,
        interval=0.2,
        message="at most 5 keys left after the window",
    )


async def test_a_batch_no_replica_acknowledged_is_applied_but_reported_unavailable(
    redis_server: RedisServer,
) -> None:
    """EXPORTER_REDIS_MIN_REPLICAS=1 on a Redis without replicas: the batch is applied (its
    redelivery is a duplicate) but the call fails, so the processor does not delete it."""
    prefix = f"wait-{uuid.uuid4().hex[:8]}"
    store = redis_store(redis_server.url, prefix=prefix, min_replicas=1, replica_timeout_ms=50)
    try:
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            await store.apply([("msg:1", event("a", 1))])
        alone = redis_store(redis_server.url, prefix=prefix)
        assert (await alone.apply([("msg:1", event("a", 1))])).outcomes == ("duplicate",)
        await alone.close()
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            await store.probe_write()
    finally:
        await store.close()


async def test_a_batch_a_replica_acknowledged_is_applied(tmp_path: Path) -> None:
    """With a replica linked, WAIT counts it and the batch is applied and acknowledged."""
    with two_redis_servers(tmp_path) as (primary, replica):
        client = aioredis.Redis.from_url(replica.url)
        await client.replicaof("127.0.0.1", str(primary.port))
        store = redis_store(primary.url, min_replicas=1, replica_timeout_ms=2000)
        try:

            async def linked() -> bool:
                return bool((await client.info("replication"))["master_link_status"] == "up")

            await eventually(linked, timeout=60, interval=0.1, message="the replica linked")
            assert (await store.apply([("msg:1", event("a", 5))])).outcomes == ("applied",)
            await store.probe_write()
        finally:
            await store.close()
            await client.aclose()
