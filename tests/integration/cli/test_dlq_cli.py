"""`exporter dlq peek` and `exporter dlq redrive` against a real moto server."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from exporter.cli import main
from tests.exporter_process import run_exporter
from tests.integration.processing.processor_support import (
    drain_queue,
    queue_depth,
    unique_queue_name,
)
from tests.sqs_messages import send_entries, sqs_client

if TYPE_CHECKING:
    pass


def dead_letter_queue(endpoint: str, count: int) -> tuple[str, str, str]:
    """A queue and its DLQ holding `count` dead letters shaped as the processor writes them."""
    client = sqs_client(endpoint)
    name = unique_queue_name()
    queue_url = client.create_queue(QueueName=name)["QueueUrl"]
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    letters = [
        {
            "MessageBody": f"bad body {n}",
            "MessageAttributes": {
                "reason": {"DataType": "String", "StringValue": "not_json"},
                "detail": {"DataType": "String", "StringValue": "body is not JSON"},
                "original_message_id": {"DataType": "String", "StringValue": f"orig-{n}"},
                "first_received_at": {"DataType": "String", "StringValue": "2026-01-01T00:00:00Z"},
            },
        }
        for n in range(count)
    ]
    send_entries(client, dlq_url, letters)  # ten per request: a few hundred in a second or two
    return name, queue_url, dlq_url


def test_peek_shows_reasons_and_leaves_the_messages(
    sqs_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Peek prints each dead letter with reason and detail, and consumes none of them."""
    name, _, dlq_url = dead_letter_queue(sqs_endpoint, 12)
    argv = ["dlq", "peek", "--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 12
    assert {line["original_message_id"] for line in lines} == {f"orig-{n}" for n in range(12)}
    assert {(line["reason"], line["detail"]) for line in lines} == {
        ("not_json", "body is not JSON")
    }
    assert queue_depth(sqs_client(sqs_endpoint), dlq_url) == 12
    # Released at once: a second peek sees them all again.
    assert main([*argv, "--limit", "5"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_redrive_moves_messages_back_to_the_queue(sqs_endpoint: str) -> None:
    """Redrive sends each dead letter to the main queue and only then deletes it from the DLQ."""
    name, queue_url, dlq_url = dead_letter_queue(sqs_endpoint, 4)
    client = sqs_client(sqs_endpoint)
    argv = ["dlq", "redrive", "--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]
    assert main([*argv, "--limit", "3"]) == 0
    assert queue_depth(client, dlq_url) == 1
    assert main(argv) == 0
    assert queue_depth(client, dlq_url) == 0
    bodies = sorted(m["body"] for m in drain_queue(client, queue_url))
    assert bodies == [f"bad body {n}" for n in range(4)]


def test_a_missing_dead_letter_queue_is_a_clear_error(
    sqs_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the queues, dlq exits 2 naming the missing queue, never creating it."""
    name = unique_queue_name("absent")
    assert main(["dlq", "peek", "--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]) == 2
    assert f"{name}-dlq" in capsys.readouterr().err
    assert "QueueUrls" not in sqs_client(sqs_endpoint).list_queues(QueueNamePrefix=name)


def test_the_missing_queue_advice_names_only_what_dlq_accepts(
    sqs_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dlq peek --sqs-queue-name nope` advises nothing dlq rejects: no --create-queues, and every
    flag the advice names is one of dlq's own."""
    assert (
        main(["dlq", "peek", "--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", "nope"]) == 2
    )
    advice = capsys.readouterr().err
    assert "create-queues" not in advice.lower()
    assert "EXPORTER_CREATE_QUEUES" not in advice
    with pytest.raises(SystemExit):
        main(["dlq", "--help"])
    accepted = set(re.findall(r"--[a-z][a-z-]+", capsys.readouterr().out))
    named = set(re.findall(r"--[a-z][a-z-]+", advice))
    assert named <= accepted, named - accepted


def test_flags_may_come_before_or_after_the_action(
    sqs_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dlq --limit 2 ... peek` (flags before the action, as it always worked) and `dlq peek
    --limit 2 ...` read the same flags; a flag after the action wins over the same one before."""
    name, _, _ = dead_letter_queue(sqs_endpoint, 3)
    where = ["--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]
    assert main(["dlq", "--limit", "2", *where, "peek"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["dlq", "peek", "--limit", "2", *where]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["dlq", "--limit", "3", "peek", "--limit", "1", *where]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_the_log_flags_shape_what_dlq_peek_logs(sqs_endpoint: str) -> None:
    """`exporter dlq peek --log-format json` logs JSON lines on stderr before its one summary
    line; with `--log-level WARNING` the summary is all it prints there."""
    name, _, _ = dead_letter_queue(sqs_endpoint, 1)
    where = ["--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]
    command = ["dlq", "peek", *where]
    runs = {
        level: run_exporter(
            [*command, "--log-format", "json", "--log-level", level],
            {"EXPORTER_LOG_FORMAT": "text"},  # the flag must win
            timeout=60,
        )
        for level in ("INFO", "WARNING")
    }
    for result in runs.values():
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines()[-1] == "1 message(s) in the dead-letter queue shown"
        assert json.loads(result.stdout)["reason"] == "not_json"
    logged = [json.loads(line) for line in runs["INFO"].stderr.splitlines()[:-1]]
    assert [record["message"] for record in logged] == ["queues ready"]
    assert runs["WARNING"].stderr.splitlines() == ["1 message(s) in the dead-letter queue shown"]


def test_peek_shows_a_few_hundred_dead_letters_each_once_or_says_how_many_are_left(
    sqs_endpoint: str,
) -> None:
    """`exporter dlq peek --limit 1000` on 300 dead letters prints every one exactly once and
    ends with the count alone; with --limit 120 it prints 120 and says that about 180 more are
    in the queue and why they were not shown; every message stays in the queue."""
    count = 300
    name, _, dlq_url = dead_letter_queue(sqs_endpoint, count)
    where = ["--aws-endpoint-url", sqs_endpoint, "--sqs-queue-name", name]

    def run_peek(limit: int) -> tuple[list[str], list[str]]:
        result = run_exporter(
            ["dlq", "peek", *where, "--limit", str(limit), "--log-level", "WARNING"], timeout=120
        )
        assert result.returncode == 0, result.stderr
        shown = [json.loads(line)["original_message_id"] for line in result.stdout.splitlines()]
        return shown, result.stderr.splitlines()

    shown, told = run_peek(1000)
    assert sorted(shown) == sorted(f"orig-{n}" for n in range(count))  # each once
    assert told == [f"{count} message(s) in the dead-letter queue shown"]
    assert queue_depth(sqs_client(sqs_endpoint), dlq_url) == count

    shown, told = run_peek(120)
    assert len(set(shown)) == len(shown) == 120
    assert told == [
        "120 message(s) in the dead-letter queue shown",
        "about 180 more in the dead-letter queue not shown: --limit 120 was reached (raise it "
        "to see more)",
    ]
    visible = sqs_client(sqs_endpoint).get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert int(visible) == count  # the shown ones were released at once
