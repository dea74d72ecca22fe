"""Part of benchmark 1: the processor's CPU per event with 0 and with 2 dimensions declared, and
with value buckets on and off (issues 27 and 28), alternated round by round in one run.

The same bodies (each with a `channel` and a `country` field) go through the real core,
`Processor.handle_batch`, over a real Redis, with: no dimension and the default buckets (the
default configuration); two dimensions declared; no dimension and `EXPORTER_VALUE_BUCKETS=` (no
buckets). CPU is this process's (`time.process_time`): parsing, metrics, and the store client
planning and sending each event's values and bucket; Redis's own work (admission, the detail
and joint hashes) is the server's, and is measured by the store ceiling's figures.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from exporter.events import NO_DIMENSIONS, ContractOptions
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.store.detail import CountingConfig
from exporter.store.histograms import DEFAULT_VALUE_BUCKETS, BucketBounds
from tests.perf.bench_pipeline import AckingSource, as_messages, core_pipeline
from tests.store_support import redis_store, url_of

CONFIGURATIONS: dict[str, tuple[ContractOptions, tuple[float, ...]]] = {
    "none": (NO_DIMENSIONS, DEFAULT_VALUE_BUCKETS),
    "two_dimensions": (ContractOptions(("channel", "country")), DEFAULT_VALUE_BUCKETS),
    "buckets_off": (NO_DIMENSIONS, ()),
}


async def _cpu_per_event(
    client: aioredis.Redis,
    bodies: Sequence[bytes],
    contract: ContractOptions,
    buckets: tuple[float, ...],
    batch_size: int,
) -> tuple[float, float]:
    """Microseconds of this process's CPU per event, one poller, a store of its own; and of
    Redis's time in scripts per event (`INFO commandstats`, reset before the measured part)."""
    store = redis_store(
        url_of(client),
        prefix=f"bench-dims-{uuid.uuid4().hex[:8]}",
        counting=CountingConfig(contract.dimensions, buckets=BucketBounds.of(buckets)),
    )
    processor = Processor(
        store,
        AckingSource(),
        build_metrics(CollectorRegistry(), buckets),
        ProcessorConfig(contract=contract),
    )
    messages = as_messages(bodies)
    await processor.handle_batch(messages[:batch_size])  # warm up: script load, connection
    measured = messages[batch_size:]
    await client.config_resetstat()
    started = time.process_time()
    await core_pipeline(processor, measured, batch_size)
    ours = (time.process_time() - started) * 1e6 / len(measured)
    stats: dict[str, Any] = await client.info("commandstats")
    in_scripts = sum(
        int(stats[name]["usec"]) for name in ("cmdstat_evalsha", "cmdstat_eval") if name in stats
    )
    await store.close()
    return ours, in_scripts / len(measured)


async def dimensions_cost(
    client: aioredis.Redis, bodies: Sequence[bytes], *, rounds: int, batch_size: int = 10
) -> dict[str, Any]:
    """Median CPU per event of each configuration over `rounds` alternated rounds."""
    samples: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    in_redis: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(rounds):
        for name, (contract, buckets) in CONFIGURATIONS.items():
            ours, theirs = await _cpu_per_event(client, bodies, contract, buckets, batch_size)
            samples[name].append(ours)
            in_redis[name].append(theirs)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "cpu_us_per_event": {name: round(value, 2) for name, value in medians.items()},
        "redis_script_us_per_event": {
            name: round(statistics.median(values), 2) for name, values in in_redis.items()
        },
        "rounds": {name: [round(v, 2) for v in values] for name, values in samples.items()},
        "two_dimensions_ratio": round(medians["two_dimensions"] / medians["none"], 3),
        "buckets_on_ratio": round(medians["none"] / medians["buckets_off"], 3),
        "target": "two dimensions <= 1.25x none; buckets on <= 1.15x off",
        "target_met": medians["two_dimensions"] <= 1.25 * medians["none"]
        and medians["none"] <= 1.15 * medians["buckets_off"],
    }
