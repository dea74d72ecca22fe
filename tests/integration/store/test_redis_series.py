"""Redis-only behaviour of the event-time buckets: their key layout, expiry and reset."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from redis.crc import key_slot

from exporter.events import Event
from exporter.store.keys import StoreKeys, shard_of
from exporter.store.redis import RedisStore
from exporter.store.series import HOUR, SeriesPolicy
from tests.store_support import script_calls


async def test_bucket_hashes_expire_once_their_hour_passes_retention(
    redis_client: aioredis.Redis,
    open_store: Callable[..., RedisStore],
) -> None:
    """A bucket hash's TTL ends one retention after the end of its UTC hour (Redis expires it)."""
    retention = 2 * HOUR
    store = open_store(series=SeriesPolicy(retention_seconds=retention))
    moment = datetime.now(UTC) - timedelta(minutes=10)
    await store.apply([("msg:1", Event("a", 1, moment))])
    hour = int(moment.timestamp() // HOUR)
    key = StoreKeys.build("exporter", 1).shards[0].bucket(0, "a", hour)
    expected = (hour + 1) * HOUR + retention - time.time()
    ttl = await redis_client.ttl(key)
    assert expected - 5 <= ttl <= expected + 5


async def test_buckets_share_the_totals_slot_and_reset_removes_every_one(
    redis_client: aioredis.Redis,
    open_store: Callable[..., RedisStore],
) -> None:
    """Bucket keys carry the totals' hash tag; reset deletes them all, the index included."""
    store = open_store(prefix="shop")
    now = datetime.now(UTC)
    await store.apply(
        [(f"msg:{h}", Event(f"t{h % 3}", 1, now - timedelta(hours=h))) for h in range(30)]
    )
    keys = await redis_client.keys("*")
    series_keys = [k for k in keys if b":series" in k or b"series-index" in k]
    assert len(series_keys) == 31  # 30 hours of buckets and the index
    assert {key_slot(k if isinstance(k, bytes) else k.encode()) for k in keys} == {
        key_slot(b"{shop}")
    }
    await store.reset()
    assert await redis_client.keys("*series*") == []


async def test_merged_calls_report_each_callers_own_unbucketed_events(
    redis_client: aioredis.Redis,
    open_store: Callable[..., RedisStore],
) -> None:
    """Concurrent batches share script calls; each learns which of *its* events had no bucket."""
    store = open_store()
    now = datetime.now(UTC)
    # Loads the script, so that each call below is one EVALSHA in Redis's command counts.
    await store.apply([("msg:warm-up", Event("warm", 1, now))])
    await redis_client.config_resetstat()
    old = now - timedelta(days=30)
    batches = [
        [(f"msg:{n}-{i}", Event("a", 1, old if i == n % 5 else now)) for i in range(5)]
        for n in range(20)
    ]
    results = await asyncio.gather(*(store.apply(batch) for batch in batches))
    assert await script_calls(redis_client) < len(batches)
    assert [result.unbucketed for result in results] == [(n % 5,) for n in range(20)]


async def test_with_shards_buckets_follow_their_shard_and_reset_drops_the_old_generation(
    redis_client: aioredis.Redis,
    open_store: Callable[..., RedisStore],
) -> None:
    """With K shards each bucket hash carries the tag of the shard that applied its events and
    the reset generation; a reset leaves no bucket of the old generation, and new buckets go to
    the new one."""
    shards = 4
    store = open_store(prefix="shop", shards=shards)
    keys = StoreKeys.build("shop", shards)
    now = datetime.now(UTC)
    minute = int(now.timestamp() // 60)
    hour = minute // 60
    identities = [f"msg:{i}" for i in range(40)]
    await store.apply([(identity, Event("a", 1, now)) for identity in identities])
    used = {shard_of(identity, shards) for identity in identities}
    buckets = {keys.shards[n].bucket(0, "a", hour).encode() for n in used}
    assert set(await redis_client.keys("*:series:*")) == buckets
    assert (await store.series("a", minute, minute + 1))[minute].count == 40

    await store.reset()
    assert await redis_client.keys("*series*") == []
    assert await store.series("a", minute, minute + 1) == {}
    await store.apply([("msg:new", Event("a", 1, now))])
    shard = keys.shards[shard_of("msg:new", shards)]
    assert await redis_client.keys("*series@*:a:*") == [shard.bucket(1, "a", hour).encode()]
    assert (await store.series("a", minute, minute + 1))[minute].count == 1


async def test_the_bucket_index_expires_with_its_last_bucket(
    redis_client: aioredis.Redis, open_store: Callable[..., RedisStore]
) -> None:
    """The index of bucket keys gets the expiry of its latest bucket, so it never outlives them."""
    retention = 2 * HOUR
    store = open_store(series=SeriesPolicy(retention_seconds=retention))
    now = datetime.now(UTC)
    await store.apply([("msg:old", Event("a", 1, now - timedelta(minutes=90)))])
    await store.apply([("msg:new", Event("a", 1, now))])
    index = StoreKeys.build("exporter", 1).shards[0].bucket_index(0)
    hour = int(now.timestamp() // HOUR)
    assert await redis_client.expiretime(index) == (hour + 1) * HOUR + retention
