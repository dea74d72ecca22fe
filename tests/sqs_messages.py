"""Messages into and out of a test's SQS queue (moto, or any endpoint): the one place tests
send (`send_entries`, ten entries per SendMessageBatch) and drain (`drain`), so a change to how
tests do either (ids, retries, what counts as a failure) is made once.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from exporter.sqs.batches import MAX_BATCH, sort_failures

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

# A FIFO deduplication id no other send of the session uses.
_deduplication_ids = itertools.count()
# A batch that SQS partly refused for reasons of its own is sent again this many times at most.
_ATTEMPTS = 5


def sqs_client(endpoint: str) -> SQSClient:
    """A plain boto3 client of the test SQS server, as a producer would have (a session of its
    own, so that threads may each make one)."""
    return boto3.session.Session().client("sqs", endpoint_url=endpoint, region_name="us-east-1")


def send_entries(
    client: SQSClient,
    queue_url: str,
    entries: Sequence[Mapping[str, Any]],
    *,
    ordered: bool = False,
) -> list[str]:
    """Send SendMessageBatch entries (without their `Id`), ten per request, in order; the
    MessageIds in the same order. Entries SQS did not accept through no fault of theirs are sent
    again, unless `ordered` (a FIFO group's order would change): then any failure fails."""
    ids: list[str] = []
    for start in range(0, len(entries), MAX_BATCH):
        chunk = entries[start : start + MAX_BATCH]
        pending = {str(i): entry for i, entry in enumerate(chunk)}
        accepted: dict[str, str] = {}
        for _ in range(1 if ordered else _ATTEMPTS):
            response = client.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": i, **entry} for i, entry in pending.items()],  # type: ignore[typeddict-item]
            )
            accepted |= {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
            failures = sort_failures(response.get("Failed", []))
            assert not failures.refused, f"SQS refused entries {failures.refused}"
            pending = {i: pending[i] for i in failures.retry}
            if not pending:
                break
        assert not pending, f"SQS did not accept entries {sorted(pending)}"
        ids.extend(accepted[str(i)] for i in range(len(chunk)))
    return ids


def send(client: SQSClient, queue_url: str, bodies: Sequence[str]) -> list[str]:
    """Send each body to a standard queue; their MessageIds in order."""
    return send_entries(client, queue_url, [{"MessageBody": body} for body in bodies])


def send_fifo(client: SQSClient, queue_url: str, bodies: Sequence[tuple[str, str]]) -> list[str]:
    """Send (group, body) pairs to a FIFO queue in order, each with a deduplication id of its own
    (a producer's retry is a new message with the same event id, as on a standard queue); their
    MessageIds in order."""
    entries = [
        {
            "MessageBody": body,
            "MessageGroupId": group,
            "MessageDeduplicationId": f"send-{next(_deduplication_ids)}",
        }
        for group, body in bodies
    ]
    return send_entries(client, queue_url, entries, ordered=True)


@dataclass(frozen=True, slots=True)
class Received:
    """One message taken from a queue."""

    body: str
    attributes: dict[str, str]
    """Its string message attributes (the dead-letter queue's reason, original_message_id...)."""
    group: str | None
    """Its MessageGroupId on a FIFO queue."""


def drain(client: SQSClient, queue_url: str) -> list[Received]:
    """Every message of a queue in delivery order (a FIFO queue's, group by group as SQS hands
    them out), consumed: received and deleted ten at a time until a receive comes back empty."""
    found: list[Received] = []
    while True:
        reply = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["MessageGroupId"],
            WaitTimeSeconds=0,
        )
        messages = reply.get("Messages", [])
        if not messages:
            return found
        found += [
            Received(
                message["Body"],
                {
                    name: value.get("StringValue", "")
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                message.get("Attributes", {}).get("MessageGroupId"),
            )
            for message in messages
        ]
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
