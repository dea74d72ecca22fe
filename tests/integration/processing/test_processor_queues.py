"""Two queues into one processor, against moto: both drained, exact totals, per-queue metrics,
each queue's dead letters in its own dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis

from exporter.store.redis import RedisStore
from tests.integration.processing.processor_support import (
    drain_queue,
    event_body,
    processor_settings,
    queue_depth,
    running_processor,
    unique_queue_name,
)
from tests.polling import eventually
from tests.servers import RedisServer
from tests.sqs_messages import send, sqs_client


async def test_two_queues_into_one_processor(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """SQS_QUEUE_URL and SQS_QUEUE_URLS name two existing queues: each is read, each gets its own
    dead-letter queue (`<name>-dlq`, created), the counters and depth gauges carry each queue's
    name, and the totals are the exact sum of both."""
    client = sqs_client(sqs_endpoint)
    orders, clicks = unique_queue_name("orders"), unique_queue_name("clicks")
    orders_url = client.create_queue(QueueName=orders)["QueueUrl"]
    clicks_url = client.create_queue(QueueName=clicks)["QueueUrl"]
    settings = processor_settings(
        redis_server.url,
        sqs_endpoint,
        sqs_queue_url=orders_url,
        sqs_queue_urls=(clicks_url,),
        concurrency=1,
    )
    store = open_store()
    send(client, orders_url, [event_body("purchase", f"{n}.5") for n in range(25)] + ["bad"])
    send(client, clicks_url, [event_body("click", "1") for _ in range(40)] + ["[1]"])
    async with running_processor(settings, store) as processor:
        await eventually(
            lambda: (
                queue_depth(client, orders_url) + queue_depth(client, clicks_url) == 0
                and processor.value("exporter_messages_in_flight") == 0
            ),
            timeout=30,
            message="both queues drained",
        )
        assert processor.value("exporter_messages_received_total", {"queue_name": orders}) == 26
        assert processor.value("exporter_messages_received_total", {"queue_name": clicks}) == 41
        for name, reason in ((orders, "not_json"), (clicks, "not_object")):
            labels = {"reason": reason, "queue_name": f"{name}-dlq"}
            assert processor.value("exporter_messages_dead_lettered_total", labels) == 1
        await eventually(
            lambda: (
                {
                    name
                    for name in (orders, clicks, f"{orders}-dlq", f"{clicks}-dlq")
                    if processor.registry.get_sample_value(
                        "exporter_queue_messages",
                        {
                            "queue": "dead_letter" if name.endswith("-dlq") else "main",
                            "queue_name": name,
                            "state": "visible",
                        },
                    )
                    is not None
                }
                == {orders, clicks, f"{orders}-dlq", f"{clicks}-dlq"}
            ),
            message="a depth gauge for every queue",
        )
    snapshot = await store.snapshot()
    purchase, click = snapshot.get("purchase"), snapshot.get("click")
    assert purchase is not None
    assert click is not None
    assert (purchase.count, purchase.sum_micros) == (
        25,
        sum(n * 10**6 + 500_000 for n in range(25)),
    )
    assert (click.count, click.sum_micros) == (40, 40 * 10**6)
    for name, body, source in ((orders, "bad", orders), (clicks, "[1]", clicks)):
        dlq_url = client.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
        [dead] = drain_queue(client, dlq_url)
        assert (dead["body"], dead["source_queue"]) == (body, source)
