"""What an SQS error means: transient (retry later) or a configuration that can never work."""

from __future__ import annotations

from typing import Final

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
NO_CREDENTIALS_ADVICE: Final = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or a role "
    "(an emulator such as moto accepts any value)"
)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(exc, ClientError):
        code: str | None = exc.response.get("Error", {}).get("Code")
        return code
    return None


def is_missing_queue(exc: BaseException) -> bool:
    """Whether `exc` says the queue does not exist."""
    return error_code(exc) in MISSING_QUEUE_CODES


def classify(exc: Exception, operation: str) -> SourceUnavailable | SourceMisconfigured:
    """Turn a boto error into transient (retry) or misconfigured (exit with a clear message)."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
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
    return SourceUnavailable(f"SQS {operation} failed: {code or type(exc).__name__}: {exc}")


__all__ = [
    "MISCONFIGURED_CODES",
    "MISSING_QUEUE_CODES",
    "NO_CREDENTIALS_ADVICE",
    "classify",
    "error_code",
    "is_missing_queue",
]
