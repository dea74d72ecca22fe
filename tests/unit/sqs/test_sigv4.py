"""The SigV4 signer: AWS's published example, and botocore's own signer on an SQS request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from exporter.sqs.sigv4 import Credentials, Signer

# AWS's SigV4 test suite ("get-vanilla"): its documented example keys, date and scope.
EXAMPLE_KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
EXAMPLE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
EXAMPLE_SIGNATURE = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
FROZEN = datetime(2026, 11, 29, 19, 30, 5, tzinfo=UTC)
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//token+with/odd=characters"


def test_aws_get_vanilla_example_signature() -> None:
    """A GET of / with only Host signed gives the signature AWS's test suite publishes."""
    added = Signer("us-east-1", "service").sign(
        EXAMPLE_KEYS,
        method="GET",
        path="/",
        query="",
        headers={"Host": "example.amazonaws.com"},
        body=b"",
        now=EXAMPLE_TIME,
    )
    assert added["X-Amz-Date"] == "20150830T123600Z"
    assert added["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={EXAMPLE_SIGNATURE}"
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
    body = b'{"QueueUrl":"http://127.0.0.1:9324/123456789012/q","MaxNumberOfMessages":10}'
    headers = {
        "Host": "127.0.0.1:9324",
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "AmazonSQS.ReceiveMessage",
    }
    ours = Signer("eu-west-1", "sqs").sign(
        credentials, method="POST", path="/", query="", headers=headers, body=body, now=FROZEN
    )
    assert ours["Authorization"] == _botocore_authorization(credentials, dict(headers), body)
    assert ours.get("X-Amz-Security-Token") == token


def test_the_signing_key_is_derived_again_for_a_new_day_or_secret() -> None:
    """The cached day key follows the date and the secret (a refresh changes the secret)."""
    signer = Signer("us-east-1", "sqs")
    first = signer.signing_key("a", "20261129")
    assert signer.signing_key("a", "20261129") == first
    assert signer.signing_key("a", "20261130") != first
    assert signer.signing_key("b", "20261130") != signer.signing_key("a", "20261130")
