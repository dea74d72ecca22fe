"""Benchmark 1: bodies through the processor's real core, against a naive per-message baseline.

Ours: `Processor.handle_batch` (parse, validate, identities, one `Store.apply`, metrics, spans,
visibility guard, delete) with batches of 10 messages (SQS's maximum) from several concurrent
"pollers", over a real Redis; only the queue is replaced, by a source that acknowledges at once.
Baseline: per message a plain pydantic model, then one round trip of INCRBYFLOAT count,
INCRBYFLOAT sum and SADD type, with the same number of concurrent workers on the same Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from exporter.events import InvalidEvent, parse_event
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig, identity_of
from exporter.sqs.messages import DeadLetter, Message, QueueDepth
from exporter.store.redis import RedisStore
from exporter.store.series import SeriesPolicy
from tests.perf.bench_store import redis_cpu_seconds
from tests.store_support import redis_store, script_calls, url_of

T = TypeVar("T")


class NaiveEvent(BaseModel):
    """What a first version would write: a plain pydantic model, float value."""

    type: str
    value: float
    occurred_at: datetime


@dataclass
class AckingSource:
    """A queue that is never the bottleneck: every delete and dead-letter succeeds at once."""

    deleted: int = 0
    dead_lettered: int = 0

    async def receive(self, max_messages: int) -> Sequence[Message]:
        del max_messages
        return []

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        self.deleted += len(messages)
        return []

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        self.dead_lettered += len(letters)
        return [letter.message for letter in letters]

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        del messages, seconds

    async def ping(self) -> None:
        return None

    async def depths(self) -> Sequence[QueueDepth]:
        return []

    def dead_letter_queue(self, queue: str) -> str:
        return f"{queue}-dlq"


def as_messages(bodies: Sequence[bytes]) -> list[Message]:
    """Bodies as received messages with SQS-like ids (identities `msg:<uuid>`)."""
    ids = [str(uuid.uuid4()) for _ in bodies]
    return [Message(i, f"rh-{i}", body) for i, body in zip(ids, bodies, strict=True)]


async def naive_pipeline(client: aioredis.Redis, bodies: Sequence[bytes]) -> None:
    """Per message: validate with pydantic, then INCRBYFLOAT count, INCRBYFLOAT sum, SADD type."""
    for body in bodies:
        event = NaiveEvent.model_validate_json(body)
        async with client.pipeline(transaction=False) as pipe:
            pipe.incrbyfloat(f"naive:count:{event.type}", 1)
            pipe.incrbyfloat(f"naive:sum:{event.type}", event.value)
            pipe.sadd("naive:types", event.type)
            await pipe.execute()


async def core_pipeline(processor: Processor, messages: Sequence[Message], batch_size: int) -> None:
    """Our core, as one poller drives it: one `handle_batch` per received batch."""
    for start in range(0, len(messages), batch_size):
        await processor.handle_batch(messages[start : start + batch_size])


async def parse_and_store(store: RedisStore, messages: Sequence[Message], batch_size: int) -> None:
    """The core without the processor's bookkeeping: parse, identities, one apply per batch."""
    for start in range(0, len(messages), batch_size):
        batch = []
        for message in messages[start : start + batch_size]:
            try:
                event = parse_event(message.body)
            except InvalidEvent:
                continue
            batch.append((identity_of(event, message), event))
        await store.apply(batch)


