"""One retry layer per SQS call path, counted on a real moto server behind a proxy that answers
chosen actions with a 500: the requests a failing call makes are its one layer's limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from exporter.sqs.batches import BATCH_ATTEMPTS
from exporter.sqs.config import AwsCredentials, SqsConfig
from exporter.sqs.messages import DeadLetter, Message, SourceUnavailable
from exporter.sqs.source import SqsSource
from exporter.tools.producer import SEND_ATTEMPTS, Producer, make_sqs_client
from tests.faults.proxy import SqsFaultProxy
from tests.integration.processing.processor_support import queue_depth, unique_queue_name
from tests.polling import eventually
from tests.sqs_messages import send, sqs_client

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

Act = Callable[[SqsSource, Sequence[Message]], Awaitable[object]]


@pytest.fixture(name="proxy")
async def fixture_proxy(sqs_endpoint: str) -> AsyncIterator[SqsFaultProxy]:
    """moto behind a proxy that fails nothing until told to."""
    proxy = SqsFaultProxy(sqs_endpoint)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def _source(proxy: SqsFaultProxy, errors: list[str]) -> SqsSource:
    name = unique_queue_name("layers")
    config = SqsConfig(
        queue_name=name,
        dlq_name=f"{name}-dlq",
        endpoint_url=proxy.url,
        create_queues=True,
        wait_time_seconds=0,
    )
    return await SqsSource.open(config, on_error=errors.append, environ=KEYS)


async def _received(source: SqsSource, count: int) -> list[Message]:
    messages: list[Message] = []

    async def all_in_hand() -> bool:
        messages.extend(await source.receive(10))
        return len(messages) >= count

    await eventually(all_in_hand, message=f"{count} messages received")
    return messages


async def _delete(source: SqsSource, messages: Sequence[Message]) -> object:
    return await source.delete(messages)


async def _release(source: SqsSource, messages: Sequence[Message]) -> object:
    await source.change_visibility(messages, 0)
    return None


async def _dead_letter(source: SqsSource, messages: Sequence[Message]) -> object:
    return await source.dead_letter([DeadLetter(m, "not_json", "test") for m in messages])


@pytest.mark.parametrize(
    ("action", "act"),
    [
        ("DeleteMessageBatch", _delete),
        ("ChangeMessageVisibilityBatch", _release),
        ("SendMessageBatch", _dead_letter),
    ],
)
async def test_a_batch_call_that_always_fails_makes_the_batch_layers_attempts(
    proxy: SqsFaultProxy, sqs_endpoint: str, action: str, act: Act
) -> None:
    """Every request of a *Batch action answered 500: one call for a batch makes exactly
    BATCH_ATTEMPTS requests (it made three per try, twelve in all, under two stacked backoffs),
    each counted as a failed call, then raises SourceUnavailable; the messages stay in SQS."""
    errors: list[str] = []
    source = await _source(proxy, errors)
    client = sqs_client(sqs_endpoint)
    try:
        url = source.queues[0].url
        send(client, url, ["a", "b", "c"])
        messages = await _received(source, 3)
        proxy.fail(action)
        with pytest.raises(SourceUnavailable, match="InternalFailure"):
            await act(source, messages)
    finally:
        await source.close()
    assert proxy.failed[action] == BATCH_ATTEMPTS == 4
    assert len(errors) == BATCH_ATTEMPTS
    assert queue_depth(client, url) == 3


async def test_a_receive_that_fails_is_one_request(proxy: SqsFaultProxy) -> None:
    """ReceiveMessage answered 500: a receive is one request, counted once (the processor's
    poller is the receive's retry layer, and pauses before its next one)."""
    errors: list[str] = []
    source = await _source(proxy, errors)
    proxy.fail("ReceiveMessage")
    try:
        with pytest.raises(SourceUnavailable, match="InternalFailure"):
            await source.receive(10)
    finally:
        await source.close()
    assert proxy.requests["ReceiveMessage"] == 1
    assert errors == ["receive"]


async def test_a_producer_send_that_always_fails_makes_the_producers_attempts(
    proxy: SqsFaultProxy, sqs_endpoint: str
) -> None:
    """Every SendMessageBatch answered 500: `exporter produce`'s sender makes exactly
    SEND_ATTEMPTS requests for a batch (botocore's own retries are off: it made three per try)
    and reports every event as failed."""
    url = sqs_client(sqs_endpoint).create_queue(QueueName=unique_queue_name("sent"))["QueueUrl"]
    proxy.fail("SendMessageBatch")
    client = make_sqs_client(proxy.url, "us-east-1", AwsCredentials("testing", "testing"))
    bodies = [b'{"type":"t","value":1,"occurred_at":"2020-10-06 10:02:05"}'] * 4
    producer = Producer(client, url, retry_delay_seconds=0.01)
    summary = await asyncio.to_thread(producer.run, bodies)
    assert proxy.failed["SendMessageBatch"] == SEND_ATTEMPTS == 5
    assert (summary.sent, summary.failed) == (0, 4)
