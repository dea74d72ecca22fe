"""Benchmark 2: how many events per second Redis itself can apply with the store's script.

Calls go one at a time (so none are merged) with a fixed number of events each; Redis's own time
per call comes from `INFO commandstats`, which excludes the network and the client entirely.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store.series import SeriesPolicy
from tests.store_support import redis_store, url_of


async def _script_stats(client: aioredis.Redis) -> tuple[int, float]:
    stats: dict[str, Any] = await client.info("commandstats")
    calls, usec = 0, 0.0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        entry = stats.get(name)
        if entry:
            calls += int(entry["calls"])
            usec += float(entry["usec"])
    return calls, usec


async def redis_cpu_seconds(client: aioredis.Redis) -> float:
    """CPU seconds the Redis server has used so far, user and system (INFO cpu)."""
    info: dict[str, Any] = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _redis_usec_per_event(
    client: aioredis.Redis,
    events: int,
    batch_size: int,
    *,
    series: bool = True,
    spread_seconds: int = 0,
) -> dict[str, Any]:
    await client.flushdb()
    store = redis_store(url_of(client), prefix="bench-ceiling", series=SeriesPolicy(enabled=series))
    now = datetime.now(UTC)
    # Live traffic: event times within the current minute (spread 0). A drained backlog spreads
    # them over the last hour: more distinct buckets per call (decision 0008).
    when = [now - timedelta(seconds=(i * 7919) % (spread_seconds or 1)) for i in range(events)]
    kinds = ("pageview", "added-to-basket", "purchase")
    await store.apply([("msg:warm-up", Event("pageview", 1, now))])  # loads the script
    await client.config_resetstat()
    cpu_before = await redis_cpu_seconds(client)
    for b in range(events // batch_size):
        batch = []
        for i in range(batch_size):
            moment = when[b * batch_size + i]
            batch.append((f"msg:{b}-{i}", Event(kinds[i % 3], 12_340_000, moment)))
        await store.apply(batch)
    calls, usec = await _script_stats(client)
    cpu = await redis_cpu_seconds(client) - cpu_before
    await client.flushdb()
    applied = calls * batch_size
    return {
        "batch_size": batch_size,
        "series": series,
        "script_calls": calls,
        "redis_usec_per_call": round(usec / calls, 2),
        "redis_usec_per_event": round(usec / applied, 3),
        "redis_cpu_usec_per_event": round(cpu * 1e6 / applied, 3),
        "ceiling_events_per_s": round(applied / (usec / 1e6)),
    }


async def _series_cost(
    client: aioredis.Redis, events: int, batch_size: int, rounds: int, spread_seconds: int
) -> dict[str, Any]:
    """Redis time per event with event-time buckets and without, alternating on one server.

    The machine may be shared, so each round measures both back to back and the median round's
    ratio is the answer (decision 0008). The ratio is of Redis's CPU time (INFO cpu): on a busy
    machine commandstats' wall time also counts the moments Redis waited for a core.
    """
    ratios, script_ratios, with_series, without = [], [], [], []
    for _ in range(rounds):
        off = await _redis_usec_per_event(
            client, events, batch_size, series=False, spread_seconds=spread_seconds
        )
        on = await _redis_usec_per_event(
            client, events, batch_size, series=True, spread_seconds=spread_seconds
        )
        without.append(off["redis_cpu_usec_per_event"])
        with_series.append(on["redis_cpu_usec_per_event"])
        ratios.append(on["redis_cpu_usec_per_event"] / off["redis_cpu_usec_per_event"])
        script_ratios.append(on["redis_usec_per_event"] / off["redis_usec_per_event"])
    return {
        "traffic": "live" if spread_seconds == 0 else f"backlog over {spread_seconds} s",
        "batch_size": batch_size,
        "redis_cpu_usec_per_event_with_series": [round(v, 3) for v in with_series],
        "redis_cpu_usec_per_event_without": [round(v, 3) for v in without],
        "ratio": round(statistics.median(ratios), 3),
        "commandstats_ratio": round(statistics.median(script_ratios), 3),
    }


async def store_ceiling(
    url: str,
    *,
    events: int = 100_000,
    batch_sizes: Sequence[int] = (10, 100),
    pipeline_events_per_s: float | None = None,
    series_rounds: int = 3,
) -> dict[str, Any]:
    """Redis-side time per script call turned into events/s of one Redis core, per call size.

    `pipeline_events_per_s` (benchmark 1 of the same run) is reported as a share of the highest
    ceiling measured, the strictest comparison.
    """
    client = aioredis.Redis.from_url(url)
    sizes = [await _redis_usec_per_event(client, events, size) for size in batch_sizes]
    series_cost = [
        await _series_cost(client, events, size, series_rounds, spread)
        for spread in (0, 3600)
        for size in batch_sizes
    ]
    await client.aclose()
    ceiling = max(size["ceiling_events_per_s"] for size in sizes)
    share = pipeline_events_per_s / ceiling if pipeline_events_per_s else None
    return {
        "benchmark": "store_ceiling",
        "events_per_size": events,
        "by_batch_size": sizes,
        "ceiling_events_per_s": ceiling,
        "pipeline_events_per_s": round(pipeline_events_per_s) if pipeline_events_per_s else None,
        "ratio": round(share, 3) if share is not None else None,
        "target": "pipeline >= 0.6 of the ceiling",
        "target_met": share is not None and share >= 0.6,
        "series_cost": series_cost,
        "series_target": "Redis time per event with buckets <= 1.5x without, live traffic",
        "series_target_met": all(
            cost["ratio"] <= 1.5 for cost in series_cost if cost["traffic"] == "live"
        ),
    }
