"""Finding the queues at start-up (and creating them when allowed), on the SQS wire client.

Kept apart from the source itself: this runs once at start-up, the source runs for every batch.
"""

from __future__ import annotations

import json
import logging

from exporter.sqs.config import SqsConfig
from exporter.sqs.errors import SqsFailure, classify, is_missing_queue
from exporter.sqs.messages import SourceMisconfigured
from exporter.sqs.wire import SqsClient

log = logging.getLogger(__name__)


async def _call(client: SqsClient, operation: str, payload: dict[str, object]) -> dict[str, object]:
    try:
        return await client.call(operation, payload)
    except SqsFailure as exc:
        raise classify(exc, operation) from exc


async def _queue_arn(client: SqsClient, url: str) -> str:
    response = await _call(
        client, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]}
    )
    attributes = response.get("Attributes")
    if not isinstance(attributes, dict) or "QueueArn" not in attributes:
        raise SourceMisconfigured(f"SQS GetQueueAttributes: no QueueArn for {url}")
    return str(attributes["QueueArn"])


async def find_queue(client: SqsClient, name: str) -> str | None:
    """The URL of the queue called `name`, or None when it does not exist."""
    try:
        response = await client.call("GetQueueUrl", {"QueueName": name})
    except SqsFailure as exc:
        if is_missing_queue(exc):
            return None
        raise classify(exc, "GetQueueUrl") from exc
    return str(response["QueueUrl"])


async def _create_queue(client: SqsClient, name: str, attributes: dict[str, str]) -> str:
    log.info("creating queue", extra={"queue": name})
    response = await _call(client, "CreateQueue", {"QueueName": name, "Attributes": attributes})
    return str(response["QueueUrl"])


async def resolve_queues(client: SqsClient, config: SqsConfig) -> tuple[str, str]:
    """The URLs of the main queue and its dead-letter queue, creating them when allowed."""
    dlq_url = await find_queue(client, config.dlq_name)
    if dlq_url is None:
        if not config.create_queues:
            raise SourceMisconfigured(
                f"dead-letter queue {config.dlq_name!r} does not exist; create it or "
                f"{config.missing_queue_advice}"
            )
        dlq_url = await _create_queue(
            client, config.dlq_name, {"MessageRetentionPeriod": "1209600"}
        )
    queue_url = config.queue_url or await find_queue(client, config.queue_name)
    if queue_url is None:
        if not config.create_queues:
            raise SourceMisconfigured(
                f"queue {config.queue_name!r} does not exist; create it, set SQS_QUEUE_URL, or "
                f"{config.missing_queue_advice}"
            )
        redrive = {
            "deadLetterTargetArn": await _queue_arn(client, dlq_url),
            "maxReceiveCount": str(config.max_receive_count),
        }
        queue_url = await _create_queue(
            client,
            config.queue_name,
            {
                "VisibilityTimeout": str(config.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
    else:
        await _queue_arn(client, queue_url)  # proves the URL and the credentials work
    return queue_url, dlq_url


__all__ = ["find_queue", "resolve_queues"]
