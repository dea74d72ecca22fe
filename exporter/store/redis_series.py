"""Event-time buckets in Redis (decision 0008): how the apply script is told, how they are read.

One hash per type and UTC hour (named by `ShardKeys.bucket`), one field per minute of the hour,
`<m>` = "<count> <sum in millionths>", plus `u<m>` and `f<m>` (whole units, millionths) for
what Lua's doubles cannot add exactly: as exact as the totals at any size. Each hash carries the
shard's hash tag and reset generation, as its partial totals do, so a shard's buckets live with
its totals and a reader sums the partial buckets of every shard of one generation.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from exporter.events import MICROS_PER_UNIT, Event
from exporter.store import Outcome
from exporter.store.keys import ShardKeys
from exporter.store.series import HOUR, MinuteTotals, SeriesPolicy, merge

NO_BUCKET = "0 0"


def bucket_marks(
    shard: ShardKeys,
    *,
    generation: int,
    policy: SeriesPolicy,
    chunk: Sequence[tuple[str, Event]],
    minutes: Sequence[int | None] | None,
) -> tuple[list[str], list[str | bytes], str]:
    """Per event "<bucket> <minute of hour>", the keys to declare (index first), their expiries."""
    if minutes is None:
        return [NO_BUCKET] * len(chunk), [], ""
    # Numbered by (type, hour): a call's events share a few buckets, whose names are made once.
    numbers: dict[tuple[str, int], int] = {}
    bucket_keys: list[str | bytes] = []
    expiries: list[str] = []
    marks = []
    for (_, event), minute in zip(chunk, minutes, strict=True):
        if minute is None:
            marks.append(NO_BUCKET)
            continue
        hour, offset = divmod(minute, 60)
        number = numbers.get((event.type, hour))
        if number is None:
            number = numbers[event.type, hour] = len(numbers) + 1
            bucket_keys.append(shard.bucket(generation, event.type, hour))
            # A bucket hash lives until its last minute has passed the retention.
            expiries.append(str((hour + 1) * HOUR + policy.retention_seconds))
        marks.append(f"{number} {offset}")
    keys: list[str | bytes] = [shard.bucket_index(generation), *bucket_keys] if numbers else []
    return marks, keys, " ".join(expiries)


def unbucketed_positions(
    outcomes: Sequence[Outcome], minutes: Sequence[int | None]
) -> tuple[int, ...]:
    """Positions of applied events that had no bucket to go to."""
    return tuple(
        i
        for i, (outcome, minute) in enumerate(zip(outcomes, minutes, strict=True))
        if minute is None and outcome == "applied"
    )


async def read_buckets(
    client: aioredis.Redis | RedisCluster,
    shards: Sequence[ShardKeys],
    *,
    generation: int,
    event_type: str,
    first: int,
    end: int,
) -> dict[int, MinuteTotals]:
    """The minutes [first, end) of one type, summed over every shard's buckets of `generation`.

    One HGETALL per tag and UTC hour, all in one round trip; the result may hold minutes of those
    hours outside [first, end).
    """
    hours = range(first // 60, (end - 1) // 60 + 1)
    # A cluster pipeline sends each key to its slot's master, the masters in parallel. Errors are
    # the caller's to classify (RedisStore runs every call through one place).
    async with client.pipeline(transaction=False) as pipe:
        for shard in shards:
            for hour in hours:
                pipe.hgetall(shard.bucket(generation, event_type, hour))
        replies: list[dict[bytes, bytes]] = await pipe.execute()
    return merge(
        _decode_hour(hours[number % len(hours)], raw) for number, raw in enumerate(replies)
    )


def _decode_hour(hour: int, raw: dict[bytes, bytes]) -> dict[int, MinuteTotals]:
    counts: dict[int, int] = {}
    micros: dict[int, int] = {}
    for key, value in raw.items():
        kind = key[:1]
        if kind == b"u":
            offset = int(key[1:])
            micros[offset] = micros.get(offset, 0) + int(value) * MICROS_PER_UNIT
        elif kind == b"f":
            offset = int(key[1:])
            micros[offset] = micros.get(offset, 0) + int(value)
        else:
            offset = int(key)
            count, _, total = value.partition(b" ")
            counts[offset] = int(count)
            micros[offset] = micros.get(offset, 0) + int(total)
    first = hour * 60
    return {
        first + offset: MinuteTotals(count, micros.get(offset, 0))
        for offset, count in counts.items()
    }


__all__ = ["bucket_marks", "read_buckets", "unbucketed_positions"]
