"""The Redis store reuses its last decoded snapshot only while the totals are unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store.redis import RedisStore

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


async def test_unchanged_totals_reuse_the_snapshot_and_changes_are_seen(
    redis_client: aioredis.Redis,
    open_store: Callable[..., RedisStore],
) -> None:
    """Reads with no write between share one snapshot; any write, from any store, is seen."""
    prefix = f"rc-{uuid.uuid4().hex[:8]}"
    reader = open_store(prefix=prefix)
    writer = open_store(prefix=prefix)  # another replica writing the same totals
    await writer.apply([("msg:1", Event("page", 1_500_000, WHEN))])
    first = await reader.snapshot()
    assert await reader.snapshot() is first
    await writer.apply([("msg:2", Event("page", 1, WHEN))])
    after_write = await reader.snapshot()
    page = after_write.get("page")
    assert page is not None
    assert (page.count, page.sum_micros) == (2, 1_500_001)
    await writer.reset()
    assert (await reader.snapshot()).types == ()
