"""`exporter produce` into a FIFO queue of moto: every event lands, grouped by its type."""

from __future__ import annotations

import json
from collections import Counter

import boto3

from tests.exporter_process import run_exporter


def test_synthetic_traffic_into_a_fifo_queue_lands_whole_and_grouped_by_type(
    sqs_endpoint: str,
) -> None:
    """30 synthetic events into `events.fifo`: the summary says 30 sent and none failed, and the
    queue holds each in the group of its type."""
    client = boto3.client("sqs", endpoint_url=sqs_endpoint)
    url = client.create_queue(
        QueueName="events.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
    )["QueueUrl"]
    result = run_exporter(
        ["produce", "--count", "30", "--seed", "3", "--summary-json"],
        {"AWS_ENDPOINT_URL": sqs_endpoint, "SQS_QUEUE_URL": url},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["failed"]) == (30, 0)
    groups: Counter[str] = Counter()
    for _ in range(10):
        reply = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["MessageGroupId"],
            WaitTimeSeconds=0,
        )
        for message in reply.get("Messages", []):
            groups[message["Attributes"]["MessageGroupId"]] += 1
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sum(groups.values()) == 30
    # A spoilt event keeps its type unless the type is what was spoilt: its group is then the
    # fallback one. Every valid event is in the group of its type.
    assert set(groups) <= {"pageview", "added-to-basket", "purchase", "exporter-produce"}
    for name, entry in summary["types"].items():
        assert groups[name] >= entry["count"]
