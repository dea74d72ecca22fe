"""Setting up SQS: the client and the queues (found, or created when allowed).

Kept apart from the source itself: this runs once at start-up, the source runs for every batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from exporter.sqs.errors import classify, is_missing_queue
from exporter.sqs.messages import SourceMisconfigured

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

T = TypeVar("T")
log = logging.getLogger(__name__)

NO_CREDENTIALS: Final = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, "
    "or run with an instance or task role); an emulator such as moto or LocalStack accepts any "
    "values, e.g. AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """Credentials given explicitly (the demo's for its embedded SQS) instead of boto3's chain."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


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
    # What to tell the user when a queue is missing and may not be created: advice that works
    # for the command at hand (`exporter dlq` has no --create-queues flag).
    missing_queue_advice: str = "run with --create-queues (EXPORTER_CREATE_QUEUES=true)"
    pollers: int = 4
    # None: boto3's usual chain (environment, profile, instance role).
    credentials: AwsCredentials | None = None


def _is_emulator(endpoint_url: str | None) -> bool:
    """An endpoint outside AWS: it cannot use an instance role's credentials."""
    if endpoint_url is None:
        return False
    host = urlsplit(endpoint_url).hostname or ""
    return not host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _session(endpoint_url: str | None, credentials: AwsCredentials | None) -> boto3.session.Session:
    """A session with credentials, or SourceMisconfigured saying which are missing, at once."""
    if credentials is not None:
        return boto3.session.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
        )
    core = botocore.session.Session()
    if _is_emulator(endpoint_url):
        # The chain's last resort, the EC2 metadata service, cannot serve an emulator and costs
        # seconds of timeouts off EC2; an endpoint on AWS (a VPC endpoint) keeps it.
        core.set_config_variable("ec2_metadata_disabled", "true")
    if core.get_credentials() is None:  # resolved once here; the client reuses the result
        raise SourceMisconfigured(NO_CREDENTIALS)
    return boto3.session.Session(botocore_session=core)


def make_client(
    *,
    region: str,
    endpoint_url: str | None,
    pool: int = 10,
    read_timeout: float = 15,
    credentials: AwsCredentials | None = None,
) -> SQSClient:
    """A boto3 SQS client; botocore retries throttling and server errors by itself."""
    botocore_config = Config(
        region_name=region,
        max_pool_connections=pool,
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    session = _session(endpoint_url, credentials)
    return session.client("sqs", endpoint_url=endpoint_url, config=botocore_config)


def client_for(config: SqsConfig, pool: int) -> SQSClient:
    """A client whose connection pool and timeouts fit long polling."""
    # A long poll legitimately takes wait_time_seconds; only silence beyond that is a fault.
    return make_client(
        region=config.region,
        endpoint_url=config.endpoint_url,
        pool=pool,
        read_timeout=config.wait_time_seconds + 10,
        credentials=config.credentials,
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


def _create_queue(client: SQSClient, name: str, attributes: dict[str, str]) -> str:
    log.info("creating queue", extra={"queue": name})
    response = _call_sync(
        "create_queue",
        lambda: client.create_queue(QueueName=name, Attributes=attributes),  # type: ignore[arg-type]
    )
    return response["QueueUrl"]


def resolve_queues(client: SQSClient, config: SqsConfig) -> tuple[str, str]:
    """The URLs of the main queue and its dead-letter queue, creating them when allowed."""
    dlq_url = find_queue(client, config.dlq_name)
    if dlq_url is None:
        if not config.create_queues:
            raise SourceMisconfigured(
                f"dead-letter queue {config.dlq_name!r} does not exist; create it or "
                f"{config.missing_queue_advice}"
            )
        dlq_url = _create_queue(client, config.dlq_name, {"MessageRetentionPeriod": "1209600"})
    queue_url = config.queue_url or find_queue(client, config.queue_name)
    if queue_url is None:
        if not config.create_queues:
            raise SourceMisconfigured(
                f"queue {config.queue_name!r} does not exist; create it, set SQS_QUEUE_URL, or "
                f"{config.missing_queue_advice}"
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
    "AwsCredentials",
    "SqsConfig",
    "client_for",
    "find_queue",
    "make_client",
    "resolve_queues",
]
