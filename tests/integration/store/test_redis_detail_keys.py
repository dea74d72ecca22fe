"""The Redis store's keys of dimensions and value buckets (decisions 0020, 0021): each on its tag's
slot, removed by a reset with one shard and with several, and a sum past int64 in one value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from exporter.events import Event
from exporter.store.detail import CountingConfig, Tally
from exporter.store.redis import RedisStore
from tests.store_support import unique_prefix

TWO = CountingConfig(("channel", "country"))


def dims(kind: str, micros: int, channel: str, country: str) -> Event:
    return Event(kind, micros, datetime.now(UTC), None, (channel, country))


async def names(client: aioredis.Redis, prefix: str) -> set[str]:
    keys = await client.keys(f"{{{prefix}*")
    return {k.decode() if isinstance(k, bytes) else k for k in keys}


@pytest.mark.parametrize("shards", [1, 3])
async def test_a_reset_removes_every_detail_joint_and_admission_key(
    redis_client: aioredis.Redis, open_store: Callable[..., RedisStore], shards: int
) -> None:
    """After events with dimensions and buckets, the detail and joint hashes, their index, the
    value and combination sets and their index exist, each on its tag's slot; after a reset
    none of them is left (with K shards once the old generation is cleared)."""
    prefix = unique_prefix()
    store = open_store(prefix=prefix, shards=shards, counting=TWO)
    await store.apply(
        [(f"msg:{n}", dims(("a", "b")[n % 2], n * 1_000_000, "web", f"C{n}")) for n in range(12)]
    )
    before = await names(redis_client, prefix)
    for kind in ("detail", "joint", "detail-index", "values", "combos", "admissions"):
        assert any(f":{kind}" in key for key in before), kind
    for key in before:
        tag = key[: key.index("}") + 1]
        assert key_slot(key.encode()) == key_slot(tag.encode())
    await store.reset()
    after = await names(redis_client, prefix)
    left = {
        key
        for key in after
        for kind in ("detail", "joint", "values", "combos", "admissions")
        if f":{kind}" in key
    }
    assert left == set()
    assert (await store.detail()).types == ()


async def test_a_value_whose_sum_passes_int64_leaves_that_value_alone(
    open_store: Callable[..., RedisStore],
) -> None:
    """Values of both signs may keep a type's total in range while one value's sum passes int64:
    that value's cell is left unchanged (its events in the breakdown's unattributed part), the
    other values and the totals are exact, and the call is not aborted."""
    store = open_store(prefix=unique_prefix(), counting=CountingConfig(("country",)))
    big = 5 * 10**18 * 1_000_000  # 5e18 whole units, in millionths
    for n in range(2):
        result = await store.apply(
            [
                (f"msg:p{n}", Event("t", big, datetime.now(UTC), None, ("NL",))),
                (f"msg:m{n}", Event("t", -big, datetime.now(UTC), None, ("DE",))),
            ]
        )
        assert result.outcomes == ("applied", "applied")
    totals = (await store.snapshot()).get("t")
    assert totals is not None
    assert (totals.count, totals.sum_micros) == (4, 0)
    breakdown = await store.breakdown("t", "country")
    assert breakdown is not None
    by_value = {v.value: v.tally for v in breakdown.values}
    # The first call's cells fit (5e18 each); the second call would take both past 9.2e18.
    assert by_value == {"NL": Tally(1, big), "DE": Tally(1, -big)}
    assert breakdown.unattributed == Tally(2, 0)
