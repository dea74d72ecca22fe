"""The SQS wire client's pure parts: checksums, error codes, endpoints, proxies, credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.credentials import RefreshableCredentials

from exporter.sqs.checksums import ChecksumMismatch, md5_of_attributes
from exporter.sqs.credentials import ChainCredentials, Credentials, find_credentials, load_chain
from exporter.sqs.errors import CredentialsMissing, SqsError, classify
from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable
from exporter.sqs.received import read_messages
from exporter.sqs.transport import ca_bundle, make_transport, proxy_for
from exporter.sqs.wire import decode, encode, endpoint_for, error_from
from tests.perf import sqs_standin
from tests.unit.sqs.reference_messages import check_message, md5_of_body, to_message

ATTRIBUTES = {
    "traceparent": {"DataType": "String", "StringValue": sqs_standin.TRACEPARENT},
    "reason": {"DataType": "String", "StringValue": "invalid_json"},
    "count": {"DataType": "Number", "StringValue": "3"},
}


def test_attribute_checksum_matches_an_independent_implementation() -> None:
    """Our MD5OfMessageAttributes equals the stand-in's own (written apart, from SQS's docs)."""
    assert md5_of_attributes(ATTRIBUTES) == sqs_standin.md5_of_attributes(ATTRIBUTES)
    assert md5_of_body("héllo") == sqs_standin.md5_of_body("héllo")


def test_a_body_or_attributes_that_differ_from_their_checksum_are_refused() -> None:
    """A message whose body or attributes were altered in transit raises ChecksumMismatch."""
    message = {
        "MessageId": "m1",
        "Body": "{}",
        "MD5OfBody": md5_of_body("{}"),
        "MessageAttributes": ATTRIBUTES,
        "MD5OfMessageAttributes": md5_of_attributes(ATTRIBUTES),
    }
    check_message(message)
    with pytest.raises(ChecksumMismatch, match="body"):
        check_message({**message, "Body": "{ }"})
    with pytest.raises(ChecksumMismatch, match="attributes"):
        check_message({**message, "MessageAttributes": {"reason": ATTRIBUTES["reason"]}})


def test_reading_an_answer_checks_each_message_as_check_message_and_builds_as_to_message() -> None:
    """read_messages refuses what check_message refuses and builds what to_message builds."""
    good = {
        "MessageId": "m1",
        "ReceiptHandle": "rh-1",
        "Body": '{"héllo": 1}',
        "MD5OfBody": md5_of_body('{"héllo": 1}'),
        "MessageAttributes": ATTRIBUTES,
        "MD5OfMessageAttributes": md5_of_attributes(ATTRIBUTES),
        "Attributes": {"ApproximateReceiveCount": "2", "MessageGroupId": "g"},
    }
    plain = {"MessageId": "m2", "ReceiptHandle": "rh-2", "Body": "x"}  # no checksums sent
    assert read_messages([good, plain], "q") == [to_message(good, "q"), to_message(plain, "q")]
    for altered in (
        {**good, "Body": "{ }"},
        {**good, "MessageAttributes": {"reason": ATTRIBUTES["reason"]}},
    ):
        with pytest.raises(ChecksumMismatch) as refused:
            read_messages([plain, altered], "q")
        with pytest.raises(ChecksumMismatch) as reference:
            check_message(altered)
        assert str(refused.value) == str(reference.value)


@pytest.mark.parametrize(
    ("headers", "document", "code"),
    [
        (
            {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
            b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"gone"}',
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        ({}, b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist"}', "QueueDoesNotExist"),
        ({}, b'{"__type":"InvalidClientTokenId","message":"no"}', "InvalidClientTokenId"),
        ({}, b"<html>Bad Gateway</html>", "HTTP502"),
    ],
)
def test_json_protocol_errors_map_to_the_codes_boto3_reported(
    headers: dict[str, str], document: bytes, code: str
) -> None:
    """The query-protocol code when SQS sends one, else the `__type` after `#`, else the status."""
    assert error_from(400 if code != "HTTP502" else 502, headers, document).code == code


def test_missing_queue_and_refused_keys_are_configuration_errors_throttling_is_not() -> None:
    """Classification of wire errors follows the same codes as boto3's errors."""
    missing = SqsError("AWS.SimpleQueueService.NonExistentQueue", "gone", 400)
    assert isinstance(classify(missing, "receive"), SourceMisconfigured)
    refused = SqsError("InvalidClientTokenId", "no", 403)
    assert isinstance(classify(refused, "receive"), SourceMisconfigured)
    throttled = SqsError("ThrottlingException", "slow down", 400)
    assert throttled.transient
    assert isinstance(classify(throttled, "receive"), SourceUnavailable)
    assert SqsError("InternalFailure", "", 500).transient
    assert not refused.transient
    no_keys = classify(CredentialsMissing("none"), "credentials")
    assert isinstance(no_keys, SourceMisconfigured)
    assert "AWS_ACCESS_KEY_ID" in str(no_keys)


