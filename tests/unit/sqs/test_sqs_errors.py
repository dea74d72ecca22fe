"""Which SQS failures are worth retrying and which mean the configuration is wrong."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from exporter.retry import Backoff
from exporter.sqs.batches import send_chunks
from exporter.sqs.dead_letters import MAX_DETAIL_CHARS, dead_letter_attributes
from exporter.sqs.errors import classify
from exporter.sqs.messages import DeadLetter, Message, SourceMisconfigured, SourceUnavailable


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
