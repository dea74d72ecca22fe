"""Helpers for the processor's tests: queues of their own, event bodies, what a queue holds,
metrics read back, and a processor running in the test's loop (tests/sqs_messages.py sends)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from exporter.cli.wiring import run_processor
from exporter.settings import Settings
from exporter.sqs.config import SqsConfig
from exporter.sqs.queue_calls import QueueCalls
from exporter.sqs.queues import ResolvedQueue
from exporter.sqs.source import SqsSource
from exporter.sqs.wire import SqsClient
from exporter.store import Store
from tests.polling import eventually, scaled
from tests.servers import free_port
from tests.sqs_messages import drain

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

_names = itertools.count()


def unique_queue_name(prefix: str = "events") -> str:
    """A queue name no other test of the session uses."""
    return f"{prefix}-{next(_names)}-{time.monotonic_ns() % 10**9}"


def source_on(
    client: SqsClient,
    queue_url: str,
    dlq_url: str,
    *,
    config: SqsConfig | None = None,
    on_error: Callable[[str], None] = lambda _operation: None,
) -> SqsSource:
    """A source on one queue given by its URLs (a stand-in's, or nobody's), without looking it
    up; the queues are named after the URLs' last part."""
    queue = ResolvedQueue(
        queue_url.rsplit("/", 1)[-1], queue_url, dlq_url.rsplit("/", 1)[-1], dlq_url
    )
    config = config or SqsConfig(queue_name=queue.name, dlq_name=None, wait_time_seconds=0)
    return SqsSource(QueueCalls(client, on_error), config, [queue])


def processor_settings(redis_url: str, endpoint: str, **overrides: Any) -> Settings:
    """Settings of a fast-polling processor on a queue of the test's own."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "aws_endpoint_url": endpoint,
        "sqs_queue_name": unique_queue_name(),
        # Each test's queue is new: the processor creates it (creation is off by default).
        "create_queues": True,
        "sqs_wait_time_seconds": 1,
        "metrics_host": "127.0.0.1",
        "metrics_port": free_port(),
        "queue_depth_interval_seconds": 0.2,
        "shutdown_timeout_seconds": 10,
        "concurrency": 2,
    }
    values.update(overrides)
    return Settings(**values)


def event_body(kind: str, value: str, *, event_id: str | None = None) -> str:
    """A valid event body; `value` is written verbatim, so decimals stay exact."""
    fields = [f'"type":"{kind}"', f'"value":{value}', '"occurred_at":"2020-10-06 10:02:05"']
    if event_id is not None:
        fields.append(f'"id":"{event_id}"')
    return "{" + ",".join(fields) + "}"


def drain_queue(client: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message of a queue; return them with their string attributes."""
    return [{"body": message.body, **message.attributes} for message in drain(client, queue_url)]


def queue_depth(client: SQSClient, queue_url: str) -> int:
    """Visible plus in-flight plus delayed messages."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def sample_total(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    """The sum of the samples called `name` in `registry` whose labels include `labels`."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@dataclass
class RunningProcessor:
    """A `run_processor` task of the test, its registry and stop event."""

    settings: Settings
    registry: CollectorRegistry
    stop: asyncio.Event
    task: asyncio.Task[None]

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The sum of the samples called `name` whose labels include `labels` (so a counter
        labelled by queue reads as its total), 0 when there is none yet."""
        return sample_total(self.registry, name, labels or {})

    @property
    def base_url(self) -> str:
        """Where its /metrics, /health and /ready are served."""
        return f"http://127.0.0.1:{self.settings.metrics_port}"


@contextlib.asynccontextmanager
async def running_processor(settings: Settings, store: Store) -> AsyncIterator[RunningProcessor]:
    """Run a processor in this loop; stop it and check it drained cleanly on exit."""
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_processor(settings, store, stop, registry=registry))
    running = RunningProcessor(settings, registry, stop, task)
    try:
        await eventually(
            lambda: task.done() or running.value("exporter_ready") == 1,
            message="processor ready",
        )
        if task.done():
            task.result()  # surfaces the error that ended it
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=scaled(30))


def event_json(body: str) -> dict[str, Any]:
    """A body as JSON, for assertions."""
    parsed: dict[str, Any] = json.loads(body)
    return parsed