def test_the_endpoint_is_the_one_given_else_the_regions() -> None:
    """AWS_ENDPOINT_URL wins; otherwise the region's public endpoint (China's own domain)."""
    assert endpoint_for("eu-west-1", None) == "https://sqs.eu-west-1.amazonaws.com"
    assert endpoint_for("cn-north-1", None) == "https://sqs.cn-north-1.amazonaws.com.cn"
    assert endpoint_for("eu-west-1", "http://localhost:4566") == "http://localhost:4566"


def test_a_proxy_from_the_environment_is_honoured_unless_bypassed() -> None:
    """HTTPS_PROXY applies to an https endpoint unless NO_PROXY names its host or domain."""
    url = "https://sqs.eu-west-1.amazonaws.com"
    environ = {"HTTPS_PROXY": "http://proxy:3128"}
    assert proxy_for(url, environ) == "http://proxy:3128"
    assert proxy_for(url, {"https_proxy": "http://lower:1", **environ}) == "http://lower:1"
    assert proxy_for(url, {**environ, "NO_PROXY": "localhost,.amazonaws.com"}) is None
    assert proxy_for(url, {**environ, "NO_PROXY": "sqs.eu-west-1.amazonaws.com"}) is None
    assert proxy_for(url, {**environ, "NO_PROXY": "*"}) is None
    assert proxy_for(url, {**environ, "NO_PROXY": "example.com,zonaws.com"}) == "http://proxy:3128"
    assert proxy_for("http://127.0.0.1:9324", environ) is None
    proxied = make_transport(url, environ, limit=2, connect_timeout=1, read_timeout=1)
    assert proxied.proxy == "http://proxy:3128"
    assert make_transport(url, {}, limit=2, connect_timeout=1, read_timeout=1).proxy is None


def test_the_ca_bundle_is_aws_ca_bundle_else_certifis() -> None:
    """AWS_CA_BUNDLE names the certificates to trust; without it, certifi's, as botocore does."""
    assert ca_bundle({"AWS_CA_BUNDLE": "/etc/corp-ca.pem"}) == "/etc/corp-ca.pem"
    default = ca_bundle({})
    assert default is not None
    assert default.endswith(".pem")
    with pytest.raises(ValueError, match="not an http"):
        make_transport("sqs.amazonaws.com", {}, limit=1, connect_timeout=1, read_timeout=1)


def test_json_that_orjson_refuses_still_travels_as_the_standard_library_writes_it() -> None:
    """A lone surrogate: encoded escaped and decoded back, where orjson alone would raise."""
    payload = {"QueueUrl": "q", "Entries": [{"Id": "0", "MessageBody": "bad \ud800 text"}]}
    body = encode(payload)
    assert b"\\ud800" in body
    assert decode(body) == payload
    assert decode(b'{"Body":"caf\xc3\xa9"}') == {"Body": "café"}
    # Neither decoder reads it: the caller reports the answer as unreadable.
    with pytest.raises(ValueError, match="Expecting value"):
        decode(b"<html>")


async def test_static_keys_in_the_environment_are_used_as_the_chain_would() -> None:
    """Key, secret and session token from the environment, without running botocore's chain."""
    source = await find_credentials(
        {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    )
    assert await source.current() == Credentials("AKIA", "s", "t")


async def test_refreshable_credentials_are_refreshed_when_due() -> None:
    """Credentials from a role are asked again when they near expiry; new keys sign from then on."""
    issued = iter(["first", "second"])

    def fetch() -> dict[str, str]:
        name = next(issued)
        # Expiring within botocore's mandatory refresh window, so each read is due a refresh.
        expiry = datetime.now(UTC) + timedelta(minutes=5)
        return {
            "access_key": f"key-{name}",
            "secret_key": f"secret-{name}",
            "token": f"token-{name}",
            "expiry_time": expiry.isoformat(),
        }

    found = RefreshableCredentials.create_from_metadata(fetch(), fetch, "test")
    source = ChainCredentials(found)
    assert await source.current() == Credentials("key-second", "secret-second", "token-second")


def test_no_credentials_anywhere_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no keys, profile or role, the chain says so; classified with advice, not retried."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsMissing) as raised:
        load_chain()
    assert isinstance(classify(raised.value, "credentials"), SourceMisconfigured)
