"""The processor end to end: real moto SQS, real Redis, `run_processor` in the test's loop."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from exporter.events import parse_event
from exporter.store.redis import RedisStore
from tests.integration.processing.processor_support import (
    drain_queue,
    event_body,
    processor_settings,
    queue_depth,
    running_processor,
)
from tests.polling import eventually
from tests.queue_names import dlq_name_of
from tests.servers import RedisServer, free_port
from tests.sqs_messages import send, sqs_client
from tests.store_support import redis_store

VALID = [
    event_body("purchase", "10.10", event_id="p-1"),
    event_body("purchase", "0.20", event_id="p-2"),
    event_body("purchase", "0.000001"),
    event_body("page_view", "1"),
    event_body("page_view", "1"),
]
PRODUCER_RETRY = event_body("purchase", "10.10", event_id="p-1")  # same id: counted once
MALFORMED = {
    "not_json": "definitely not json",
    "not_object": "[1, 2]",
    "missing_field": '{"type": "purchase", "value": 1}',
    "bad_value": '{"type": "purchase", "value": "ten", "occurred_at": "2020-10-06 10:02:05"}',
    "bad_timestamp": '{"type": "purchase", "value": 1, "occurred_at": "yesterday"}',
    "bad_type": '{"type": "no spaces", "value": 1, "occurred_at": "2020-10-06 10:02:05"}',
}


async def test_valid_duplicate_and_malformed_messages(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """Exact totals, each duplicate counted once, each malformed body in the DLQ with its reason."""
    store = open_store()
    settings = processor_settings(redis_server.url, sqs_endpoint)
    client = sqs_client(sqs_endpoint)
    async with running_processor(settings, store) as processor:
        queue_url = client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        dlq_url = client.get_queue_url(QueueName=dlq_name_of(settings))["QueueUrl"]
        # A message whose effect is already stored, as after a crash between store and delete:
        # its redelivery must be recognised by MessageId and only deleted.
        [redelivered_id] = send(client, queue_url, [event_body("purchase", "99")])
        await store.apply(
            [(f"msg:{redelivered_id}", parse_event(event_body("purchase", "99").encode()))]
        )
        bad_ids = send(client, queue_url, list(MALFORMED.values()))
        send(client, queue_url, [*VALID, PRODUCER_RETRY])
        total = 1 + len(MALFORMED) + len(VALID) + 1
        await eventually(
            lambda: (
                processor.value("exporter_messages_received_total") >= total
                and processor.value("exporter_messages_in_flight") == 0
            ),
            message="every message handled",
        )
        await eventually(lambda: queue_depth(client, queue_url) == 0, message="queue empty")

        snapshot = await store.snapshot()
        purchase, page_view = snapshot.get("purchase"), snapshot.get("page_view")
        assert purchase is not None
        assert page_view is not None
        assert (purchase.count, purchase.sum_micros) == (4, 109_300_001)  # 99 + 10.1 + 0.2 + 1e-6
        assert (page_view.count, page_view.sum_micros) == (2, 2_000_000)

        dead = drain_queue(client, dlq_url)
        assert sorted(m["reason"] for m in dead) == sorted(MALFORMED)
        for message in dead:
            assert message["body"] == MALFORMED[message["reason"]]
            assert message["detail"]
            assert message["first_received_at"].startswith("20")
        assert {m["original_message_id"] for m in dead} == set(bad_ids)

        assert processor.value("exporter_messages_received_total") == total
        assert processor.value("exporter_events_processed_total", {"type": "purchase"}) == 3
        assert processor.value("exporter_events_processed_total", {"type": "page_view"}) == 2
        assert processor.value("exporter_event_value_count", {"type": "purchase"}) == 3
        # The summary is a float (exact totals live in the store), so compare approximately.
        assert processor.value("exporter_event_value_sum", {"type": "purchase"}) == pytest.approx(
            10.300001
        )
        assert processor.value("exporter_events_duplicate_total") == 2
        for reason in MALFORMED:
            assert processor.value("exporter_events_invalid_total", {"reason": reason}) == 1
            labels = {"reason": reason}
            assert processor.value("exporter_messages_dead_lettered_total", labels) == 1
        assert processor.value("exporter_batch_size_sum") == total
        assert processor.value("exporter_event_lag_seconds_count") == 5
        stage = {"stage": "store"}
        assert processor.value("exporter_batch_stage_duration_seconds_count", stage) >= 1
        await eventually(
            lambda: (
                processor.value("exporter_queue_messages", {"queue": "main", "state": "visible"})
                == 0
            ),
            message="queue depth gauge",
        )
        assert processor.value("exporter_build_info", _build_labels(processor.registry)) == 1


def _build_labels(registry: object) -> dict[str, str]:
    from prometheus_client import CollectorRegistry

    assert isinstance(registry, CollectorRegistry)
    for metric in registry.collect():
        if metric.name == "exporter_build_info":
            return dict(metric.samples[0].labels)
    raise AssertionError("no build info")


async def test_too_many_types_are_dead_lettered(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """Past the type cap, events of a new type go to the DLQ with reason too_many_types."""
    store = open_store(max_types=2)
    settings = processor_settings(redis_server.url, sqs_endpoint)
    client = sqs_client(sqs_endpoint)
    async with running_processor(settings, store) as processor:
        queue_url = client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        send(client, queue_url, [event_body(kind, "1") for kind in ("a", "b")])
        await eventually(lambda: processor.value("exporter_messages_received_total") == 2)
        send(client, queue_url, [event_body("c", "1")])
        await eventually(
            lambda: (
                processor.value(
                    "exporter_messages_dead_lettered_total", {"reason": "too_many_types"}
                )
                == 1
            ),
            message="third type dead-lettered",
        )
        assert processor.value("exporter_events_invalid_total", {"reason": "too_many_types"}) == 1
        dlq_url = client.get_queue_url(QueueName=dlq_name_of(settings))["QueueUrl"]
        [dead] = drain_queue(client, dlq_url)
        assert dead["reason"] == "too_many_types"
        assert json.loads(dead["body"])["type"] == "c"
        assert [t.type for t in (await store.snapshot()).types] == ["a", "b"]


async def test_two_processors_on_one_queue_never_double_count(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """Two replicas sharing a queue and a Redis count every event exactly once between them."""
    settings = processor_settings(redis_server.url, sqs_endpoint)
    other = settings.model_copy(update={"metrics_port": free_port()})
    client = sqs_client(sqs_endpoint)
    store_a, store_b = open_store(), redis_store(redis_server.url)
    async with (
        running_processor(settings, store_a) as first,
        running_processor(other, store_b) as second,
    ):
        queue_url = client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        bodies = [event_body("click", "0.1", event_id=f"e-{n}") for n in range(150)]
        retries = bodies[:30]  # a producer resending a fifth of them
        await asyncio.to_thread(send, client, queue_url, bodies + retries)
        await eventually(
            lambda: queue_depth(client, queue_url) == 0, timeout=30, message="queue drained"
        )
        await eventually(
            lambda: (
                first.value("exporter_messages_in_flight")
                + second.value("exporter_messages_in_flight")
                == 0
            )
        )
        click = (await store_a.snapshot()).get("click")
        assert click is not None
        assert (click.count, click.sum_micros) == (150, 15_000_000)
        processed = sum(
            p.value("exporter_events_processed_total", {"type": "click"}) for p in (first, second)
        )
        duplicates = sum(p.value("exporter_events_duplicate_total") for p in (first, second))
        received = sum(p.value("exporter_messages_received_total") for p in (first, second))
        assert processed == 150
        # SQS delivers at least once: a standard queue (and moto, under load) may hand the same
        # message to both replicas. Every copy beyond the first is a duplicate, never a count.
        assert duplicates >= 30
        assert processed + duplicates == received
    await store_b.close()


async def test_health_ready_and_metrics_are_served(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """The metrics port serves /health, /ready (200 JSON) and /metrics with the contract names."""
    settings = processor_settings(redis_server.url, sqs_endpoint)
    async with running_processor(settings, open_store()) as processor:

        def get(path: str) -> tuple[int, str]:
            with urllib.request.urlopen(processor.base_url + path, timeout=5) as response:  # noqa: S310
                return response.status, response.read().decode()

        assert await asyncio.to_thread(get, "/health") == (200, '{"status": "alive"}')
        assert await asyncio.to_thread(get, "/ready") == (200, '{"status": "ready"}')
        status, text = await asyncio.to_thread(get, "/metrics")
        assert status == 200
        queue = settings.sqs_queue_name
        assert f'exporter_messages_received_total{{queue_name="{queue}"}} 0.0' in text
        assert "exporter_ready 1.0" in text
    assert processor.value("exporter_ready") == 0
