"""Store errors that waiting will not clear: the processor names them, stops receiving, resumes
when they clear, and nothing reaches the dead-letter queue without a reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from exporter.cli.parts import redis_store
from exporter.cli.processor import SETTINGS as PROCESSOR_SETTINGS
from exporter.cli.wiring import run_processor
from exporter.events import Event
from exporter.settings import Settings
from exporter.store import StoreMisconfigured
from tests.integration.processing.processor_support import (
    RunningProcessor,
    event_body,
    processor_settings,
    queue_depth,
)
from tests.polling import eventually
from tests.queue_names import dlq_name_of
from tests.redis_cluster import RedisClusterNodes
from tests.servers import RedisServer
from tests.sqs_messages import send, sqs_client
from tests.store_support import redis_store as store_at

# Generous: the machine is shared.
WITHIN = 90.0


@contextlib.asynccontextmanager
async def started_processor(settings: Settings) -> AsyncIterator[RunningProcessor]:
    """A processor on the settings' Redis, running whether or not it can get ready."""
    store = redis_store(settings, PROCESSOR_SETTINGS)
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_processor(settings, store, stop, registry=registry))
    running = RunningProcessor(settings, registry, stop, task)
    try:

        async def served() -> bool:
            return (await ready(running))[0] > 0

        await eventually(served, timeout=WITHIN, message="/ready served")
        yield running
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await store.close()


def _ready(processor: RunningProcessor) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(processor.base_url + "/ready", timeout=5) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


async def ready(processor: RunningProcessor) -> tuple[int, dict[str, Any]]:
    """/ready's status and body, without blocking the loop."""
    return await asyncio.to_thread(_ready, processor)


def probes_failed(processor: RunningProcessor) -> float:
    """Write probes that failed so far."""
    labels = {"dependency": "redis", "operation": "probe"}
    return processor.value("exporter_dependency_errors_total", labels)


async def assert_paused_for(processor: RunningProcessor, words: str) -> dict[str, Any]:
    """/ready names `words` for redis and the processor, and the recovery probe keeps failing
    while not one more message is received."""

    async def named() -> bool:
        status, body = await ready(processor)
        failing = body.get("failing", {})
        return status == 503 and words in failing.get("redis", "") and (
            words in failing.get("processor", "")
        )  # fmt: skip

    await eventually(named, timeout=WITHIN, message=f"/ready naming {words}")
    received = processor.value("exporter_messages_received_total")
    failed = probes_failed(processor)
    await eventually(
        lambda: probes_failed(processor) >= failed + 3, timeout=WITHIN, message="probes"
    )
    assert processor.value("exporter_messages_received_total") == received
    return (await ready(processor))[1]


def queue_urls(settings: Settings) -> tuple[str, str]:
    """The event queue's and the dead-letter queue's URLs."""
    client = sqs_client(str(settings.aws_endpoint_url))
    return (
        client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"],
        client.get_queue_url(QueueName=dlq_name_of(settings))["QueueUrl"],
    )


async def test_a_primary_demoted_under_a_processor_pauses_polling_until_promoted(
    tmp_path: Path, sqs_endpoint: str
) -> None:
    """The processor's Redis becomes a read-only replica while it runs (a failover behind its
    back): READONLY in the log and /ready, nothing more received (no receive count spent),
    nothing dead-lettered; once promoted again, every event counts exactly once. (A REDIS_URL
    naming a replica at start-up exits instead: tests/integration/cli/test_cli_startup.py.)"""
    primary, other = RedisServer(tmp_path / "primary"), RedisServer(tmp_path / "other")
    primary.start()
    try:
        other.start()
        client = aioredis.Redis.from_url(primary.url)
        try:
            settings = processor_settings(primary.url, sqs_endpoint)
            async with started_processor(settings) as processor:
                await eventually(lambda: processor.value("exporter_ready") == 1, timeout=WITHIN)
                await client.replicaof("127.0.0.1", str(other.port))  # demoted under it
                queue_url, dlq_url = queue_urls(settings)
                sqs = sqs_client(sqs_endpoint)
                send(sqs, queue_url, [event_body("view", "1.5") for _ in range(20)])
                await assert_paused_for(processor, "READONLY")
                await client.replicaof("NO", "ONE")  # promoted again
                await eventually(lambda: queue_depth(sqs, queue_url) == 0, timeout=WITHIN)
                totals = await _totals(primary.url)
                assert totals == {"view": (20, 30_000_000)}
                assert queue_depth(sqs, dlq_url) == 0
        finally:
            await client.aclose()
    finally:
        other.kill()
        primary.kill()


