"""Benchmark 5: processor RSS under load, Redis bytes per identity, Redis memory over time.

- The processor is the real `exporter processor` process, fed through moto in waves; its RSS is
  sampled from /proc while it works, and compared with its own RSS idle after start-up. moto
  delivers only a few hundred messages a second, so the same loop also runs at full speed on a
  synthetic queue in a process of its own (`tests.perf.rss_core`), sampled the same way.
- Bytes per remembered identity: `used_memory` before and after applying identities shaped like
  SQS MessageIds, against what `MEMORY USAGE` reports for one such key on its own.
- Flat memory: events keep flowing at a steady rate for several de-duplication windows; the peak
  `used_memory` of the last window is compared with that of the second (the first fills up).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store.keys import StoreKeys
from exporter.store.redis import RedisStore
from tests.perf.bench_e2e import fill, sqs_client
from tests.polling import wait_until
from tests.servers import AWS_TEST_ENV, free_port
from tests.store_support import redis_store, url_of

RSS_TARGET_MB = 150
MIB_PER_KIB = 1 / 1024  # /proc/<pid>/status reports kB


def rss_mb(pid: int) -> float:
    """Resident set size of a process now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * MIB_PER_KIB
    raise RuntimeError(f"no VmRSS for {pid}")


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as reply:
        return bool(reply.status == 200)


async def processor_rss(
    redis_url: str, endpoint: str, workdir: Path, bodies: Sequence[bytes], waves: int
) -> dict[str, Any]:
    """Idle and peak RSS of a real processor process while it drains `waves` waves of bodies."""
    queue = f"bench-rss-{time.monotonic_ns()}"
    prefix = f"bench-rss-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EXPORTER_", "SQS_"))},
        **AWS_TEST_ENV,
        "REDIS_URL": redis_url,
        "EXPORTER_REDIS_PREFIX": prefix,
        "AWS_ENDPOINT_URL": endpoint,
        "SQS_QUEUE_NAME": queue,
        "EXPORTER_CREATE_QUEUES": "true",
        "SQS_WAIT_TIME_SECONDS": "1",
        "EXPORTER_METRICS_HOST": "127.0.0.1",
        "EXPORTER_METRICS_PORT": str(port),
        "EXPORTER_LOG_LEVEL": "WARNING",
    }
    log = (workdir / "processor-rss.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "processor", env=env, stdout=log, stderr=log
    )
    store = redis_store(redis_url, prefix=prefix)
    try:
        await asyncio.to_thread(wait_until, lambda: _ready(port), timeout=30, message="processor")
        idle = rss_mb(process.pid)
        client = sqs_client(endpoint)
        queue_url = client.get_queue_url(QueueName=queue)["QueueUrl"]
        peak = idle
        for wave in range(1, waves + 1):
            await asyncio.to_thread(fill, client, queue_url, bodies)
            while await _counted(store) < wave * len(bodies):
                peak = max(peak, rss_mb(process.pid))
                await asyncio.sleep(0.05)
        counted = await _counted(store)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            exit_code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
        await store.reset()
        await store.close()
    return {
        "idle_mb": round(idle, 1),
        "peak_mb": round(peak, 1),
        "events_counted": counted,
        "exit_code": exit_code,
    }


