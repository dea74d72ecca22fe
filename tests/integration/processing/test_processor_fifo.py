"""FIFO queues end to end against moto: created as FIFO, dead letters keep group and order,
redrive keeps the groups."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from exporter.cli import main
from exporter.store.redis import RedisStore
from tests.integration.processing.processor_support import (
    event_body,
    processor_settings,
    queue_depth,
    running_processor,
    unique_queue_name,
)
from tests.polling import eventually
from tests.servers import RedisServer
from tests.sqs_messages import drain, send_fifo, sqs_client

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient


def receive_all(client: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Every message of a FIFO queue in delivery order, with its group, consuming them."""
    return [
        {"body": message.body, "group": message.group, **message.attributes}
        for message in drain(client, queue_url)
    ]


async def test_a_fifo_queue_with_three_groups_counts_exactly_and_keeps_dead_letters_in_order(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """`orders.fifo` and `orders-dlq.fifo` are created as FIFO queues; three groups with
    malformed events among valid ones: exact totals, every bad event in the FIFO dead-letter
    queue with its reason, its own group and its group's order; redrive keeps the groups."""
    name = unique_queue_name("orders") + ".fifo"
    dlq_name = name.removesuffix(".fifo") + "-dlq.fifo"
    settings = processor_settings(redis_server.url, sqs_endpoint, sqs_queue_name=name)
    client = sqs_client(sqs_endpoint)
    store = open_store()
    plan: list[tuple[str, str]] = []
    bad: dict[str, list[str]] = defaultdict(list)
    for n in range(30):
        group = f"customer-{n % 3}"
        if n % 7 == 3:
            body = event_body("purchase", f'"bad-{n}"')
            bad[group].append(body)
        else:
            body = event_body("purchase", str(n), event_id=f"o-{n}")
        plan.append((group, body))
    async with running_processor(settings, store) as processor:
        queue_url = client.get_queue_url(QueueName=name)["QueueUrl"]
        dlq_url = client.get_queue_url(QueueName=dlq_name)["QueueUrl"]
        for url in (queue_url, dlq_url):
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            assert attributes["Attributes"]["FifoQueue"] == "true"
            assert attributes["Attributes"]["ContentBasedDeduplication"] == "false"
        send_fifo(client, queue_url, plan)
        await eventually(
            lambda: (
                queue_depth(client, queue_url) == 0
                and processor.value("exporter_messages_in_flight") == 0
            ),
            timeout=60,
            message="the FIFO queue drained",
        )
        labels = {"reason": "bad_value", "queue_name": dlq_name}
        assert processor.value("exporter_messages_dead_lettered_total", labels) == sum(
            map(len, bad.values())
        )
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    valid = [n for n in range(30) if n % 7 != 3]
    assert (totals.count, totals.sum_micros) == (len(valid), sum(valid) * 1_000_000)

    dead = receive_all(client, dlq_url)
    by_group: dict[str, list[str]] = defaultdict(list)
    for letter in dead:
        assert letter["reason"] == "bad_value"
        assert letter["source_queue"] == name
        by_group[letter["group"]].append(letter["body"])
    assert by_group == bad  # each group's dead letters in the group's own order

    # Back into the dead-letter queue, then redriven: each keeps its group on the way back.
    send_fifo(client, dlq_url, [(group, body) for group, bodies in bad.items() for body in bodies])
    argv = ["dlq", "redrive", "--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]
    assert await asyncio.to_thread(main, argv) == 0
    back: dict[str, list[str]] = defaultdict(list)
    for message in receive_all(client, queue_url):
        back[message["group"]].append(message["body"])
    assert back == bad
    assert queue_depth(client, dlq_url) == 0
