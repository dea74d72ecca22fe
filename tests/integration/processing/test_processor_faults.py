"""The processor under faults: SIGKILL after store, Redis restarts, SIGTERM, bad configuration."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from exporter.cli.wiring import run_processor
from exporter.store.redis import RedisStore
from tests.exporter_process import EXPORTER, ExporterProcess
from tests.integration.processing.processor_support import (
    event_body,
    processor_settings,
    queue_depth,
    running_processor,
    unique_queue_name,
)
from tests.polling import eventually, scaled, wait_until
from tests.servers import MotoServer, RedisServer, free_port
from tests.sqs_messages import send, sqs_client
from tests.store_support import DEFAULT_KEYS, redis_store

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient


PAUSING = "tests.integration.processing.pausing_processor"


class ProcessorProcess(ExporterProcess):
    """`exporter processor` as a real subprocess, configured by environment only, its output in
    a log file; started at once, without waiting. `pausing` runs the processor of
    `tests/integration/processing/pausing_processor.py` with those arguments instead."""

    def __init__(
        self, workdir: Path, env: dict[str, str], pausing: tuple[str, ...] | None = None
    ) -> None:
        self.port = free_port()
        super().__init__(
            ["processor"] if pausing is None else list(pausing),
            {
                "EXPORTER_METRICS_PORT": str(self.port),
                "EXPORTER_METRICS_HOST": "127.0.0.1",
                "SQS_WAIT_TIME_SECONDS": "1",
                "EXPORTER_LOG_FORMAT": "json",
                **env,
            },
            log=workdir / f"processor-{self.port}.log",
            program=(EXPORTER,) if pausing is None else (sys.executable, "-m", PAUSING),
        )

    def metric(self, name: str) -> float:
        """The sum of a metric's samples scraped from /metrics, any labels (0 when absent)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in response.read().decode().splitlines()
                if line.startswith((name + " ", name + "{"))
            )

    def ready(self) -> bool:
        """Whether /ready answers 200."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/ready", timeout=2
            ) as response:
                status: int = response.status
        except urllib.error.HTTPError:
            return False
        return status == 200

    def logged(self) -> str:
        """Everything it logged so far."""
        return self.stderr


def start_ready(
    processes: list[ProcessorProcess],
    process: ProcessorProcess,
    env: dict[str, str],
) -> tuple[SQSClient, str]:
    """Keep `process` to be ended, wait until it is ready; an SQS client and its queue's URL."""
    processes.append(process)
    process.wait_ready(process.ready, message="processor ready")
    client = sqs_client(env["AWS_ENDPOINT_URL"])
    return client, client.get_queue_url(QueueName=env["SQS_QUEUE_NAME"])["QueueUrl"]


@pytest.fixture(name="processes")
def fixture_processes() -> Iterator[list[ProcessorProcess]]:
    """Processes the test started; killed at the end whatever happened."""
    started: list[ProcessorProcess] = []
    yield started
    for process in started:
        process.kill()


def base_env(redis_url: str, endpoint: str, queue: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "AWS_ENDPOINT_URL": endpoint,
        "SQS_QUEUE_NAME": queue,
        "EXPORTER_CREATE_QUEUES": "true",  # each test's queue is new
        "EXPORTER_VISIBILITY_TIMEOUT_SECONDS": "5",
    }


def totals(redis_url: str, kind: str) -> tuple[int, int]:
    """(count, sum in whole units) of one type, read straight from Redis."""
    client = redis.Redis.from_url(redis_url)
    try:
        count = int(client.hget(DEFAULT_KEYS.legacy_totals, f"count:{kind}") or 0)
        units = int(client.hget(DEFAULT_KEYS.legacy_totals, f"units:{kind}") or 0)
    finally:
        client.close()
    return count, units


def test_sigkill_between_store_and_delete_loses_and_doubles_nothing(
    fresh_redis_server: RedisServer,
    sqs_endpoint: str,
    tmp_path: Path,
    processes: list[ProcessorProcess],
) -> None:
    """Killed after storing a batch but before deleting it: after a restart each counts once."""
    queue = unique_queue_name()
    env = base_env(fresh_redis_server.url, sqs_endpoint, queue)
    marker = tmp_path / "stored"
    # The store is wrapped from outside: it hangs after its first batch, as if killed right then.
    doomed = ProcessorProcess(tmp_path, {**env, "EXPORTER_CONCURRENCY": "1"}, (str(marker),))
    client, queue_url = start_ready(processes, doomed, env)
    # Without ids, so the identity is the MessageId: the redelivery path, not the producer one.
    send(client, queue_url, [event_body("order", "2") for _ in range(10)])
    wait_until(marker.exists, timeout=30, message="a batch stored and not deleted")
    stored = totals(fresh_redis_server.url, "order")
    assert stored[0] > 0
    doomed.kill()

    survivor = ProcessorProcess(tmp_path, env)
    processes.append(survivor)
    # The killed batch reappears after its 5 s visibility timeout and must be only deleted.
    wait_until(
        lambda: (
            totals(fresh_redis_server.url, "order") == (10, 20)
            and queue_depth(client, queue_url) == 0
        ),
        timeout=40,
        message="all ten counted and the queue empty",
    )
    wait_until(lambda: survivor.metric("exporter_events_duplicate_total") == stored[0], timeout=10)
    assert survivor.metric("exporter_events_duplicate_total") == stored[0]


