"""`exporter dlq` with several queues sharing one dead-letter queue: each dead letter goes back to
the queue it came from."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from exporter.cli import main
from tests.integration.processing.processor_support import drain_queue, unique_queue_name
from tests.sqs_messages import sqs_client

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import MessageAttributeValueTypeDef


def test_peek_and_redrive_route_each_dead_letter_to_its_own_queue(
    sqs_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two queues, one SQS_DLQ_NAME: peek names each letter's queue and source; redrive sends
    each back to its `source_queue`, and one SQS moved by itself (no attributes) to the first."""
    client = sqs_client(sqs_endpoint)
    first, second = unique_queue_name("first"), unique_queue_name("second")
    urls = [client.create_queue(QueueName=name)["QueueUrl"] for name in (first, second)]
    shared = unique_queue_name("shared-dlq")
    dlq_url = client.create_queue(QueueName=shared)["QueueUrl"]
    for body, source in (("from-second", second), ("from-first", first), ("moved", None)):
        attributes: dict[str, MessageAttributeValueTypeDef] = (
            {"source_queue": {"DataType": "String", "StringValue": source}} if source else {}
        )
        client.send_message(QueueUrl=dlq_url, MessageBody=body, MessageAttributes=attributes)
    argv = [
        "dlq", "peek", "--aws-endpoint-url", sqs_endpoint, "--sqs-queue-urls", ",".join(urls),
        "--sqs-dlq-name", shared,
    ]  # fmt: skip
    assert main(argv) == 0
    seen = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((line["body"], line["queue"], line["source_queue"]) for line in seen) == [
        ("from-first", shared, first),
        ("from-second", shared, second),
        ("moved", shared, None),
    ]
    argv[1] = "redrive"
    assert main(argv) == 0
    assert sorted(m["body"] for m in drain_queue(client, urls[0])) == ["from-first", "moved"]
    assert [m["body"] for m in drain_queue(client, urls[1])] == ["from-second"]
    assert drain_queue(client, dlq_url) == []