async def _timed(run: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


async def _timed_with_cpu(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Wall and CPU seconds of this process: the gap is time spent waiting on Redis."""
    cpu_started = time.process_time()
    wall = await _timed(run)
    return wall, time.process_time() - cpu_started


async def _in_parallel(
    workers: int, items: Sequence[T], job: Callable[[Sequence[T]], Awaitable[None]]
) -> None:
    share = -(-len(items) // workers)
    await asyncio.gather(*(job(items[i * share : (i + 1) * share]) for i in range(workers)))


async def _script_usec(client: aioredis.Redis) -> float:
    """Redis's own time in script calls since the last CONFIG RESETSTAT (INFO commandstats)."""
    stats: dict[str, Any] = await client.info("commandstats")
    return sum(
        float(stats[name]["usec"]) for name in ("cmdstat_evalsha", "cmdstat_eval") if name in stats
    )


async def _without_series(
    client: aioredis.Redis, bodies: Sequence[bytes], batch_size: int, workers: int
) -> dict[str, Any]:
    """Our core again, same bodies and Redis, with event-time buckets off (decision 0008)."""
    store = redis_store(
        url_of(client), prefix="bench-no-series", series=SeriesPolicy(enabled=False)
    )
    processor = Processor(
        store, AckingSource(), build_metrics(CollectorRegistry()), ProcessorConfig()
    )
    messages = as_messages(bodies)
    await processor.handle_batch(messages[:batch_size])
    measured = messages[batch_size:]
    await client.config_resetstat()
    cpu_before = await redis_cpu_seconds(client)
    seconds = await _timed(
        lambda: _in_parallel(workers, measured, lambda p: core_pipeline(processor, p, batch_size))
    )
    figures = {
        "events_per_s": round(len(measured) / seconds),
        "redis_usec_per_event": round(await _script_usec(client) / len(measured), 3),
        "redis_cpu_usec_per_event": (await redis_cpu_seconds(client) - cpu_before)
        * 1e6
        / len(measured),
    }
    await store.close()
    return figures


async def pipeline(
    url: str,
    bodies: Sequence[bytes],
    *,
    batch_size: int = 10,
    workers: int = 4,
    dimension_bodies: Sequence[bytes] = (),
    dimension_rounds: int = 3,
) -> dict[str, Any]:
    """Events/s of our core and of the naive baseline on the same Redis, same bodies, same run;
    with `dimension_bodies`, also the cost of dimensions and value buckets (bench_dimensions)."""
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    store = redis_store(url_of(client), prefix="bench-pipeline")
    source = AckingSource()
    registry = CollectorRegistry()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig())
    messages = as_messages(bodies)
    baseline_bodies = bodies[: max(workers, len(bodies) // 5)]  # slow: a fifth is plenty
    await processor.handle_batch(messages[:batch_size])  # warm up: script load, connections
    measured = messages[batch_size:]
    await client.config_resetstat()
    redis_cpu_before = await redis_cpu_seconds(client)
    ours, ours_cpu = await _timed_with_cpu(
        lambda: _in_parallel(workers, measured, lambda p: core_pipeline(processor, p, batch_size))
    )
    ours_redis_usec = await _script_usec(client)
    ours_calls = await script_calls(client)
    ours_redis_cpu = (await redis_cpu_seconds(client) - redis_cpu_before) * 1e6 / len(measured)
    without_series = await _without_series(client, bodies, batch_size, workers)
    bare_store = redis_store(url_of(client), prefix="bench-parse-store")
    fresh = as_messages(bodies)
    parse_store = await _timed(
        lambda: _in_parallel(workers, fresh, lambda p: parse_and_store(bare_store, p, batch_size))
    )
    naive = await _timed(
        lambda: _in_parallel(workers, baseline_bodies, lambda p: naive_pipeline(client, p))
    )
    applied = sum(
        registry.get_sample_value("exporter_events_processed_total", {"type": kind}) or 0
        for kind in {NaiveEvent.model_validate_json(b).type for b in bodies[:200]}
    )
    naive_count = 0.0
    for key in await client.keys("naive:count:*"):
        naive_count += float(await client.get(key) or 0)
    # Imported here: bench_dimensions reuses this module's core loop and source.
    from tests.perf.bench_dimensions import dimensions_cost

    dimensions = (
        await dimensions_cost(client, dimension_bodies, rounds=dimension_rounds)
        if dimension_bodies
        else None
    )
    await client.flushdb()
    await client.aclose()
    await store.close()
    await bare_store.close()
    ours_rate = len(measured) / ours
    naive_rate = len(baseline_bodies) / naive
    return {
        "benchmark": "pipeline",
        "events": len(measured),
        "batch_size": batch_size,
        "workers": workers,
        "ours_events_applied": int(applied),
        "ours_messages_deleted": source.deleted,
        "ours_store_calls": ours_calls,
        "baseline_events": len(baseline_bodies),
        "baseline_events_counted": int(naive_count),
        "ours_events_per_s": round(ours_rate),
        "ours_wall_us_per_event": round(ours / len(measured) * 1e6, 2),
        "ours_cpu_us_per_event": round(ours_cpu / len(measured) * 1e6, 2),
        "parse_and_store_only_events_per_s": round(len(fresh) / parse_store),
        "series": {
            "ours_events_per_s_without_series": without_series["events_per_s"],
            "redis_cpu_usec_per_event_with_series": round(ours_redis_cpu, 3),
            "redis_cpu_usec_per_event_without": round(
                without_series["redis_cpu_usec_per_event"], 3
            ),
            "redis_ratio": round(ours_redis_cpu / without_series["redis_cpu_usec_per_event"], 3),
            "commandstats_ratio": round(
                ours_redis_usec / len(measured) / without_series["redis_usec_per_event"], 3
            ),
        },
        "dimensions_and_buckets": dimensions,
        "baseline_events_per_s": round(naive_rate),
        "ratio": round(ours_rate / naive_rate, 2),
        "target": ">= 10x baseline and >= 50000 events/s",
        "target_met": ours_rate >= 10 * naive_rate and ours_rate >= 50_000,
    }
