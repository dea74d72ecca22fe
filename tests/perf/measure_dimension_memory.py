"""Redis memory per dimension combination, in the key layout decision 0020 designs (issue 27).

Run: `uv run python -m tests.perf.measure_dimension_memory` (seconds; prints one JSON object).

Not a benchmark of the store (the Redis store writes dimensions in issue 27/28 part 2, which
measures its own keys again): the hashes the design names are written here directly, with
realistic field values, into a private redis-server, and `used_memory` is read before and after.
- the joint table: per combination `c|`, `u|`, `f|` and one `h|<le>|` field per occupied value
  bucket, in one hash per type and configuration (1,000 combinations: hashtable encoding);
- the marginals: per value `c|`, `u|`, `f|` of one dimension in the type's detail hash;
- what event-time series per combination would cost (not built): one hash per type, combination
  and UTC hour holding a `count micros` field per minute, as the per-type series hold, for the
  default 7-day retention.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any, Final

import redis
from redis.typing import EncodableT, FieldT

from exporter.store.histograms import DEFAULT_BOUNDS
from tests.servers import RedisServer

COMBINATIONS: Final = 1000
RETENTION_HOURS: Final = 7 * 24
SAMPLED_HOURS: Final = 24  # event-time hashes written for a day, scaled to the retention


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _joint(client: redis.Redis, key: str, buckets_per_combination: int, rng: random.Random) -> None:
    texts = DEFAULT_BOUNDS.texts
    with client.pipeline(transaction=False) as pipe:
        for n in range(COMBINATIONS):
            combo = f"channel-{n % 7}|country-{n:03d}"
            fields: dict[FieldT, EncodableT] = {
                f"c|{combo}": rng.randint(1, 99_999),
                f"u|{combo}": rng.randint(1, 9_999_999),
                f"f|{combo}": rng.randint(1, 999_999),
            }
            for le in rng.sample(texts, buckets_per_combination):
                fields[f"h|{le}|{combo}"] = rng.randint(1, 9_999)
            pipe.hset(key, mapping=fields)
        pipe.execute()


def _per_combination(client: redis.Redis, buckets: int, rng: random.Random) -> float:
    before = _used(client)
    _joint(client, f"{{exporter}}:joint:purchase:channel,country:b{buckets}", buckets, rng)
    return (_used(client) - before) / COMBINATIONS


def _marginal_per_value(client: redis.Redis, rng: random.Random) -> float:
    before = _used(client)
    with client.pipeline(transaction=False) as pipe:
        for n in range(COMBINATIONS):
            value = f"country-{n:03d}"
            pipe.hset(
                "{exporter}:detail:purchase",
                mapping={
                    f"c|country|{value}": rng.randint(1, 99_999),
                    f"u|country|{value}": rng.randint(1, 9_999_999),
                    f"f|country|{value}": rng.randint(1, 999_999),
                },
            )
        pipe.execute()
    return (_used(client) - before) / COMBINATIONS


def _series_per_combination(client: redis.Redis, rng: random.Random) -> float:
    """Bytes of a week of minute buckets of one combination (a day written, scaled by 7)."""
    sampled = 100
    before = _used(client)
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
    per_day = (_used(client) - before) / sampled
    return per_day * RETENTION_HOURS / SAMPLED_HOURS


def main() -> dict[str, Any]:
    """Start a private redis-server, write each layout, report bytes."""
    rng = random.Random(27)
    with tempfile.TemporaryDirectory(prefix="exporter-dim-memory-") as workdir:
        server = RedisServer(Path(workdir))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            result = {
                "measurement": "redis_memory_per_combination",
                "combinations": COMBINATIONS,
                "redis": client.info("server")["redis_version"],
                "joint_bytes_per_combination": {
                    f"{b}_buckets": round(_per_combination(client, b, rng), 1)
                    for b in (0, 5, len(DEFAULT_BOUNDS.texts))
                },
                "marginal_bytes_per_value": round(_marginal_per_value(client, rng), 1),
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
