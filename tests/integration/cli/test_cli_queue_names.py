"""A queue name or URL SQS would refuse ends a command with one line, and nothing is created."""

from __future__ import annotations

import pytest

from tests.exporter_process import run_exporter
from tests.integration.cli.test_cli_lifecycle import one_line, run_command
from tests.integration.processing.processor_support import unique_queue_name
from tests.servers import RedisServer, free_port
from tests.sqs_messages import sqs_client


@pytest.mark.parametrize(
    ("command", "env", "line"),
    [
        (
            ["processor"],
            {"SQS_QUEUE_URL": "garbage"},
            "exporter processor: SQS_QUEUE_URL 'garbage' is not a queue URL",
        ),
        (
            ["processor"],
            {"SQS_QUEUE_URLS": "http://127.0.0.1:1/123456789012/fine,garbage"},
            "exporter processor: SQS_QUEUE_URLS 'garbage' is not a queue URL",
        ),
        (
            ["processor"],
            {"SQS_QUEUE_NAME": "orders queue"},
            "exporter processor: SQS_QUEUE_NAME 'orders queue' is not a queue name",
        ),
        (
            ["processor"],
            {"SQS_QUEUE_NAME": "orders.fifo", "SQS_DLQ_NAME": "orders-dlq"},
            "exporter processor: SQS_DLQ_NAME: queue 'orders.fifo' is FIFO but its dead-letter "
            "queue 'orders-dlq' is standard",
        ),
        (
            ["dlq", "peek"],
            {"SQS_QUEUE_URL": "garbage"},
            "exporter dlq: SQS_QUEUE_URL 'garbage' is not a queue URL",
        ),
        (
            ["produce", "--count", "1"],
            {"SQS_QUEUE_NAME": "a/b"},
            "exporter produce: SQS_QUEUE_NAME 'a/b' is not a queue name",
        ),
    ],
    ids=["processor-url", "processor-urls", "processor-name", "fifo-pairing", "dlq", "produce"],
)
def test_a_bad_queue_setting_is_one_line_exit_2_and_creates_nothing(
    sqs_endpoint: str, command: list[str], env: dict[str, str], line: str
) -> None:
    """As a newcomer types it: exit 2, one line naming the setting and the value, no traceback,
    and no queue created on the SQS endpoint."""
    result = run_exporter(
        command,
        {
            "AWS_ENDPOINT_URL": sqs_endpoint,
            "EXPORTER_METRICS_PORT": str(free_port()),
            "REDIS_URL": "redis://127.0.0.1:1/0",
            **env,
        },
        timeout=60,
        fresh_settings=True,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(line), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert sqs_client(sqs_endpoint).list_queues().get("QueueUrls", []) == []


def test_a_queue_url_of_no_queue_creates_no_dead_letter_queue(sqs_endpoint: str) -> None:
    """A well-formed SQS_QUEUE_URL of a queue that does not exist: exit 2 naming the URL, and
    its dead-letter queue is not created either (it used to be, before the lookup failed)."""
    url = f"{sqs_endpoint}/123456789012/absent"
    result = run_exporter(
        ["processor"],
        {
            "AWS_ENDPOINT_URL": sqs_endpoint,
            "EXPORTER_METRICS_PORT": str(free_port()),
            "SQS_QUEUE_URL": url,
        },
        timeout=60,
        fresh_settings=True,
    )
    assert result.returncode == 2, result.stderr
    assert f"exporter processor: SQS_QUEUE_URL '{url}': no such queue" in result.stderr
    assert "Traceback" not in result.stderr
    assert sqs_client(sqs_endpoint).list_queues().get("QueueUrls", []) == []


@pytest.mark.parametrize("variable", ["SQS_QUEUE_URL", "SQS_QUEUE_URLS"])
def test_a_queue_url_of_no_queue_names_the_variable_it_came_from(
    sqs_endpoint: str, redis_server: RedisServer, variable: str
) -> None:
    """A well-formed URL of a queue that does not exist, given in SQS_QUEUE_URLS beside a
    queue that does (or alone in SQS_QUEUE_URL): the one line names the variable the URL came
    from, and nothing is created."""
    client = sqs_client(sqs_endpoint)
    present = client.create_queue(QueueName=unique_queue_name())["QueueUrl"]
    absent = f"{sqs_endpoint}/123456789012/{unique_queue_name()}"
    env = (
        {"SQS_QUEUE_URL": present, "SQS_QUEUE_URLS": absent}
        if variable == "SQS_QUEUE_URLS"
        else {"SQS_QUEUE_URL": absent}
    )
    result = run_command(
        "processor", {**env, "AWS_ENDPOINT_URL": sqs_endpoint, "REDIS_URL": redis_server.url}
    )
    assert result.returncode == 2, result.stderr
    line = one_line(result, "processor")
    assert line.startswith(f"exporter processor: {variable} '{absent}': no such queue"), line
    assert client.list_queues().get("QueueUrls", []) == [present]