def test_sigterm_drains_and_exits_zero(
    redis_server: RedisServer,
    sqs_endpoint: str,
    tmp_path: Path,
    processes: list[ProcessorProcess],
) -> None:
    """SIGTERM stops receiving, finishes the work in hand and exits 0, nothing left in flight."""
    queue = unique_queue_name()
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    env = base_env(redis_server.url, sqs_endpoint, queue)
    process = ProcessorProcess(tmp_path, env)
    client, queue_url = start_ready(processes, process, env)
    send(client, queue_url, [event_body("signup", "1") for _ in range(30)])
    wait_until(lambda: process.metric("exporter_messages_received_total") > 0, timeout=20)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    lines = [json.loads(line) for line in process.logged().splitlines() if line.startswith("{")]
    assert any(line["message"] == "stopped" for line in lines)
    # Whatever was received was finished or released: every message is counted or still queued.
    counted, _ = totals(redis_server.url, "signup")
    assert counted + queue_depth(client, queue_url) == 30


def _stopping_line(process: ProcessorProcess) -> dict[str, object]:
    """The processor's log line at stop (the first that begins "stopping:")."""
    lines = [json.loads(line) for line in process.logged().splitlines() if line[:1] == "{"]
    stopping: list[dict[str, object]] = [
        line for line in lines if str(line["message"]).startswith("stopping:")
    ]
    assert stopping, lines
    return stopping[0]


def test_an_idle_processor_stops_at_once_on_sigterm(
    redis_server: RedisServer,
    sqs_endpoint: str,
    tmp_path: Path,
    processes: list[ProcessorProcess],
) -> None:
    """An idle processor, its pollers in 20 s long polls: SIGTERM ends it within a few seconds
    (it took 17 to 20), exit 0, and its log line says the receives were abandoned and that what
    one had taken reappears after the visibility timeout."""
    queue = unique_queue_name()
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    env = {**base_env(redis_server.url, sqs_endpoint, queue), "SQS_WAIT_TIME_SECONDS": "20"}
    process = ProcessorProcess(tmp_path, env)
    client, queue_url = start_ready(processes, process, env)
    # One event counted and deleted: its poller is back in a long poll, as the others are.
    send(client, queue_url, [event_body("signup", "1")])
    wait_until(
        lambda: totals(redis_server.url, "signup")[0] == 1 and queue_depth(client, queue_url) == 0,
        timeout=30,
        message="the one event counted and deleted",
    )
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert time.monotonic() - signalled < scaled(4)
    stopping = _stopping_line(process)
    assert "reappears after its visibility timeout" in str(stopping["message"])
    assert "long polls in progress abandoned" in str(stopping["message"])
    # Four pollers (EXPORTER_CONCURRENCY's default): three never received anything, so they
    # are in a long poll; the fourth may still be between its delete and its next receive.
    assert int(str(stopping["receives_abandoned"])) >= 3
    assert stopping["batches_in_flight"] == 0


def test_a_batch_in_hand_at_sigterm_is_applied_and_deleted(
    redis_server: RedisServer,
    sqs_endpoint: str,
    tmp_path: Path,
    processes: list[ProcessorProcess],
) -> None:
    """SIGTERM arrives while a batch is at the store: the stop abandons no batch, which is
    applied and deleted within the shutdown deadline, and the processor exits 0."""
    queue = unique_queue_name()
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    marker, gate = tmp_path / "batch-at-store", tmp_path / "gate-open"
    env = {
        **base_env(redis_server.url, sqs_endpoint, queue),
        "SQS_WAIT_TIME_SECONDS": "20",
        "EXPORTER_CONCURRENCY": "1",
        "EXPORTER_VISIBILITY_TIMEOUT_SECONDS": "60",  # the held batch must not reappear
    }
    process = ProcessorProcess(tmp_path, env, (str(marker), str(gate)))
    client, queue_url = start_ready(processes, process, env)
    send(client, queue_url, [event_body("signup", "1") for _ in range(10)])
    wait_until(marker.exists, timeout=30, message="a batch at the store")
    process.send_signal(signal.SIGTERM)
    wait_until(
        lambda: any('"stopping:' in line for line in process.logged().splitlines()),
        timeout=30,
        message="the processor stopping",
    )
    assert _stopping_line(process)["batches_in_flight"] == 1
    gate.touch()
    assert process.wait(30) == 0
    held = int(marker.read_text())
    assert totals(redis_server.url, "signup") == (held, held)  # applied
    assert queue_depth(client, queue_url) == 10 - held  # and deleted; nothing else received


