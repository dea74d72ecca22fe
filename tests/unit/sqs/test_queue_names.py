"""SQS's naming rules, checked before any call: names, URLs, FIFO, default dead-letter names."""

from __future__ import annotations

import pytest

from exporter.sqs.names import (
    BadQueueName,
    check_name,
    dead_letter_loop,
    default_dlq_name,
    is_fifo,
    name_from_url,
    pairing_problem,
)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/orders", "orders"),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo", "orders.fifo"),
        ("http://127.0.0.1:5000/123456789012/events-1_a", "events-1_a"),
        ("http://localhost:4566/queue/us-east-1/000000000000/events", "events"),
        ("http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/e/", "e"),
    ],
)
def test_queue_urls_of_aws_and_emulators_give_their_queue_name(url: str, name: str) -> None:
    """AWS's URL form and the emulators' longer paths are accepted; the name is the last part."""
    assert name_from_url("SQS_QUEUE_URL", url) == name


@pytest.mark.parametrize(
    "url",
    [
        "garbage",
        "events",
        "ftp://host/123/events",
        "https:///123/events",
        "https://sqs.us-east-1.amazonaws.com/events",  # no account
        "https://sqs.us-east-1.amazonaws.com/123/bad name",
        "https://sqs.us-east-1.amazonaws.com/123/events?x=1",
        "https://[::1/123/events",
    ],
)
def test_anything_else_is_not_a_queue_url(url: str) -> None:
    """A value that cannot name a queue is refused with the setting and the value."""
    with pytest.raises(BadQueueName) as raised:
        name_from_url("SQS_QUEUE_URL", url)
    assert str(raised.value).startswith(f"SQS_QUEUE_URL {url!r} is not a queue URL")


def test_the_password_of_a_url_is_not_repeated() -> None:
    """A URL with credentials in it is named without them."""
    with pytest.raises(BadQueueName) as raised:
        name_from_url("SQS_QUEUE_URLS", "https://me:s3cret@host/no-account")
    assert "s3cret" not in str(raised.value)
    assert "me:***@host" in str(raised.value)


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 80, "y" * 75 + ".fifo"])
def test_names_sqs_accepts(name: str) -> None:
    """1-80 letters, digits, hyphens and underscores; a FIFO name ends in .fifo within the 80."""
    assert check_name("SQS_QUEUE_NAME", name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 81, "y" * 76 + ".fifo", "my queue", "a.b", ".fifo", "events.FIFO", "é"]
)
def test_names_sqs_refuses(name: str) -> None:
    """Anything else is refused, naming the setting and the rule."""
    with pytest.raises(BadQueueName, match=r"SQS_DLQ_NAME .* is not a queue name: 1-80"):
        check_name("SQS_DLQ_NAME", name)


def test_default_dead_letter_names_keep_the_fifo_suffix_last() -> None:
    """`events` dead-letters to `events-dlq`, `events.fifo` to `events-dlq.fifo`."""
    assert default_dlq_name("SQS_QUEUE_NAME", "events") == "events-dlq"
    assert default_dlq_name("SQS_QUEUE_NAME", "events.fifo") == "events-dlq.fifo"
    assert is_fifo("events-dlq.fifo")
    assert not is_fifo("events-dlq")


def test_a_name_too_long_for_its_default_dead_letter_name_asks_for_one() -> None:
    """A 78-character name leaves no room for `-dlq`: the message says to set SQS_DLQ_NAME."""
    with pytest.raises(BadQueueName, match="set SQS_DLQ_NAME"):
        default_dlq_name("SQS_QUEUE_NAME", "q" * 78)


def test_fifo_and_standard_queues_pair_only_with_their_own_kind() -> None:
    """A FIFO queue with a standard dead-letter queue, or the reverse, is named as a problem."""
    assert pairing_problem("events.fifo", "events-dlq.fifo") is None
    assert pairing_problem("events", "events-dlq") is None
    fifo_problem = pairing_problem("events.fifo", "events-dlq")
    assert fifo_problem is not None
    assert "'events.fifo' is FIFO but its dead-letter queue 'events-dlq' is standard" in (
        fifo_problem
    )
    assert "ending in .fifo" in fifo_problem
    standard_problem = pairing_problem("events", "events-dlq.fifo")
    assert standard_problem is not None
    assert "is standard but its dead-letter queue 'events-dlq.fifo' is FIFO" in standard_problem


def test_a_dead_letter_queue_among_the_queues_read_is_a_loop() -> None:
    """The queue itself, or another queue read, cannot take its dead letters; any other can."""
    read = {"orders", "clicks"}
    assert dead_letter_loop("orders", "orders-dlq", read, "SQS_DLQ_NAME") is None
    itself = dead_letter_loop("orders", "orders", read, "SQS_DLQ_NAME")
    assert itself is not None
    assert itself.startswith("SQS_DLQ_NAME 'orders' is the queue 'orders' itself")
    assert "the default is 'orders-dlq'" in itself
    other = dead_letter_loop("orders", "clicks", read, "the redrive policy's dead-letter queue")
    assert other is not None
    assert other.startswith(
        "the redrive policy's dead-letter queue 'clicks' of queue 'orders' is also a queue this "
        "processor reads"
    )
