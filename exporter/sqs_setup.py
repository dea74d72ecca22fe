"""Setting up SQS: the client, the queues (found or created), and what an error means.

Kept apart from the source itself: this runs once at start-up, the source runs for every batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from exporter.source import SourceMisconfigured, SourceUnavailable

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

T = TypeVar("T")
log = logging.getLogger(__name__)

# Error codes that retrying can never fix: the operator must change the configuration.
MISCONFIGURED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSecurity",
        "MissingAuthenticationToken",
        "QueueDoesNotExist",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_MISSING_QUEUE_CODES: Final = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """Where the queues are and how to talk to them; built by the CLI from the settings."""

    queue_name: str
    dlq_name: str
    queue_url: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    wait_time_seconds: int = 20
    visibility_timeout_seconds: int = 30
    max_receive_count: int = 5
    create_queues: bool = True
    pollers: int = 4


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(exc, ClientError):
        code: str | None = exc.response.get("Error", {}).get("Code")
        return code
    return None


def classify(exc: Exception, operation: str) -> SourceUnavailable | SourceMisconfigured:
    """Turn a boto error into transient (retry) or misconfigured (exit with a clear message)."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return SourceMisconfigured(
            f"SQS {operation}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or a role"
        )
    code = error_code(exc)
    if code in _MISSING_QUEUE_CODES:
        return SourceMisconfigured(f"SQS {operation}: the queue does not exist ({code})")
    if code in MISCONFIGURED_CODES:
        return SourceMisconfigured(
            f"SQS {operation}: the credentials were refused ({code}); check the AWS credentials "
            "and region"
        )
    return SourceUnavailable(f"SQS {operation} failed: {code or type(exc).__name__}: {exc}")


def make_client(config: SqsConfig, pool: int) -> SQSClient:
    """A boto3 SQS client whose connection pool and timeouts fit long polling."""
    botocore_config = Config(
        region_name=config.region,
        max_pool_connections=pool,
        connect_timeout=5,
        # A long poll legitimately takes wait_time_seconds; only silence beyond that is a fault.
        read_timeout=config.wait_time_seconds + 10,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return boto3.session.Session().client(
        "sqs", endpoint_url=config.endpoint_url, config=botocore_config
    )


def _call_sync(operation: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except (BotoCoreError, ClientError) as exc:
        raise classify(exc, operation) from exc


def _queue_arn(client: SQSClient, url: str) -> str:
    response = _call_sync(
        "get_queue_attributes",
        lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]),
    )
    return response["Attributes"]["QueueArn"]


def _find_queue(client: SQSClient, name: str) -> str | None:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in _MISSING_QUEUE_CODES:
            return None
        raise classify(exc, "get_queue_url") from exc
    except BotoCoreError as exc:
        raise classify(exc, "get_queue_url") from exc


def _create_queue(client: SQSClient, name: str, attributes: dict[str, str]) -> str:
    log.info("creating queue", extra={"queue": name})
    response = _call_sync(
        "create_queue",
        lambda: client.create_queue(QueueName=name, Attributes=attributes),  # type: ignore[arg-type]
    )
    return response["QueueUrl"]


def resolve_queues(client: SQSClient, config: SqsConfig) -> tuple[str, str]:
    """The URLs of the main queue and its dead-letter queue, creating them when allowed."""
    dlq_url = _find_queue(client, config.dlq_name)
    if dlq_url is None:
        if not config.create_queues:
            raise SourceMisconfigured(
                f"dead-letter queue {config.dlq_name!r} does not exist; create it or run with "
                "--create-queues (EXPORTER_CREATE_QUEUES=true)"
            )
        dlq_url = _create_queue(client, config.dlq_name, {"MessageRetentionPeriod": "1209600"})
    queue_url = config.queue_url or _find_queue(client, config.queue_name)
    if queue_url is None:
        if not config.create_queues:
            raise SourceMisconfigured(
                f"queue {config.queue_name!r} does not exist; create it, set SQS_QUEUE_URL, or "
                "run with --create-queues (EXPORTER_CREATE_QUEUES=true)"
            )
        redrive = {
            "deadLetterTargetArn": _queue_arn(client, dlq_url),
            "maxReceiveCount": str(config.max_receive_count),
        }
        queue_url = _create_queue(
            client,
            config.queue_name,
            {
                "VisibilityTimeout": str(config.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
    else:
        _queue_arn(client, queue_url)  # proves the URL and the credentials work
    return queue_url, dlq_url


__all__ = [
    "MISCONFIGURED_CODES",
    "SqsConfig",
    "classify",
    "error_code",
    "make_client",
    "resolve_queues",
]
