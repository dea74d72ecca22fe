"""What an SQS error means: transient (retry later) or a configuration that can never work."""

from __future__ import annotations

import re
from typing import Final

# botocore's exception classes only, for the boto3 calls that remain (queue admin, the producer);
# boto3 itself is not imported on the processor's path.
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable

# Codes of keys AWS does not accept: wrong, unknown, or signed for another region or clock.
REFUSED_CREDENTIAL_CODES: Final = frozenset(
    {
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSecurity",
        "MissingAuthenticationToken",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
# Codes of keys AWS accepts, for an identity that may not do this.
DENIED_CODES: Final = frozenset({"AccessDenied", "AccessDeniedException"})
MISSING_QUEUE_CODES: Final = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)
# Error codes that retrying can never fix: the operator must change the configuration.
MISCONFIGURED_CODES: Final = REFUSED_CREDENTIAL_CODES | DENIED_CODES | MISSING_QUEUE_CODES
# A refusal whose code could not be read (an emulator's or a proxy's page): what its status says.
_UNREAD_REFUSALS: Final = frozenset({401, 403})
_XML_FIELDS: Final = {
    tag: re.compile(rf"<{tag}>([^<]{{1,500}})</{tag}>") for tag in ("Code", "Message")
}
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
        """Whether trying again may succeed: throttling, a server error. (The retry layers of
        decision 0022 go by `classify`, which makes every answer not a misconfiguration a
        SourceUnavailable; this finer rule is kept for the one error shape of issue 26.)"""
        return self.status >= 500 or self.status == 429 or self.code in TRANSIENT_CODES


class SqsUnreachable(SqsFailure):
    """No answer: the connection failed or timed out, or the answer could not be read."""


class CredentialsMissing(SqsFailure):
    """The credential chain found no credentials (environment, profile, container, instance)."""


class CredentialsUnusable(SqsFailure):
    """The credential chain failed on a configuration (a profile, a file); the message says
    which, in one line."""


def xml_error(text: str) -> tuple[str | None, str | None]:
    """The first Code and Message of an XML error document (the query protocol's, which moto
    answers a refused signature with, whatever protocol was asked), if any."""
    found = [pattern.search(text) for pattern in _XML_FIELDS.values()]
    code, message = (match.group(1).strip() if match else None for match in found)
    return code, message


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError or SqsError, else None."""
    if isinstance(exc, SqsError):
        return exc.code
    if isinstance(exc, ClientError):
        code: str | None = exc.response.get("Error", {}).get("Code")
        return code
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an SqsError or ClientError answer, else None."""
    if isinstance(exc, SqsError):
        return exc.status
    if isinstance(exc, ClientError):
        status: int | None = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status
    return None


def _refused(code: str | None, status: int | None) -> bool:
    """Whether AWS refused the keys: a code that says so, or a 401/403 whose code is unread
    (`HTTP403`, or botocore's `403`). A known code that may pass (ExpiredToken: a refresh
    cures it) is not a refusal."""
    if code in REFUSED_CREDENTIAL_CODES:
        return True
    unread = code is None or code.removeprefix("HTTP").isdigit()
    return unread and status in _UNREAD_REFUSALS


def is_missing_queue(exc: BaseException) -> bool:
    """Whether `exc` says the queue does not exist."""
    return error_code(exc) in MISSING_QUEUE_CODES


def classify(exc: Exception, operation: str) -> SourceUnavailable | SourceMisconfigured:
    """Turn a boto error into transient (retry) or misconfigured (exit with a clear message)."""
    if isinstance(exc, CredentialsUnusable):
        return SourceMisconfigured(str(exc))
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialsMissing):
        return SourceMisconfigured(
            f"SQS {operation}: no usable AWS credentials ({exc}); {NO_CREDENTIALS_ADVICE}"
        )
    code = error_code(exc)
    if code in MISSING_QUEUE_CODES:
        return SourceMisconfigured(f"SQS {operation}: the queue does not exist ({code})")
    if _refused(code, http_status(exc)):
        return SourceMisconfigured(
            f"SQS {operation}: the AWS credentials were refused ({_said(exc, code)}); check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or the role) and "
            "AWS_DEFAULT_REGION"
        )
    if code in DENIED_CODES:
        return SourceMisconfigured(
            f"SQS {operation}: access denied ({_said(exc, code)}); the AWS credentials are "
            "accepted but may not use this queue: grant the identity the SQS permissions "
            "docs/kubernetes.md lists, or use credentials that have them"
        )
    if isinstance(exc, SqsFailure):
        return SourceUnavailable(f"SQS {operation} failed: {exc}")
    return SourceUnavailable(f"SQS {operation} failed: {code or type(exc).__name__}: {exc}")


def _said(exc: Exception, code: str | None) -> str:
    """What SQS said, in one line: the code and its message when it gave one."""
    if isinstance(exc, SqsError):
        text = str(exc)
    elif isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message") or "")
        # botocore leaves an XML answer to a JSON request unread: its code and message inside.
        xml_code, xml_message = xml_error(message)
        code, message = xml_code or code, xml_message or message
        text = f"{code}: {message}" if message and code else str(code)
    else:
        text = str(code)
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = [
    "DENIED_CODES",
    "MISCONFIGURED_CODES",
    "MISSING_QUEUE_CODES",
    "NO_CREDENTIALS_ADVICE",
    "REFUSED_CREDENTIAL_CODES",
    "TRANSIENT_CODES",
    "CredentialsMissing",
    "CredentialsUnusable",
    "SqsError",
    "SqsFailure",
    "SqsUnreachable",
    "classify",
    "error_code",
    "http_status",
    "is_missing_queue",
    "xml_error",
]
