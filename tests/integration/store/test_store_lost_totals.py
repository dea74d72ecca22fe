"""Totals that vanish are noticed: a writer, a reader and the write probe each find that Redis
lost what it held (emptied, or writes gone back after a failover), say so once, and count on
from zero; a reset is never taken for a loss; /stats's counting_since moves with either."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store.observer import StoreObserver
from exporter.store.redis import RedisStore
from exporter.store.totals_marker import TotalsLost
from tests.polling import eventually
from tests.servers import RedisServer, two_redis_servers
from tests.store_support import DEFAULT_KEYS, redis_store

WHEN = datetime(2026, 11, 26, tzinfo=UTC)


def event(kind: str, micros: int) -> Event:
    return Event(type=kind, value_micros=micros, occurred_at=WHEN)


def batch(start: int, count: int) -> list[tuple[str, Event]]:
    return [(f"msg:{i}", event("a", 1_000_000)) for i in range(start, start + count)]


def watched(url: str, lost: list[TotalsLost], shards: int = 1) -> RedisStore:
    return redis_store(url, shards=shards, observer=StoreObserver(totals_lost=lost.append))


@pytest.mark.parametrize("shards", [1, 3])
async def test_flushall_under_a_writer_and_a_reader_is_noticed_once_by_each(
    fresh_redis_server: RedisServer, shards: int, caplog: pytest.LogCaptureFixture
) -> None:
    """FLUSHALL between two batches: the writer's next apply and the reader's next read each
    report the loss once (an ERROR naming the shard and since when), the totals count from
    zero, and counting_since moves past the flush."""
    client = aioredis.Redis.from_url(fresh_redis_server.url)
    written: list[TotalsLost] = []
    read: list[TotalsLost] = []
    writer = watched(fresh_redis_server.url, written, shards=shards)
    reader = watched(fresh_redis_server.url, read, shards=shards)
    try:
        await writer.apply(batch(0, 30))
        before = await reader.snapshot()
        assert before.counting_since is not None
        await asyncio.sleep(0.01)
        flushed_at = datetime.now(UTC)
        await client.flushall()
        with caplog.at_level(logging.ERROR, logger="exporter.store.redis"):
            empty = await reader.snapshot()
            assert empty.types == ()
            await writer.apply(batch(100, 30))
            await writer.apply(batch(200, 30))
            after = await reader.snapshot()
        assert read
        assert written
        assert len(written) == len({loss.shard for loss in written})  # once per shard
        assert len(read) == len({loss.shard for loss in read})
        a = after.get("a")
        assert a is not None
        assert a.count == 60  # counting on from zero
        assert after.counting_since is not None
        assert after.counting_since >= flushed_at.replace(microsecond=0)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("Redis lost the totals of" in e and "counted since" in e for e in errors)
        since = before.counting_since.isoformat(timespec="seconds").replace("+00:00", "Z")
        assert any(since in e for e in errors), errors
    finally:
        await writer.close()
        await reader.close()
        await client.aclose()


@pytest.mark.parametrize("shards", [1, 3])
async def test_a_reset_is_not_a_loss(fresh_redis_server: RedisServer, shards: int) -> None:
    """DELETE /stats between batches: neither the writer nor the reader reports a loss, and with
    one shard counting_since is the moment of the reset."""
    lost: list[TotalsLost] = []
    writer = watched(fresh_redis_server.url, lost, shards=shards)
    reader = watched(fresh_redis_server.url, lost, shards=shards)
    try:
        await writer.apply(batch(0, 30))
        await reader.snapshot()
        await writer.probe_write()
        reset_at = time.time()
        await reader.reset()
        snapshot = await reader.snapshot()
        if shards == 1:
            assert snapshot.counting_since is not None
            assert abs(snapshot.counting_since.timestamp() - reset_at) < 5
        await writer.apply(batch(100, 30))
        await writer.probe_write()
        a = (await reader.snapshot()).get("a")
        assert a is not None
        assert a.count == 30
        assert lost == []
    finally:
        await writer.close()
        await reader.close()


async def test_an_idle_processor_finds_an_emptied_redis_with_its_probe(
    fresh_redis_server: RedisServer,
) -> None:
    """A processor with nothing to apply notices the loss at its next write probe (readiness)."""
    client = aioredis.Redis.from_url(fresh_redis_server.url)
    lost: list[TotalsLost] = []
    writer = watched(fresh_redis_server.url, lost)
    try:
        await writer.apply(batch(0, 5))
        await writer.probe_write()
        await client.flushall()
        await writer.probe_write()
        assert [loss.writes_now for loss in lost] == [None]
        await writer.apply(batch(10, 5))  # the marker begins again: no second report
        assert len(lost) == 1
    finally:
        await writer.close()
        await client.aclose()


async def test_a_failover_to_a_replica_that_had_not_caught_up_is_noticed(
    tmp_path: Path,
) -> None:
    """Batches the replica never received: once it is primary again with its older data, the
    count of writes goes back and the writer reports the loss (writes lost, not emptied)."""
    with two_redis_servers(tmp_path) as (primary, replica):
        on_primary = aioredis.Redis.from_url(primary.url)
        on_replica = aioredis.Redis.from_url(replica.url)
        lost: list[TotalsLost] = []
        writer = watched(primary.url, lost)
        try:
            await writer.apply(batch(0, 10))
            await on_replica.replicaof("127.0.0.1", str(primary.port))
            await _linked(on_replica, await on_primary.get(DEFAULT_KEYS.shard_count))
            await writer.apply(batch(10, 10))
            await _caught_up(on_primary, on_replica)
            await on_replica.replicaof("NO", "ONE")  # the replica stops receiving
            for start in range(20, 80, 10):  # batches only the old primary ever has
                await writer.apply(batch(start, 10))
            # The old primary follows the promoted replica (taking its older data), then is
            # promoted back: the data behind REDIS_URL is the replica's.
            await on_primary.replicaof("127.0.0.1", str(replica.port))
            await _resynced(on_primary)
            await on_primary.replicaof("NO", "ONE")
            await writer.apply(batch(100, 10))
            assert len(lost) == 1
            assert lost[0].writes_now is not None
            assert lost[0].writes_before > lost[0].writes_now
            assert "went back" in lost[0].describe()
        finally:
            await writer.close()
            await on_primary.aclose()
            await on_replica.aclose()


async def _link_status(client: aioredis.Redis) -> object:
    return (await client.info("replication")).get("master_link_status")


async def _linked(replica: aioredis.Redis, expected: object) -> None:
    async def linked() -> tuple[object, object]:
        return await _link_status(replica), await replica.get(DEFAULT_KEYS.shard_count)

    await eventually(
        linked,
        until=lambda seen: seen == ("up", expected),
        timeout=60,
        message="the replica linked",
    )


async def _caught_up(primary: aioredis.Redis, replica: aioredis.Redis) -> None:
    async def writes() -> tuple[object, object]:
        return (
            await primary.hget(DEFAULT_KEYS.legacy_totals, "@writes"),
            await replica.hget(DEFAULT_KEYS.legacy_totals, "@writes"),
        )

    await eventually(
        writes, until=lambda seen: seen[0] == seen[1], timeout=60, message="the replica caught up"
    )


async def _resynced(follower: aioredis.Redis) -> None:
    await eventually(
        lambda: _link_status(follower),
        until=lambda status: status == "up",
        timeout=60,
        message="the follower resynced",
    )
