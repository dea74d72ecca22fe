"""The SQS source against a real moto server: queues, receive, delete, dead-letter, visibility."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from exporter.cli.startup import first_contact, sqs_dependency
from exporter.sqs.config import SqsConfig
from exporter.sqs.credentials import Credentials, StaticCredentials
from exporter.sqs.messages import DeadLetter, SourceMisconfigured, SourceUnavailable
from exporter.sqs.source import SqsSource
from exporter.sqs.wire import SqsClient
from tests.integration.processing.processor_support import drain_queue, source_on, unique_queue_name
from tests.servers import free_port
from tests.sqs_messages import send, sqs_client

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def config(endpoint: str, **overrides: object) -> SqsConfig:
    name = unique_queue_name()
    values: dict[str, object] = {
        "queue_name": name,
        "dlq_name": f"{name}-dlq",
        "endpoint_url": endpoint,
        "create_queues": True,  # each test's queues are new
        "wait_time_seconds": 0,
        "visibility_timeout_seconds": 30,
        "max_receive_count": 3,
    }
    values.update(overrides)
    return SqsConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(name="source")
async def fixture_source(sqs_endpoint: str) -> AsyncIterator[SqsSource]:
    """A source on fresh queues it created."""
    source = await SqsSource.open(config(sqs_endpoint))
    yield source
    await source.close()


async def test_open_creates_the_queue_and_its_dead_letter_queue(sqs_endpoint: str) -> None:
    """Missing queues are created: the main one with a redrive policy to the DLQ."""
    settings = config(sqs_endpoint, max_receive_count=7, visibility_timeout_seconds=45)
    source = await SqsSource.open(settings)
    await source.close()
    client = sqs_client(sqs_endpoint)
    attributes = client.get_queue_attributes(QueueUrl=source.queues[0].url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_arn = client.get_queue_attributes(
        QueueUrl=source.queues[0].dlq_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == 7
    assert attributes["VisibilityTimeout"] == "45"
    assert source.queues[0].dlq_url.endswith(source.queues[0].dlq_name)


async def test_open_uses_an_existing_queue_by_url(sqs_endpoint: str) -> None:
    """SQS_QUEUE_URL wins over the name; an existing queue is used as it is."""
    client = sqs_client(sqs_endpoint)
    url = client.create_queue(QueueName=unique_queue_name("existing"))["QueueUrl"]
    source = await SqsSource.open(config(sqs_endpoint, queue_url=url))
    await source.close()
    assert source.queues[0].url == url


async def test_an_existing_fifo_queue_dead_letters_where_its_redrive_policy_says(
    sqs_endpoint: str,
) -> None:
    """An existing queue's dead-letter queue is the one its redrive policy names (not a new
    `<name>-dlq`); on FIFO queues a dead letter keeps its group, and a second forward of the same
    message within SQS's deduplication interval is not a second copy."""
    client = sqs_client(sqs_endpoint)
    dead = client.create_queue(
        QueueName=unique_queue_name("their-dead") + ".fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]
    policy = {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": "3"}
    url = client.create_queue(
        QueueName=unique_queue_name("theirs") + ".fifo",
        Attributes={"FifoQueue": "true", "RedrivePolicy": json.dumps(policy)},
    )["QueueUrl"]
    before = sorted(client.list_queues()["QueueUrls"])
    source = await SqsSource.open(config(sqs_endpoint, queue_url=url, dlq_name=None))
    try:
        assert (source.queues[0].dlq_url, source.queues[0].fifo) == (dead, True)
        assert sorted(client.list_queues()["QueueUrls"]) == before
        client.send_message(
            QueueUrl=url, MessageBody="{", MessageGroupId="g-7", MessageDeduplicationId="d-1"
        )
        [message] = await source.receive(10)
        assert message.group_id == "g-7"
        letter = DeadLetter(message, "not_json", "body is not JSON")
        assert await source.dead_letter([letter]) == [message]
        assert await source.dead_letter([letter]) == [message]  # a retried forward
    finally:
        await source.close()
    reply = client.receive_message(
        QueueUrl=dead, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    )
    [forwarded] = reply["Messages"]
    assert forwarded["Attributes"]["MessageGroupId"] == "g-7"


async def test_missing_queue_without_create_is_a_configuration_error(sqs_endpoint: str) -> None:
    """With create_queues off, a missing queue, then a missing dead-letter queue, raises
    SourceMisconfigured naming it; with both there, the source opens."""
    settings = config(sqs_endpoint, create_queues=False)
    dlq_name = f"{settings.queue_name}-dlq"
    with pytest.raises(SourceMisconfigured, match=f"queue '{settings.queue_name}'.*--create-q"):
        await SqsSource.open(settings)
    client = sqs_client(sqs_endpoint)
    client.create_queue(QueueName=settings.queue_name)
    with pytest.raises(SourceMisconfigured, match=f"dead-letter queue '{dlq_name}'"):
        await SqsSource.open(settings)
    client.create_queue(QueueName=dlq_name)
    source = await SqsSource.open(settings)
    await source.close()
    assert source.queues[0].dlq_url.endswith(dlq_name)


async def test_receive_reads_attributes_and_delete_acknowledges(
    source: SqsSource, sqs_endpoint: str
) -> None:
    """Received messages carry id, receive count, first receive time and traceparent."""
    client = sqs_client(sqs_endpoint)
    client.send_message(
        QueueUrl=source.queues[0].url,
        MessageBody="hello",
        MessageAttributes={"traceparent": {"DataType": "String", "StringValue": TRACEPARENT}},
    )
    [message] = await source.receive(10)
    assert message.body == b"hello"
    assert message.traceparent == TRACEPARENT
    assert message.receive_count == 1
    assert message.first_received_at is not None
    assert abs((datetime.now(UTC) - message.first_received_at).total_seconds()) < 60
    assert await source.delete([message]) == []
    assert await source.receive(10) == []


async def test_change_visibility_to_zero_releases_at_once(
    source: SqsSource, sqs_endpoint: str
) -> None:
    """A released message can be received again immediately, its receive count grown."""
    client = sqs_client(sqs_endpoint)
    send(client, source.queues[0].url, ["a"])
    [first] = await source.receive(10)
    assert await source.receive(10) == []
    await source.change_visibility([first], 0)
    [again] = await source.receive(10)
    assert again.message_id == first.message_id
    assert again.receive_count == 2


async def test_dead_letter_carries_reason_detail_and_origin(
    source: SqsSource, sqs_endpoint: str
) -> None:
    """A dead letter keeps the body and says why, which message, and when it was first seen."""
    client = sqs_client(sqs_endpoint)
    send(client, source.queues[0].url, ["{broken"])
    [message] = await source.receive(10)
    sent = await source.dead_letter([DeadLetter(message, "not_json", "body is not JSON")])
    assert sent == [message]
    [dead] = drain_queue(client, source.queues[0].dlq_url)
    assert dead["body"] == "{broken"
    assert dead["reason"] == "not_json"
    assert dead["detail"] == "body is not JSON"
    assert dead["original_message_id"] == message.message_id
    assert message.first_received_at is not None
    assert datetime.fromisoformat(dead["first_received_at"]) == message.first_received_at


async def test_a_stale_receipt_handle_is_reported_not_raised(
    source: SqsSource, sqs_endpoint: str
) -> None:
    """Deleting with a receipt handle SQS no longer accepts returns it as failed, no exception."""
    client = sqs_client(sqs_endpoint)
    send(client, source.queues[0].url, ["a"])
    [message] = await source.receive(10)
    await source.delete([message])
    stale = message.__class__(message.message_id, "not-a-receipt-handle", message.body)
    failed = await source.delete([stale])
    assert [m.message_id for m in failed] == [message.message_id]


async def test_depths_count_both_queues(source: SqsSource, sqs_endpoint: str) -> None:
    """Queue depth reports visible and in-flight messages of the main and dead-letter queues."""
    client = sqs_client(sqs_endpoint)
    send(client, source.queues[0].url, ["a", "b", "c"])
    await source.receive(1)
    main, dead = await source.depths()
    assert (main.role, main.name) == ("main", source.queues[0].name)
    assert main.counts["visible"] + main.counts["in_flight"] == 3
    assert main.counts["in_flight"] >= 1
    assert (dead.role, dead.name) == ("dead_letter", source.queues[0].dlq_name)
    assert dead.counts == {"visible": 0, "in_flight": 0, "delayed": 0}


async def test_an_unreachable_endpoint_is_transient() -> None:
    """Connection failures raise SourceUnavailable (retry later) and are counted per operation
    and attempt: a receive tries once (its poller retries), a ping three times."""
    settings = config(f"http://127.0.0.1:{free_port()}")
    errors: list[str] = []
    client = SqsClient.connect(
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        credentials=StaticCredentials(Credentials("testing", "testing")),
        environ={},
    )
    source = source_on(
        client,
        f"{settings.endpoint_url}/123456789012/q",
        f"{settings.endpoint_url}/123456789012/q-dlq",
        on_error=errors.append,
    )
    with pytest.raises(SourceUnavailable):
        await source.receive(10)
    with pytest.raises(SourceUnavailable):
        await source.ping()
    await source.close()
    assert errors == ["receive", "ping", "ping", "ping"]


async def test_stop_during_the_start_up_backoff_ends_the_wait_without_another_attempt() -> None:
    """With SQS unreachable at start, `stop` set while start-up backs off between tries to find
    the queues ends the wait at once, with no further try."""
    settings = config(f"http://127.0.0.1:{free_port()}")
    stop = asyncio.Event()
    attempts: list[str] = []

    def on_error(operation: str) -> None:
        attempts.append(operation)
        if len(attempts) == 2:
            # Set while the start-up waits out its backoff, not before it checks `stop`.
            asyncio.get_running_loop().call_soon(stop.set)

    opening = await SqsSource.connect(settings, on_error=on_error)
    try:
        found = await first_contact(
            opening.find,
            sqs_dependency(str(settings.endpoint_url), "check AWS_ENDPOINT_URL"),
            timeout_seconds=0,
            stop=stop,
        )
    finally:
        await opening.close()
    assert found is False
    assert attempts == ["resolve_queue", "resolve_queue"]