async def core_rss(redis_url: str, events: int) -> dict[str, Any]:
    """Peak RSS of a process running the real processor loop at full speed (`rss_core`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.perf.rss_core", redis_url, str(events),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    if (await process.stdout.readline()).strip() != b"ready":
        raise RuntimeError("tests.perf.rss_core did not start")
    idle = peak = rss_mb(process.pid)
    line = asyncio.create_task(process.stdout.readline())
    while not line.done():
        peak = max(peak, rss_mb(process.pid))
        await asyncio.wait({line}, timeout=0.02)
    result: dict[str, Any] = json.loads(line.result())
    await process.wait()
    return {**result, "idle_mb": round(idle, 1), "peak_mb": round(peak, 1)}


async def _counted(store: RedisStore) -> int:
    return sum(t.count for t in (await store.snapshot()).types)


async def bytes_per_identity(redis_url: str, identities: int) -> dict[str, Any]:
    """Redis memory per remembered identity (`msg:` + a 36-character MessageId)."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    store = redis_store(url_of(client), prefix="bench-identity")
    event = Event("pageview", 1_000_000, datetime.now(UTC))
    await store.apply([("msg:warm-up", event)])  # the totals hash and type set exist already
    before = int((await client.info("memory"))["used_memory"])
    for start in range(0, identities, 1000):
        batch = [(f"msg:{uuid.uuid4()}", event) for _ in range(min(1000, identities - start))]
        await store.apply(batch)
    after = int((await client.info("memory"))["used_memory"])
    # One shard: the identity's key is under the prefix's own tag (exporter/store/keys.py).
    sample = StoreKeys.build("bench-identity", 1).shards[0].seen_prefix + b"msg:warm-up"
    key_alone = int(await client.memory_usage(sample) or 0)
    await client.flushdb()
    await client.aclose()
    return {
        "identities": identities,
        "bytes_per_identity": round((after - before) / identities, 1),
        "memory_usage_of_one_key": key_alone,
    }


async def flat_memory(
    redis_url: str, *, window_seconds: int, windows: int, rate: int
) -> dict[str, Any]:
    """Peak `used_memory` per window while `rate` events/s flow for `windows` windows."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    store = redis_store(url_of(client), prefix="bench-flat", dedupe_window_seconds=window_seconds)
    event = Event("pageview", 1_000_000, datetime.now(UTC))
    peaks = [0] * windows
    tick = 0.05
    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < windows * window_seconds:
        due = round((elapsed + tick) * rate) - sent
        if due > 0:
            for offset in range(0, due, 1000):
                count = min(1000, due - offset)
                await store.apply([(f"msg:{uuid.uuid4()}", event) for _ in range(count)])
            sent += due
        used = int((await client.info("memory"))["used_memory"])
        index = min(windows - 1, int(elapsed // window_seconds))
        peaks[index] = max(peaks[index], used)
        await asyncio.sleep(max(0.0, started + elapsed + tick - time.monotonic()))
    keys_at_end = int(await client.dbsize())
    await client.flushdb()
    await client.aclose()
    growth = peaks[-1] / peaks[1] if windows > 1 and peaks[1] else None
    return {
        "window_seconds": window_seconds,
        "windows": windows,
        "events_sent": sent,
        "events_per_s": round(sent / (windows * window_seconds)),
        "peak_used_memory_per_window": peaks,
        "keys_at_end": keys_at_end,
        "keys_expected_at_most": round(rate * window_seconds * 1.5) + 2,
        "last_to_second_window": round(growth, 3) if growth is not None else None,
        "flat": growth is not None and growth <= 1.2,
    }


async def memory(
    redis_url: str,
    endpoint: str,
    workdir: Path,
    bodies: Sequence[bytes],
    *,
    waves: int,
    identities: int,
    window_seconds: int,
    windows: int,
    rate: int,
    core_events: int,
) -> dict[str, Any]:
    """All the memory figures in one JSON object."""
    rss = await processor_rss(redis_url, endpoint, workdir, bodies, waves)
    core = await core_rss(redis_url, core_events)
    identity = await bytes_per_identity(redis_url, identities)
    flat = await flat_memory(redis_url, window_seconds=window_seconds, windows=windows, rate=rate)
    return {
        "benchmark": "memory",
        "processor_rss": rss,
        "processor_rss_full_speed": core,
        "redis_identity": identity,
        "redis_flat": flat,
        "ratio": {
            "peak_to_idle_rss": round(rss["peak_mb"] / rss["idle_mb"], 3),
            "full_speed_peak_to_idle_rss": round(core["peak_mb"] / core["idle_mb"], 3),
            "identity_to_key_alone": round(
                identity["bytes_per_identity"] / identity["memory_usage_of_one_key"], 3
            ),
            "last_to_second_window": flat["last_to_second_window"],
        },
        "target": f"RSS < {RSS_TARGET_MB} MB; Redis memory flat past the window",
        "target_met": max(rss["peak_mb"], core["peak_mb"]) < RSS_TARGET_MB and flat["flat"],
    }
