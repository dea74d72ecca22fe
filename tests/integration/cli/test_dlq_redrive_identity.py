"""A redriven event keeps its identity: counted once even without an `id`, even if it had been
counted before SQS moved it to the dead-letter queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis

from exporter.cli import main
from exporter.events import Event, parse_event
from exporter.store.redis import RedisStore
from tests.integration.processing.processor_support import (
    event_body,
    processor_settings,
    queue_depth,
    running_processor,
)
from tests.polling import eventually
from tests.queue_names import dlq_name_of
from tests.servers import RedisServer
from tests.sqs_messages import sqs_client


async def test_redrive_of_an_already_counted_event_without_id_counts_once(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """Counted, then moved to the DLQ by SQS (its delete never happened), then redriven: once."""
    settings = processor_settings(redis_server.url, sqs_endpoint, max_receive_count=1)
    store = open_store()
    client = sqs_client(sqs_endpoint)
    # The processor creates the queues with the redrive policy, then stops.
    async with running_processor(settings, store):
        pass
    queue_url = client.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
    dlq_url = client.get_queue_url(QueueName=dlq_name_of(settings))["QueueUrl"]
    client.send_message(QueueUrl=queue_url, MessageBody=event_body("purchase", "12.5"))
    counted = {"n": 0}

    async def counted_and_moved() -> bool:
        # Play the processor that applied a batch and died before deleting it, until SQS gives up.
        reply = await asyncio.to_thread(
            client.receive_message, QueueUrl=queue_url, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        for message in reply.get("Messages", []):
            if counted["n"] == 0:
                events = [(f"msg:{message['MessageId']}", _parse(message["Body"]))]
                assert (await store.apply(events)).outcomes == ("applied",)
                counted["n"] = 1
        return counted["n"] == 1 and queue_depth(client, dlq_url) == 1

    await eventually(counted_and_moved, timeout=20, message="moved to the dead-letter queue")
    redrive = ["dlq", "redrive", "--aws-endpoint-url", sqs_endpoint]
    redrive += ["--sqs-queue-name", settings.sqs_queue_name]
    assert await asyncio.to_thread(main, redrive) == 0
    async with running_processor(settings, store) as processor:
        await eventually(
            lambda: processor.value("exporter_events_duplicate_total") == 1,
            timeout=20,
            message="the redriven copy recognised as a duplicate",
        )
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    assert (totals.count, totals.sum) == (1, 12.5)
    assert queue_depth(client, queue_url) == 0


def _parse(body: str) -> Event:
    return parse_event(body.encode())
