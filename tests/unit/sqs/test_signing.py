"""Signing through the CRT: AWS's published example, and botocore's own signer on an SQS request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from exporter.sqs.credentials import Credentials
from exporter.sqs.signing import RECENT_REQUESTS, Header, RequestSigner

# AWS's SigV4 test suite ("get-vanilla"): its documented example keys, date and scope.
EXAMPLE_KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
EXAMPLE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
EXAMPLE_SIGNATURE = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
FROZEN = datetime(2026, 11, 29, 19, 30, 5, tzinfo=UTC)
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//token+with/odd=characters"
SQS_HEADERS: list[Header] = [
    ("Host", "127.0.0.1:9324"),
    ("Content-Type", "application/x-amz-json-1.0"),
    ("X-Amz-Target", "AmazonSQS.ReceiveMessage"),
]
SQS_BODY = b'{"QueueUrl":"http://127.0.0.1:9324/123456789012/q","MaxNumberOfMessages":10}'


def test_aws_get_vanilla_example_signature() -> None:
    """A GET of / with only Host signed gives the signature AWS's test suite publishes."""
    signed = RequestSigner("us-east-1", "service").sign(
        EXAMPLE_KEYS,
        method="GET",
        path="/",
        headers=[("Host", "example.amazonaws.com")],
        body=b"",
        now=EXAMPLE_TIME,
    )
    assert signed == (
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={EXAMPLE_SIGNATURE}",
        ),
    )


def _botocore_authorization(credentials: Credentials, headers: dict[str, str], body: bytes) -> str:
    """botocore's Authorization for the same request at the same (frozen) time."""
    request = AWSRequest(method="POST", url="http://127.0.0.1:9324/", data=body, headers=headers)
    stamp = FROZEN.strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    auth = SigV4Auth(
        BotocoreCredentials(credentials.access_key, credentials.secret_key, credentials.token),
        "sqs",
        "eu-west-1",
    )
    request.headers["X-Amz-Date"] = stamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    scope = f"{stamp[:8]}/eu-west-1/sqs/aws4_request"
    return (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))}, "
        f"Signature={signature}"
    )


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term keys", "session token"])
def test_an_sqs_request_is_signed_as_botocore_signs_it(token: str | None) -> None:
    """For a JSON-protocol SQS call, with or without a session token, botocore agrees exactly."""
    credentials = Credentials("AKIAEXAMPLE", "secret/with+chars", token)
    signed = dict(
        RequestSigner("eu-west-1", "sqs").sign(
            credentials, method="POST", path="/", headers=SQS_HEADERS, body=SQS_BODY, now=FROZEN
        )
    )
    assert signed["Authorization"] == _botocore_authorization(
        credentials, dict(SQS_HEADERS), SQS_BODY
    )
    assert signed.get("X-Amz-Security-Token") == token
    assert signed["X-Amz-Date"] == "20261129T193005Z"


def test_new_keys_sign_from_the_moment_they_are_handed_over() -> None:
    """After a refresh the next request carries the new access key and a different signature."""
    signer = RequestSigner("us-east-1", "sqs")

    def authorization(keys: Credentials) -> str:
        headers = signer.sign(
            keys, method="POST", path="/", headers=SQS_HEADERS, body=SQS_BODY, now=FROZEN
        )
        return dict(headers)["Authorization"]

    first = authorization(Credentials("AKIAFIRST", "one", "t1"))
    again = authorization(Credentials("AKIAFIRST", "one", "t1"))
    refreshed = authorization(Credentials("AKIASECOND", "two", "t2"))
    assert first == again
    assert "Credential=AKIASECOND/" in refreshed
    assert refreshed.rsplit("Signature=", 1)[1] != first.rsplit("Signature=", 1)[1]


def test_a_request_signed_again_within_its_second_reuses_its_signature() -> None:
    """The same request in the same second is not signed twice; another body or second is."""
    signer = RequestSigner("us-east-1", "sqs")
    keys = Credentials("AKIATEST", "secret", "token")

    def sign(body: bytes, now: datetime) -> tuple[Header, ...]:
        return signer.sign(keys, method="POST", path="/", headers=SQS_HEADERS, body=body, now=now)

    first = sign(SQS_BODY, FROZEN)
    assert sign(SQS_BODY, FROZEN + timedelta(milliseconds=900)) is first
    other = sign(SQS_BODY + b" ", FROZEN)
    assert dict(other)["Authorization"] != dict(first)["Authorization"]
    later = sign(SQS_BODY, FROZEN + timedelta(seconds=1))
    assert dict(later)["X-Amz-Date"] == "20261129T193006Z"
    assert dict(later)["Authorization"] != dict(first)["Authorization"]
    # Only a few requests are remembered: after as many others, the first is signed afresh.
    for n in range(RECENT_REQUESTS):
        sign(b"%d" % n, FROZEN + timedelta(seconds=1))
    assert sign(SQS_BODY, FROZEN + timedelta(seconds=1)) is not later


def test_a_request_that_is_not_to_be_reused_is_signed_afresh_and_not_remembered() -> None:
    """reuse=False signs the same request again (same headers) and leaves the memory alone."""
    signer = RequestSigner("us-east-1", "sqs")
    keys = Credentials("AKIATEST", "secret", None)

    def sign(body: bytes, *, reuse: bool) -> tuple[Header, ...]:
        return signer.sign(
            keys, method="POST", path="/", headers=SQS_HEADERS, body=body, now=FROZEN, reuse=reuse
        )

    remembered = sign(SQS_BODY, reuse=True)
    fresh = sign(SQS_BODY, reuse=False)
    assert fresh == remembered
    assert fresh is not remembered
    assert sign(SQS_BODY + b" ", reuse=False) != remembered
    assert sign(SQS_BODY, reuse=True) is remembered