async def test_a_password_rotated_under_a_processor_pauses_it_and_is_never_shown(
    tmp_path: Path, sqs_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis's password changes while the processor runs and its connections drop: /ready and
    the log name the refusal (WRONGPASS) but never a password; polling resumes by itself once
    Redis takes the processor's password again."""
    caplog.set_level(logging.INFO)
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        admin = aioredis.Redis.from_url(server.url)
        await admin.config_set("requirepass", "the-first-one")
        await admin.aclose()
        url = f"redis://:the-first-one@127.0.0.1:{server.port}/0"
        settings = processor_settings(url, sqs_endpoint)
        async with started_processor(settings) as processor:
            await eventually(lambda: processor.value("exporter_ready") == 1, timeout=WITHIN)
            rotated = aioredis.Redis.from_url(url)
            await rotated.config_set("requirepass", "the-second-one")
            await rotated.client_kill_filter(_type="normal", skipme=True)
            await rotated.aclose()
            queue_url, dlq_url = queue_urls(settings)
            sqs = sqs_client(sqs_endpoint)
            send(sqs, queue_url, [event_body("view", "2") for _ in range(10)])
            body = await assert_paused_for(processor, "WRONGPASS")
            assert "the-first-one" not in json.dumps(body)
            fixed = aioredis.Redis.from_url(f"redis://:the-second-one@127.0.0.1:{server.port}/0")
            await fixed.config_set("requirepass", "the-first-one")
            await fixed.aclose()
            await eventually(lambda: queue_depth(sqs, queue_url) == 0, timeout=WITHIN)
            assert await _totals(url) == {"view": (10, 20_000_000)}
            assert queue_depth(sqs, dlq_url) == 0
        assert any("WRONGPASS" in r.getMessage() for r in caplog.records)
        assert all("the-first-one" not in r.getMessage() for r in caplog.records)
    finally:
        server.kill()


async def test_a_processor_with_another_shard_count_refuses_to_start(
    redis_server: RedisServer, sqs_endpoint: str
) -> None:
    """Data written with one shard, a processor started with four: it stops with one line naming
    both counts and the variable to set."""
    prefix = f"k-{uuid.uuid4().hex[:8]}"
    store = store_at(redis_server.url, prefix=prefix)
    await store.apply([("msg:1", Event("view", 1, datetime.now(UTC)))])
    await store.close()
    settings = processor_settings(
        redis_server.url, sqs_endpoint, redis_prefix=prefix, redis_shards=4
    )
    sharded = redis_store(settings, PROCESSOR_SETTINGS)
    try:
        with pytest.raises(StoreMisconfigured) as refused:
            await asyncio.wait_for(run_processor(settings, sharded, asyncio.Event()), 60)
    finally:
        await sharded.close()
    message = str(refused.value)
    assert "EXPORTER_REDIS_SHARDS is 4" in message
    assert "written with 1 shards" in message
    assert "\n" not in message


async def test_any_node_of_a_cluster_serves_a_sharded_processor(
    redis_cluster: RedisClusterNodes, sqs_endpoint: str
) -> None:
    """REDIS_URL names the last node of a 3-master cluster (a plain client there used to get
    MOVED for every apply): with three shards every event counts once and nothing dead-letters."""
    prefix = f"node-{uuid.uuid4().hex[:8]}"
    settings = processor_settings(
        redis_cluster.url(redis_cluster.ports[-1]),
        sqs_endpoint,
        redis_prefix=prefix,
        redis_shards=3,
    )
    async with started_processor(settings) as processor:
        await eventually(lambda: processor.value("exporter_ready") == 1, timeout=WITHIN)
        queue_url, dlq_url = queue_urls(settings)
        sqs = sqs_client(sqs_endpoint)
        send(sqs, queue_url, [event_body(f"t{n % 4}", "0.25") for n in range(60)])
        await eventually(lambda: queue_depth(sqs, queue_url) == 0, timeout=WITHIN)
        assert queue_depth(sqs, dlq_url) == 0
    store = store_at(redis_cluster.url(), prefix=prefix, shards=3)
    try:
        snapshot = await store.snapshot()
    finally:
        await store.close()
    assert [(t.type, t.count, t.sum_micros) for t in snapshot.types] == [
        (f"t{n}", 15, 3_750_000) for n in range(4)
    ]


async def _totals(url: str) -> dict[str, tuple[int, int]]:
    store = store_at(url)
    try:
        return {t.type: (t.count, t.sum_micros) for t in (await store.snapshot()).types}
    finally:
        await store.close()
