"""The boto3 SQS client, for what is not the processor's hot path: the producer's sends.

The processor speaks to SQS through `exporter.sqs.wire` and never imports boto3 (decision 0006).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from exporter.sqs.config import SqsConfig
from exporter.sqs.errors import classify, is_missing_queue

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient


def make_client(
    *, region: str, endpoint_url: str | None, pool: int = 10, read_timeout: float = 15
) -> SQSClient:
    """A boto3 SQS client; botocore retries throttling and server errors by itself."""
    botocore_config = Config(
        region_name=region,
        max_pool_connections=pool,
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return boto3.session.Session().client("sqs", endpoint_url=endpoint_url, config=botocore_config)


def client_for(config: SqsConfig, pool: int) -> SQSClient:
    """A client whose connection pool and timeouts fit long polling."""
    # A long poll legitimately takes wait_time_seconds; only silence beyond that is a fault.
    return make_client(
        region=config.region,
        endpoint_url=config.endpoint_url,
        pool=pool,
        read_timeout=config.wait_time_seconds + 10,
    )


def find_queue(client: SQSClient, name: str) -> str | None:
    """The URL of the queue called `name`, or None when it does not exist."""
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if is_missing_queue(exc):
            return None
        raise classify(exc, "get_queue_url") from exc
    except BotoCoreError as exc:
        raise classify(exc, "get_queue_url") from exc


__all__ = ["SqsConfig", "client_for", "find_queue", "make_client"]
