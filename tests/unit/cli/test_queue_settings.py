"""The queue settings: several queue URLs from the environment or repeated flags, FIFO names,
and the checks the commands run before any call."""

from __future__ import annotations

import pytest

from exporter.cli import build_parser
from exporter.cli.parts import sqs_config
from exporter.settings import ConfigurationError, load_settings
from tests.queue_names import dlq_name_of

ORDERS = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
CLICKS = "https://sqs.eu-west-1.amazonaws.com/123456789012/clicks.fifo"


@pytest.fixture(autouse=True)
def _no_queue_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SQS_QUEUE_NAME", "SQS_QUEUE_URL", "SQS_QUEUE_URLS", "SQS_DLQ_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_queue_urls_come_comma_separated_or_from_repeated_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`SQS_QUEUE_URLS=a, b` and `--sqs-queue-urls a,b --sqs-queue-urls c` both give a list."""
    monkeypatch.setenv("SQS_QUEUE_URLS", f"{ORDERS}, {CLICKS}")
    assert load_settings().sqs_queue_urls == (ORDERS, CLICKS)
    args = build_parser(("processor",)).parse_args(
        ["processor", "--sqs-queue-urls", f"{ORDERS},{CLICKS}", "--sqs-queue-urls", ORDERS]
    )
    settings = load_settings(sqs_queue_urls=args.sqs_queue_urls)
    assert settings.sqs_queue_urls == (ORDERS, CLICKS, ORDERS)
    assert [spec.name for spec in sqs_config(settings).specs()] == ["orders", "clicks.fifo"]


def test_queue_url_and_queue_urls_are_read_together_each_once() -> None:
    """SQS_QUEUE_URL first, then SQS_QUEUE_URLS; each queue with its own default dead letters."""
    settings = load_settings(sqs_queue_url=ORDERS, sqs_queue_urls=[f"{CLICKS},{ORDERS}"])
    specs = sqs_config(settings).specs()
    assert [(s.name, s.url, s.dlq_name) for s in specs] == [
        ("orders", ORDERS, None),
        ("clicks.fifo", CLICKS, None),
    ]


def test_a_fifo_queue_name_gives_a_fifo_dead_letter_name() -> None:
    """`events.fifo` dead-letters to `events-dlq.fifo` by default."""
    assert dlq_name_of(load_settings(sqs_queue_name="events.fifo")) == "events-dlq.fifo"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"sqs_queue_url": "garbage"}, "SQS_QUEUE_URL 'garbage' is not a queue URL"),
        ({"sqs_queue_urls": [f"{ORDERS},x"]}, "SQS_QUEUE_URLS 'x' is not a queue URL"),
        ({"sqs_queue_name": "a b"}, "SQS_QUEUE_NAME 'a b' is not a queue name"),
        ({"sqs_dlq_name": "dead letters"}, "SQS_DLQ_NAME 'dead letters' is not a queue name"),
        (
            {"sqs_queue_urls": [ORDERS, ORDERS.replace("123456789012", "210987654321")]},
            "SQS_QUEUE_URLS names queue 'orders' more than once",
        ),
        (
            {"sqs_queue_url": ORDERS, "sqs_queue_urls": [ORDERS.replace("1234", "4321")]},
            "SQS_QUEUE_URL and SQS_QUEUE_URLS name queue 'orders' more than once",
        ),
        (
            {"sqs_queue_urls": [ORDERS, CLICKS], "sqs_dlq_name": "shared-dlq"},
            "SQS_DLQ_NAME: queue 'clicks.fifo' is FIFO but its dead-letter queue 'shared-dlq'",
        ),
    ],
    ids=["url", "urls", "name", "dlq", "twice", "twice-in-two", "shared-pairing"],
)
def test_bad_queue_settings_are_one_configuration_error(
    overrides: dict[str, object], problem: str
) -> None:
    """Every mistake is refused before anything connects, naming the setting and the value."""
    with pytest.raises(ConfigurationError) as raised:
        sqs_config(load_settings(**overrides))
    assert str(raised.value).startswith(problem)


@pytest.mark.parametrize(
    "queue",
    [
        {"sqs_queue_name": "loopq"},
        {"sqs_queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/loopq"},
        {"sqs_queue_urls": [f"{ORDERS},https://sqs.eu-west-1.amazonaws.com/123456789012/loopq"]},
    ],
)
def test_a_dead_letter_queue_that_is_a_queue_read_is_refused_by_its_setting(
    queue: dict[str, object],
) -> None:
    """SQS_DLQ_NAME naming a queue read, by name or URL, alone or among several: the queue's own
    dead-letter queue, refused before any call."""
    settings = load_settings(**queue, sqs_dlq_name="loopq")
    with pytest.raises(
        ConfigurationError, match="SQS_DLQ_NAME 'loopq' is the queue 'loopq' itself"
    ):
        sqs_config(settings)


def test_each_queue_names_the_variable_it_came_from() -> None:
    """SQS_QUEUE_URL's queue and SQS_QUEUE_URLS's queues carry their own variable, which an
    error about one of them names (a URL in both is SQS_QUEUE_URL's)."""
    config = sqs_config(load_settings(sqs_queue_url=ORDERS, sqs_queue_urls=[f"{CLICKS},{ORDERS}"]))
    assert [(spec.name, spec.setting) for spec in config.specs()] == [
        ("orders", "SQS_QUEUE_URL"),
        ("clicks.fifo", "SQS_QUEUE_URLS"),
    ]
    named = sqs_config(load_settings(sqs_queue_name="events"))
    assert [spec.setting for spec in named.specs()] == ["SQS_QUEUE_NAME"]
