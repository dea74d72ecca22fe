"""Which SQS failures are worth retrying and which mean the configuration is wrong."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from exporter.retry import Backoff
from exporter.sqs.batches import send_chunks
from exporter.sqs.dead_letters import MAX_DETAIL_CHARS, dead_letter_attributes
from exporter.sqs.errors import SqsError, classify
from exporter.sqs.messages import DeadLetter, Message, SourceMisconfigured, SourceUnavailable
from exporter.sqs.wire import error_from


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "ReceiveMessage")


@pytest.mark.parametrize(
    "code",
    ["InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "QueueDoesNotExist"],
)
def test_credential_and_missing_queue_errors_are_configuration_errors(code: str) -> None:
    """Refused credentials or a missing queue cannot be fixed by retrying."""
    assert isinstance(classify(client_error(code), "receive"), SourceMisconfigured)


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalError", "ServiceUnavailable"])
def test_server_side_errors_are_transient(code: str) -> None:
    """Throttling and server errors are retried with backoff."""
    assert isinstance(classify(client_error(code), "receive"), SourceUnavailable)


def test_connection_errors_are_transient_and_missing_credentials_are_not() -> None:
    """An unreachable endpoint is transient; no credentials at all is a configuration error."""
    unreachable = EndpointConnectionError(endpoint_url="http://x")
    assert isinstance(classify(unreachable, "receive"), SourceUnavailable)
    missing = classify(NoCredentialsError(), "receive")
    assert isinstance(missing, SourceMisconfigured)
    assert "AWS_ACCESS_KEY_ID" in str(missing)


MOTO_REFUSAL = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error>'
    b"<Code>InvalidClientTokenId</Code><Message>The security token included in the request is "
    b"invalid.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"
)


def test_refused_keys_are_named_as_credentials_even_in_an_xml_answer() -> None:
    """moto answers a refused signature in XML whatever was asked: its code is read, and the
    refusal names the credentials and their variables, not an unreachable SQS."""
    error = error_from(403, {}, MOTO_REFUSAL)
    assert (error.code, error.status) == ("InvalidClientTokenId", 403)
    refused = classify(error, "GetQueueUrl")
    assert isinstance(refused, SourceMisconfigured)
    assert str(refused).startswith(
        "SQS GetQueueUrl: the AWS credentials were refused (InvalidClientTokenId: The security "
        "token included in the request is invalid.); check AWS_ACCESS_KEY_ID"
    )
    # boto3 leaves the XML unread (code "403"): the same line from the same answer.
    boto = ClientError(
        {
            "Error": {"Code": "403", "Message": MOTO_REFUSAL.decode()},
            "ResponseMetadata": {
                "HTTPStatusCode": 403,
                "HTTPHeaders": {},
                "HostId": "",
                "RequestId": "",
                "RetryAttempts": 0,
            },
        },
        "GetQueueUrl",
    )
    assert "credentials were refused (InvalidClientTokenId: The security" in str(
        classify(boto, "get_queue_url")
    )


@pytest.mark.parametrize(
    ("error", "kind", "said"),
    [
        (SqsError("HTTP403", "", 403), SourceMisconfigured, "credentials were refused (HTTP403)"),
        (SqsError("HTTP401", "", 401), SourceMisconfigured, "credentials were refused"),
        (SqsError("AccessDenied", "no", 403), SourceMisconfigured, "access denied (AccessDenied"),
        (SqsError("ExpiredToken", "old", 403), SourceUnavailable, "ExpiredToken"),
        (SqsError("HTTP404", "", 404), SourceUnavailable, "HTTP404"),
    ],
)
def test_what_a_refusal_says_depends_on_its_code_then_its_status(
    error: SqsError, kind: type[Exception], said: str
) -> None:
    """A 401/403 without a readable code refuses the keys; AccessDenied says the permission is
    missing; ExpiredToken stays transient (a refresh cures it)."""
    classified = classify(error, "ReceiveMessage")
    assert isinstance(classified, kind)
    assert said in str(classified)


def test_dead_letter_attributes_are_bounded_and_never_empty() -> None:
    """A long detail is cut to the limit; an empty one still yields a valid attribute."""
    message = Message("m", "rh", b"x", attributes={"traceparent": "00-a-b-01"})
    long = dead_letter_attributes(DeadLetter(message, "bad_value", "x" * 5000))
    assert len(long["detail"]["StringValue"]) == MAX_DETAIL_CHARS
    assert long["traceparent"]["StringValue"] == "00-a-b-01"
    empty = dead_letter_attributes(DeadLetter(message, "bad_value", ""))
    assert empty["detail"]["StringValue"] == "-"


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    """Delays stay within [ceiling/10, ceiling], the ceiling doubling up to the cap."""
    backoff = Backoff(base_seconds=1, cap_seconds=8)
    ceilings = [1, 2, 4, 8, 8, 8]
    for ceiling in ceilings:
        assert ceiling / 10 <= backoff.next_delay() <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_send_chunks_respect_count_and_payload_limits() -> None:
    """Batches hold at most 10 entries and 256 KiB; an oversized entry travels alone.

    (moto accepts oversized batches, so this limit of real SQS is checked here, not end to end.)
    """
    sizes = [1] * 25
    assert [len(c) for c in send_chunks(sizes, lambda s: s)] == [10, 10, 5]
    big = [100 * 1024] * 5
    assert [len(c) for c in send_chunks(big, lambda s: s)] == [2, 2, 1]
    assert [list(c) for c in send_chunks([10, 300 * 1024, 10], lambda s: s)] == [
        [10],
        [300 * 1024],
        [10],
    ]
