"""Benchmark 3: end to end through a moto SQS server, our processor against a bare boto3 loop.

Both sides drain the same number of messages from a queue of their own on the same moto server
with the same concurrency (pollers, 10 messages per receive, 1-second long polls). moto answers
more slowly as a queue grows, so the queue is refilled in small waves while no consumer runs and
only the drains are timed; the two sides alternate wave by wave so that load from other work on
the machine falls on both alike.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.sqs.config import SqsConfig
from exporter.sqs.messages import DeadLetter, Message, QueueDepth
from exporter.sqs.source import SqsSource
from exporter.store.redis import RedisStore
from tests.store_support import redis_store

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

WAIT_SECONDS = 1


def sqs_client(endpoint: str, connections: int = 10) -> SQSClient:
    """A plain boto3 client of the benchmark's SQS server."""
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(max_pool_connections=connections),
    )


def fill(client: SQSClient, queue_url: str, bodies: Sequence[bytes]) -> None:
    """Send `bodies` with SendMessageBatch, 10 at a time, from a few threads."""
    chunks = [bodies[i : i + 10] for i in range(0, len(bodies), 10)]

    def send(chunk: Sequence[bytes]) -> None:
        response = client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "MessageBody": body.decode()} for n, body in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise RuntimeError(f"moto refused sends: {response['Failed']}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, chunks))


@dataclass
class CountingSource:
    """Our SQS source, counting the messages it deleted (what both sides are timed on)."""

    inner: SqsSource
    deleted: int = 0

    async def receive(self, max_messages: int) -> Sequence[Message]:
        return await self.inner.receive(max_messages)

    async def delete(self, messages: Sequence[Message]) -> Sequence[Message]:
        failed = await self.inner.delete(messages)
        self.deleted += len(messages) - len(failed)
        return failed

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> Sequence[Message]:
        return await self.inner.dead_letter(letters)

    async def change_visibility(self, messages: Sequence[Message], seconds: int) -> None:
        await self.inner.change_visibility(messages, seconds)

    async def ping(self) -> None:
        await self.inner.ping()

    async def depths(self) -> Sequence[QueueDepth]:
        return await self.inner.depths()

    def dead_letter_queue(self, queue: str) -> str:
        return self.inner.dead_letter_queue(queue)


async def _wait_for(condition: Callable[[], bool], limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the drain did not finish in time")
        await asyncio.sleep(0.002)


async def drain_ours(source: CountingSource, store: RedisStore, count: int, pollers: int) -> float:
    """Seconds our processor takes to delete `count` more messages."""
    target = source.deleted + count
    config = ProcessorConfig(pollers=pollers, shutdown_timeout_seconds=10)
    processor = Processor(store, source, build_metrics(CollectorRegistry()), config)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(processor.run(stop))
    await _wait_for(lambda: source.deleted >= target, limit_seconds=120)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed


def drain_bare(client: SQSClient, queue_url: str, count: int, pollers: int) -> float:
    """Seconds `pollers` threads of receive + DeleteMessageBatch take to delete `count`."""
    lock = threading.Lock()
    deleted = 0
    finished: list[float] = []
    started = time.perf_counter()

    def poll() -> None:
        nonlocal deleted
        while True:
            with lock:
                if deleted >= count:
                    return
            response = client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
            )
            messages = response.get("Messages", [])
            if not messages:
                continue
            result = client.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )
            with lock:
                deleted += len(result.get("Successful", []))
                if deleted >= count and not finished:
                    finished.append(time.perf_counter())

    threads = [threading.Thread(target=poll) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return finished[0] - started


async def end_to_end(
    redis_url: str,
    endpoint: str,
    bodies: Sequence[bytes],
    *,
    waves: int,
    pollers: int = 4,
) -> dict[str, Any]:
    """Messages/s of our processor and of the bare loop, draining the same waves."""
    client = sqs_client(endpoint, connections=2 * pollers + 4)
    name = f"bench-e2e-{time.monotonic_ns()}"
    bare_url = client.create_queue(QueueName=f"{name}-bare")["QueueUrl"]
    inner = await SqsSource.open(
        SqsConfig(
            queue_name=name,
            dlq_name=f"{name}-dlq",
            endpoint_url=endpoint,
            create_queues=True,
            wait_time_seconds=WAIT_SECONDS,
            pollers=pollers,
        )
    )
    source = CountingSource(inner)
    store = redis_store(redis_url, prefix=name)
    ours_seconds = bare_seconds = 0.0
    try:
        for _ in range(waves):
            await asyncio.to_thread(fill, client, inner.queues[0].url, bodies)
            ours_seconds += await drain_ours(source, store, len(bodies), pollers)
            await asyncio.to_thread(fill, client, bare_url, bodies)
            bare_seconds += await asyncio.to_thread(
                drain_bare, client, bare_url, len(bodies), pollers
            )
        applied = await _applied(store)
    finally:
        await inner.close()
        await store.close()
    total = waves * len(bodies)
    ours_rate = total / ours_seconds
    bare_rate = total / bare_seconds
    return {
        "benchmark": "end_to_end",
        "messages_per_side": total,
        "wave": len(bodies),
        "waves": waves,
        "pollers": pollers,
        "ours_messages_deleted": source.deleted,
        "ours_events_counted": applied,
        "ours_messages_per_s": round(ours_rate, 1),
        "baseline_messages_per_s": round(bare_rate, 1),
        "ratio": round(ours_rate / bare_rate, 3),
        "target": ">= 0.9 of the bare loop",
        "target_met": ours_rate >= 0.9 * bare_rate,
    }


async def _applied(store: RedisStore) -> int:
    snapshot = await store.snapshot()
    return sum(t.count for t in snapshot.types)