def test_missing_queue_without_create_queues_exits_with_a_clear_message(
    redis_server: RedisServer, sqs_endpoint: str, tmp_path: Path, processes: list[ProcessorProcess]
) -> None:
    """With --no-create-queues and no queue, the processor says what is missing and exits 2."""
    env = {
        **base_env(redis_server.url, sqs_endpoint, unique_queue_name()),
        "EXPORTER_CREATE_QUEUES": "false",
    }
    process = ProcessorProcess(tmp_path, env)
    processes.append(process)
    assert process.wait(30) == 2
    output = process.logged()
    assert "does not exist" in output
    assert "Traceback" not in output


async def test_redis_stopped_and_restarted_mid_stream(
    fresh_redis_server: RedisServer, sqs_endpoint: str
) -> None:
    """Redis down: polling pauses, /ready says redis, nothing is lost; it resumes by itself."""
    store = redis_store(fresh_redis_server.url, timeout_seconds=1)
    settings = processor_settings(
        fresh_redis_server.url, sqs_endpoint, visibility_timeout_seconds=5
    )
    client = sqs_client(sqs_endpoint)
    async with running_processor(settings, store) as processor:
        queue_url = client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        send(client, queue_url, [event_body("view", "1", event_id=f"a{n}") for n in range(20)])
        await eventually(
            lambda: processor.value("exporter_events_processed_total", {"type": "view"}) == 20
        )
        fresh_redis_server.kill()
        send(client, queue_url, [event_body("view", "1", event_id=f"b{n}") for n in range(20)])
        await eventually(lambda: processor.value("exporter_ready") == 0, message="not ready")

        def ready_body() -> tuple[int, dict[str, object]]:
            try:
                with urllib.request.urlopen(processor.base_url + "/ready", timeout=5) as r:  # noqa: S310
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        status, body = await asyncio.to_thread(ready_body)
        assert status == 503
        failing = body["failing"]
        assert isinstance(failing, dict)
        assert "redis" in failing
        assert "sqs" not in failing
        labels = {"dependency": "redis", "operation": "apply"}
        errors = processor.value("exporter_dependency_errors_total", labels) + processor.value(
            "exporter_dependency_errors_total", {"dependency": "redis", "operation": "probe"}
        )
        assert errors >= 1
        fresh_redis_server.start()
        await eventually(
            lambda: queue_depth(client, queue_url) == 0, timeout=40, message="backlog drained"
        )
        snapshot = await store.snapshot()
        view = snapshot.get("view")
        assert view is not None
        assert view.count == 40
        assert processor.value("exporter_ready") == 1
    await store.close()


async def test_unreachable_sqs_is_retried_until_it_answers(
    redis_server: RedisServer, redis_client: aioredis.Redis, open_store: Callable[..., RedisStore]
) -> None:
    """With SQS down at start the processor is alive, not ready, and retries until SQS answers."""
    moto = MotoServer()  # a port with nothing listening until the server starts
    settings = processor_settings(redis_server.url, moto.url)
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_processor(settings, open_store(), stop, registry=registry))
    base = f"http://127.0.0.1:{settings.metrics_port}"

    def status(path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    labels = {"dependency": "sqs", "operation": "resolve_queue"}
    try:
        await eventually(
            lambda: (
                (registry.get_sample_value("exporter_dependency_errors_total", labels) or 0) >= 1
            ),
            message="a failed queue lookup",
        )
        assert (await asyncio.to_thread(status, "/health"))[0] == 200
        code, body = await asyncio.to_thread(status, "/ready")
        assert code == 503
        assert isinstance(body["failing"], dict)
        assert "sqs" in body["failing"]
        assert not task.done()
        await asyncio.to_thread(moto.start)
        await eventually(
            lambda: registry.get_sample_value("exporter_ready") == 1,
            timeout=30,
            message="ready once SQS answers",
        )
        client = sqs_client(moto.url)
        queue_url = client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        send(client, queue_url, [event_body("late", "1")])
        await eventually(
            lambda: (
                registry.get_sample_value("exporter_events_processed_total", {"type": "late"}) == 1
            )
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=scaled(30))
        moto.stop()
