"""The tests' SQS server keeps a FIFO group's order the way AWS does, where plain moto does not
(`tests/moto_fifo.py`)."""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

import boto3
from moto import mock_aws

from tests.integration.processing.processor_support import unique_queue_name
from tests.polling import wait_limit, wait_until
from tests.sqs_messages import sqs_client

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.type_defs import MessageTypeDef

_dedup = itertools.count()


def _fifo_queue(client: SQSClient) -> str:
    return client.create_queue(
        QueueName=f"{unique_queue_name()}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]


def _send(client: SQSClient, queue_url: str, *bodies: str) -> None:
    for body in bodies:
        client.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageGroupId="c",
            MessageDeduplicationId=f"d-{next(_dedup)}",
        )


def _receive(
    client: SQSClient, queue_url: str, count: int, visibility: int, wait: int
) -> list[str]:
    reply = client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=count,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=wait,
    )
    return [message["Body"] for message in reply.get("Messages", [])]


def _after_expiry(client: SQSClient) -> list[str]:
    """What a receive hands out once three of a group's five messages have been received and
    their visibility timeout has passed (a consumer killed with them)."""
    queue_url = _fifo_queue(client)
    _send(client, queue_url, "c1", "c2", "c3", "c4", "c5")
    assert _receive(client, queue_url, 3, visibility=1, wait=0) == ["c1", "c2", "c3"]
    # A long poll returns as soon as the group is available again: no sleep needed.
    return _receive(client, queue_url, 10, visibility=30, wait=10)


def test_after_a_visibility_timeout_a_group_comes_back_from_its_first_message(
    sqs_endpoint: str,
) -> None:
    """Messages whose visibility timeout passed are handed out again first, in the group's order,
    followed by the group's later messages."""
    assert _after_expiry(sqs_client(sqs_endpoint)) == ["c1", "c2", "c3", "c4", "c5"]


def test_plain_moto_still_hands_out_the_last_expired_message_first() -> None:
    """Plain moto (in this process) still breaks the group's order after a visibility timeout;
    when this fails, moto keeps the order itself and `tests/moto_fifo.py` can go.

    What it hands out instead depends on the instant of the receive: each message's visibility
    ends a few microseconds after the previous one's, so a receive in between finds some of the
    three visible and some not (`["c3", "c4", "c5"]` when all are, the last expired first). Only
    the broken order is asserted, not which broken order.
    """
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        assert _after_expiry(client) != ["c1", "c2", "c3", "c4", "c5"]


def test_a_long_poll_gets_nothing_of_a_group_another_receive_holds(sqs_endpoint: str) -> None:
    """Two long polls wait on an empty queue; the group's first message goes to one of them, and
    the second, sent while the first is in flight, to neither, until the first is deleted."""
    client = sqs_client(sqs_endpoint)
    queue_url = _fifo_queue(client)
    got: dict[str, list[MessageTypeDef]] = {}
    calling = {name: threading.Event() for name in ("a", "b")}

    def poll(name: str, poller: SQSClient) -> None:
        calling[name].set()
        reply = poller.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=4
        )
        got[name] = reply.get("Messages", [])

    pollers = [
        threading.Thread(target=poll, args=(name, sqs_client(sqs_endpoint))) for name in calling
    ]
    for poller in pollers:
        poller.start()
    for event in calling.values():
        event.wait(timeout=wait_limit(10))
    try:
        _send(client, queue_url, "c1")
        wait_until(lambda: any(got.values()), timeout=10, message="c1 received")
        _send(client, queue_url, "c2")
    finally:
        for poller in pollers:
            poller.join()
    bodies = sorted([message["Body"] for message in messages] for messages in got.values())
    assert bodies == [[], ["c1"]], bodies
    assert _receive(client, queue_url, 10, visibility=60, wait=0) == [], "c2 passed c1"
    (first,) = [message for messages in got.values() for message in messages]
    client.delete_message(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert _receive(client, queue_url, 10, visibility=60, wait=0) == ["c2"]
