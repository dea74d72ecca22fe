"""`exporter produce` as a subprocess into a real moto SQS server: the queue holds the summary."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from exporter.events import InvalidEvent, parse_event
from exporter.tools.producer import SendSummary
from tests.exporter_process import EXPORTER, run_exporter
from tests.polling import scaled


@pytest.fixture(name="queue_url")
def fixture_queue_url(sqs_endpoint: str) -> str:
    """An empty queue named 'events' on the test's SQS server."""
    client = boto3.client("sqs", endpoint_url=sqs_endpoint)
    return client.create_queue(QueueName="events")["QueueUrl"]


def produce(
    endpoint: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "EXPORTER_LOG_FORMAT": "json"}
    return subprocess.run(
        [EXPORTER, "produce", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=scaled(60),
        check=False,
    )


def drain(endpoint: str, queue_url: str) -> list[bytes]:
    """Every message body in the queue (moto answers at once, so an empty receive means empty)."""
    client = boto3.client("sqs", endpoint_url=endpoint)
    bodies: list[bytes] = []
    while True:
        response = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"].encode() for m in messages]


def summarise(bodies: list[bytes]) -> dict[str, Any]:
    summary = SendSummary()
    for body in bodies:
        summary.record(body)
    return summary.to_json()


def test_synthetic_traffic_lands_in_the_queue_exactly_as_summarised(
    sqs_endpoint: str, queue_url: str
) -> None:
    """The JSON summary's counts, exact sums and malformed number equal the queue's content."""
    result = produce(sqs_endpoint, "--count", "137", "--seed", "42", "--summary-json")
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["sent"] == 137
    assert summary["failed"] == 0
    assert 5 <= summary["malformed"] <= 45
    assert set(summary["types"]) == {"pageview", "added-to-basket", "purchase"}
    bodies = drain(sqs_endpoint, queue_url)
    assert len(bodies) == 137
    assert summarise(bodies) == summary


def test_ids_are_attached_when_asked(sqs_endpoint: str, queue_url: str) -> None:
    """--with-ids gives every valid event a distinct id; --types and ratio 0 shape the traffic."""
    result = produce(
        sqs_endpoint,
        "--count", "30", "--with-ids", "--types", "refund", "--malformed-ratio", "0",
        "--summary-json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    events = [parse_event(body) for body in drain(sqs_endpoint, queue_url)]
    assert {e.type for e in events} == {"refund"}
    assert len({e.id for e in events}) == 30


def test_json_lines_from_stdin_are_sent_as_written(sqs_endpoint: str, queue_url: str) -> None:
    """--file - sends each line unchanged, bad ones included, and the summary judges them."""
    lines = [
        b'{"type":"purchase","value":10.25,"occurred_at":"2020-10-06 10:02:05"}',
        b'{"type":"purchase","value":0.75,"occurred_at":"2020-10-06T10:02:05Z"}',
        b'{"type":"pageview","value":1}',
        b"not json at all",
    ]
    result = produce(sqs_endpoint, "--file", "-", "--summary-json", stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {
        "sent": 4,
        "malformed": 2,
        "failed": 0,
        "types": {"purchase": {"count": 2, "sum": "11"}},
    }
    assert sorted(drain(sqs_endpoint, queue_url)) == sorted(lines)


def test_a_file_and_the_plain_summary(sqs_endpoint: str, queue_url: str, tmp_path: Path) -> None:
    """--file PATH reads a file; without --summary-json the summary is a table for people."""
    path = tmp_path / "events.jsonl"
    path.write_text('{"type":"pageview","value":1,"occurred_at":"2020-10-06 10:02:05"}\n' * 3)
    result = produce(sqs_endpoint, "--file", str(path))
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "pageview" in out
    assert "sent 3, of which malformed 0; failed 0" in out
    assert len(drain(sqs_endpoint, queue_url)) == 3


def test_a_missing_queue_is_a_clear_error(sqs_endpoint: str) -> None:
    """Without the queue, produce exits 2 and says how to create it; nothing is claimed sent."""
    result = produce(sqs_endpoint, "--count", "5", "--summary-json")
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"does not exist" in result.stderr
    assert b"exporter processor" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--types", "bad name"], b"invalid event types"),
        (["--malformed-ratio", "2"], b"between 0 and 1"),
        (["--count", "-1"], b"--count"),
        (["--file", "/does/not/exist.jsonl"], b"No such file"),
    ],
)
def test_bad_options_are_refused_before_sending(
    sqs_endpoint: str, queue_url: str, args: list[str], message: bytes
) -> None:
    """Invalid options exit 2 with the reason, and the queue stays empty."""
    result = produce(sqs_endpoint, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert drain(sqs_endpoint, queue_url) == []


def test_the_body_of_malformed_events_really_breaks_the_contract(
    sqs_endpoint: str, queue_url: str
) -> None:
    """With ratio 1 every event is malformed, and each fails parsing with a contract reason."""
    result = produce(sqs_endpoint, "--count", "20", "--malformed-ratio", "1", "--summary-json")
    assert json.loads(result.stdout)["malformed"] == 20
    for body in drain(sqs_endpoint, queue_url):
        with pytest.raises(InvalidEvent):
            parse_event(body)


def test_missing_credentials_are_named_at_once(queue_url: str, sqs_endpoint: str) -> None:
    """Without any AWS credentials, produce exits 2 within seconds saying credentials are missing
    and that any value works for an emulator (not "cannot reach SQS")."""
    del queue_url
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        # The developer's own ~/.aws must not answer for the test.
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
    }
    started = time.monotonic()
    result = run_exporter(
        ["produce", "--aws-endpoint-url", sqs_endpoint, "--count", "25"],
        env,
        timeout=60,
        inherit=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "no AWS credentials found" in result.stderr
    assert "accepts any values" in result.stderr
    assert "cannot reach SQS" not in result.stderr
    assert "Traceback" not in result.stderr
    # Most of this is starting Python; the metadata-service probe is skipped for an emulator.
    assert elapsed < scaled(10)
