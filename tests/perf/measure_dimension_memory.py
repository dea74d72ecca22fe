"""Redis memory per dimension combination, measured in the store's own keys (issues 27, 28).

Run: `uv run python -m tests.perf.measure_dimension_memory` (seconds; prints one JSON object).

The real `RedisStore` applies events into a private redis-server, and `MEMORY USAGE` (every
field counted, `SAMPLES 0`) reads what its hashes hold:
- the joint table (`ShardKeys.joint`): per combination `c|`, `u|`, `f|` and one `h|<le>|` field
  per occupied value bucket, 1,000 combinations in one hash per type and configuration;
- the marginals (`ShardKeys.detail`): per value of a dimension `c|`, `u|`, `f|`;
- a type's value histogram alone (no dimensions): its detail hash with every bucket occupied;
- what event-time series per combination would cost (not built): one hash per type, combination
  and UTC hour holding a `count micros` field per minute, as the per-type series hold, for the
  default 7-day retention (written directly, in that layout).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import redis
from redis.typing import EncodableT, FieldT

from exporter.events import Event
from exporter.store.detail import CountingConfig
from exporter.store.histograms import DEFAULT_BOUNDS, NO_BUCKETS
from exporter.store.keys import ShardKeys
from tests.servers import RedisServer
from tests.store_support import redis_store

COMBINATIONS: Final = 1000
RETENTION_HOURS: Final = 7 * 24
SAMPLED_HOURS: Final = 24  # event-time hashes written for a day, scaled to the retention
# A value in each default bucket, in millionths: the first `n` occupy `n` buckets.
BUCKET_VALUES: Final = (
    *(
        m * 1_000_000 - 10_000
        for m in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
    ),
    20_000 * 1_000_000,
)


def _used(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def _fill(url: str, prefix: str, *, buckets: int, dimensions: bool) -> None:
    """COMBINATIONS combinations of type `purchase`, each with events in `buckets` buckets."""
    counting = CountingConfig(
        ("channel", "country") if dimensions else (),
        max_values=10_000,
        max_combinations=10_000,
        buckets=DEFAULT_BOUNDS if buckets else NO_BUCKETS,
    )
    store = redis_store(url, prefix=prefix, counting=counting)
    now = datetime.now(UTC)
    try:
        batch = [
            (
                uuid.uuid4().hex,
                Event("purchase", BUCKET_VALUES[b], now, None,
                      (f"channel-{n % 7}", f"country-{n:03d}") if dimensions else ()),
            )
            for n in range(COMBINATIONS)
            for b in range(max(buckets, 1))
        ]  # fmt: skip
        for start in range(0, len(batch), 1000):
            await store.apply(batch[start : start + 1000])
    finally:
        await store.close()


def _measure(url: str, client: redis.Redis, buckets: int) -> dict[str, float]:
    prefix = f"mem{buckets}"
    asyncio.run(_fill(url, prefix, buckets=buckets, dimensions=True))
    shard = ShardKeys("{" + prefix + "}")
    joint = _used(client, shard.joint(0, "purchase", "channel,country"))
    detail = _used(client, shard.detail(0, "purchase"))
    return {"joint": joint / COMBINATIONS, "detail": detail / (COMBINATIONS + 7)}


def _series_per_combination(client: redis.Redis, rng: random.Random) -> float:
    """Bytes of a week of minute buckets of one combination (a day written, scaled by 7)."""
    sampled = 100
    before = _used_memory(client)
    with client.pipeline(transaction=False) as pipe:
        for n in range(sampled):
            for hour in range(SAMPLED_HOURS):
                minutes: dict[FieldT, EncodableT] = {
                    str(493_000 * 60 + hour * 60 + m): f"{rng.randint(1, 500)} "
                    f"{rng.randint(1, 99_999_999)}"
                    for m in range(60)
                }
                pipe.hset(f"{{exporter}}:series:purchase|c{n}:{493_000 + hour}", mapping=minutes)
        pipe.execute()
    per_day = (_used_memory(client) - before) / sampled
    return per_day * RETENTION_HOURS / SAMPLED_HOURS


def main() -> dict[str, Any]:
    """Start a private redis-server, write each layout, report bytes."""
    rng = random.Random(27)
    with tempfile.TemporaryDirectory(prefix="exporter-dim-memory-") as workdir:
        server = RedisServer(Path(workdir))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            measured = {b: _measure(server.url, client, b) for b in (0, 5, len(BUCKET_VALUES))}
            asyncio.run(_fill(server.url, "hist", buckets=len(BUCKET_VALUES), dimensions=False))
            histogram = _used(client, ShardKeys("{hist}").detail(0, "purchase"))
            result = {
                "measurement": "redis_memory_per_combination",
                "combinations": COMBINATIONS,
                "redis": client.info("server")["redis_version"],
                "joint_bytes_per_combination": {
                    f"{b}_buckets": round(m["joint"], 1) for b, m in measured.items()
                },
                # Marginals of 1,000 countries and 7 channels, buckets off.
                "marginal_bytes_per_value": round(measured[0]["detail"], 1),
                "type_histogram_bytes_all_buckets": histogram,
                "event_time_series_bytes_per_combination_7_days": round(
                    _series_per_combination(client, rng)
                ),
            }
            client.close()
        finally:
            server.stop()
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
