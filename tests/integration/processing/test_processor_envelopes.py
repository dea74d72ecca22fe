"""Events as AWS delivers them, against moto: a real SNS topic subscribed to the queue (raw
delivery off, and on), and EventBridge-shaped bodies; each event counted once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
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
from tests.queue_names import dlq_name_of
from tests.servers import RedisServer
from tests.sqs_messages import send, sqs_client

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def subscribe(sns: Any, sqs: SQSClient, topic_arn: str, queue_url: str, *, raw: bool) -> None:
    """Subscribe a queue to a topic, as an SNS fan-out is wired."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true" if raw else "false"},
    )


async def test_sns_notifications_are_unwrapped_and_each_event_counted_once(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """A topic fanned out to the processor's queue and a tap queue (raw delivery off): a
    duplicated publish of an event with an id, an event without one delivered twice by SNS (the
    same notification again), a malformed event; and a raw-delivery topic: exact totals, the
    malformed one dead-lettered with its reason naming the notification, the queue drained."""
    settings = processor_settings(redis_server.url, sqs_endpoint)
    store = open_store()
    sqs = sqs_client(sqs_endpoint)
    sns = boto3.session.Session().client("sns", endpoint_url=sqs_endpoint, region_name="us-east-1")
    async with running_processor(settings, store) as processor:
        queue_url = sqs.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=dlq_name_of(settings))["QueueUrl"]
        tap_url = sqs.create_queue(QueueName=unique_queue_name("tap"))["QueueUrl"]
        topic = sns.create_topic(Name=unique_queue_name("orders"))["TopicArn"]
        raw_topic = sns.create_topic(Name=unique_queue_name("raw"))["TopicArn"]
        subscribe(sns, sqs, topic, queue_url, raw=False)
        subscribe(sns, sqs, topic, tap_url, raw=False)
        subscribe(sns, sqs, raw_topic, queue_url, raw=True)

        with_id = event_body("purchase", "10.25", event_id="order-1")
        sns.publish(TopicArn=topic, Message=with_id)
        sns.publish(TopicArn=topic, Message=with_id)  # the producer's retry: its id counts once
        sns.publish(
            TopicArn=topic,
            Message=event_body("purchase", "0.75"),
            MessageAttributes={"traceparent": {"DataType": "String", "StringValue": TRACEPARENT}},
        )
        sns.publish(TopicArn=topic, Message=event_body("purchase", '"ten"'))
        sns.publish(TopicArn=raw_topic, Message=event_body("purchase", "100"))
        # SNS delivers at least once: the same notification again, as a new SQS message.
        tapped = drain_queue(sqs, tap_url)
        [again] = [m["body"] for m in tapped if "0.75" in json.loads(m["body"])["Message"]]
        send(sqs, queue_url, [again])

        await eventually(
            lambda: (
                queue_depth(sqs, queue_url) == 0
                and processor.value("exporter_messages_in_flight") == 0
                and processor.value("exporter_messages_received_total") >= 6
            ),
            timeout=30,
            message="every delivery handled",
        )
        assert processor.value("exporter_events_duplicate_total") == 2
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    assert (totals.count, totals.sum_micros) == (3, 111_000_000)
    [dead] = drain_queue(sqs, dlq_url)
    assert dead["reason"] == "bad_value"
    assert dead["detail"].startswith("the event in SNS notification ")
    assert "'value' must be a number" in dead["detail"]
    assert json.loads(dead["body"])["Type"] == "Notification"  # kept whole, for a redrive


async def test_eventbridge_events_are_unwrapped_and_counted_once(
    redis_server: RedisServer,
    redis_client: aioredis.Redis,
    sqs_endpoint: str,
    open_store: Callable[..., RedisStore],
) -> None:
    """EventBridge-shaped bodies as a rule delivers them to SQS: the `detail` is the event, its
    `id` the identity of an event without one (a second delivery counts once), and a malformed
    detail is dead-lettered naming the EventBridge event."""
    settings = processor_settings(redis_server.url, sqs_endpoint)
    store = open_store()
    sqs = sqs_client(sqs_endpoint)

    def envelope(event_id: str, detail: str) -> str:
        return (
            f'{{"version": "0", "id": "{event_id}", "detail-type": "Order Placed", '
            '"source": "com.example.shop", "account": "123456789012", '
            '"time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], '
            f'"detail": {detail}}}'
        )

    good = envelope("eb-1", event_body("purchase", "0.1000005"))
    bad = envelope("eb-2", '{"type": "purchase", "value": 1}')
    async with running_processor(settings, store) as processor:
        queue_url = sqs.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=dlq_name_of(settings))["QueueUrl"]
        send(sqs, queue_url, [good, good, bad])
        await eventually(
            lambda: (
                queue_depth(sqs, queue_url) == 0
                and processor.value("exporter_messages_in_flight") == 0
            ),
            message="the queue drained",
        )
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    assert (totals.count, totals.sum_micros) == (1, 100_000)  # 0.1000005 rounds half-even
    [dead] = drain_queue(sqs, dlq_url)
    assert dead["reason"] == "missing_field"
    assert dead["detail"] == (
        "the event in EventBridge event 'eb-2' ('com.example.shop', 'Order Placed'): "
        "required field 'occurred_at' is missing"
    )
