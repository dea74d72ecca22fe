"""The boto3 SQS client, for what is not the processor's hot path: the producer's sends.

The processor speaks to SQS through `exporter.sqs.wire` and never imports boto3 (decision 0006).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from exporter.sqs.aws_setup import loading_problem
from exporter.sqs.config import AwsCredentials
from exporter.sqs.errors import classify, is_missing_queue
from exporter.sqs.messages import SourceMisconfigured

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

NO_CREDENTIALS: Final = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, "
    "or run with an instance or task role); an emulator such as moto or LocalStack accepts any "
    "values, e.g. AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
)


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
    try:
        found = core.get_credentials()  # resolved once here; the client reuses the result
    except BotoCoreError as exc:  # a profile that does not exist, half a key pair, a bad file
        raise SourceMisconfigured(loading_problem(exc)) from exc
    if found is None:
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
    """A boto3 SQS client that makes one attempt per call: its caller is the call path's one
    retry layer (the producer's send and lookup; decision 0022), so botocore's own is off."""
    botocore_config = Config(
        region_name=region,
        max_pool_connections=pool,
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    session = _session(endpoint_url, credentials)
    return session.client("sqs", endpoint_url=endpoint_url, config=botocore_config)


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


__all__ = ["NO_CREDENTIALS", "find_queue", "make_client"]
