"""What an SQS error means: transient (retry later) or a configuration that can never work."""

from __future__ import annotations

from typing import Final

# botocore's exception classes only, for the boto3 calls that remain (queue admin, the producer);
# boto3 itself is not imported on the processor's path.
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable

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
MISSING_QUEUE_CODES: Final = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)
# Codes a retry may cure: throttling and the server's own failures (botocore's standard set).
TRANSIENT_CODES: Final = frozenset(
    {
        "BandwidthLimitExceeded",
        "InternalError",
        "InternalFailure",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)
NO_CREDENTIALS_ADVICE: Final = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or a role "
    "(an emulator such as moto accepts any value)"
)


class SqsFailure(Exception):
    """A call of the SQS client failed; `classify` says what that means."""


class SqsError(SqsFailure):
    """SQS answered with an error: its code (the query-protocol one if given) and HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.status = status

    @property
    def transient(self) -> bool:
        """Whether trying again may succeed: throttling, a server error."""
        return self.status >= 500 or self.status == 429 or self.code in TRANSIENT_CODES


class SqsUnreachable(SqsFailure):
    """No answer: the connection failed or timed out, or the answer could not be read."""


class CredentialsMissing(SqsFailure):
    """The credential chain found no credentials (environment, profile, container, instance)."""


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError or SqsError, else None."""
    if isinstance(exc, SqsError):
        return exc.code
    if isinstance(exc, ClientError):
        code: str | None = exc.response.get("Error", {}).get("Code")
        return code
    return None


def is_missing_queue(exc: BaseException) -> bool:
    """Whether `exc` says the queue does not exist."""
    return error_code(exc) in MISSING_QUEUE_CODES


def classify(exc: Exception, operation: str) -> SourceUnavailable | SourceMisconfigured:
    """Turn a boto error into transient (retry) or misconfigured (exit with a clear message)."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialsMissing):
        return SourceMisconfigured(
            f"SQS {operation}: no usable AWS credentials ({exc}); {NO_CREDENTIALS_ADVICE}"
        )
    code = error_code(exc)
    if code in MISSING_QUEUE_CODES:
        return SourceMisconfigured(f"SQS {operation}: the queue does not exist ({code})")
    if code in MISCONFIGURED_CODES:
        return SourceMisconfigured(
            f"SQS {operation}: the credentials were refused ({code}); check the AWS credentials "
            "and region"
        )
    if isinstance(exc, SqsFailure):
        return SourceUnavailable(f"SQS {operation} failed: {exc}")
    return SourceUnavailable(f"SQS {operation} failed: {code or type(exc).__name__}: {exc}")


__all__ = [
    "MISCONFIGURED_CODES",
    "MISSING_QUEUE_CODES",
    "NO_CREDENTIALS_ADVICE",
    "TRANSIENT_CODES",
    "CredentialsMissing",
    "SqsError",
    "SqsFailure",
    "SqsUnreachable",
    "classify",
    "error_code",
    "is_missing_queue",
]
