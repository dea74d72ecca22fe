"""What a wrong SQS-side setting meets, with the real commands as a user runs them: one line and
exit 2 for what can never work (a queue that is its own dead-letter queue, an endpoint, region
or keys that cannot work, refused keys, a queue that does not exist while creation is off), exit 1
after the start-up deadline for an SQS that never answers; and nothing created, neither a queue
in SQS nor a key in Redis."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.integration.cli.test_cli_lifecycle import one_line, run_command
from tests.integration.processing.processor_support import unique_queue_name
from tests.servers import MotoServer, RedisServer, free_port
from tests.sqs_messages import sqs_client

ACCOUNT = "123456789012"


@pytest.fixture(name="prefix")
def fixture_prefix() -> str:
    """A Redis key prefix of the test's own, so that any key it leaves is found."""
    return f"startup{uuid.uuid4().hex[:10]}"


def redis_keys(server: RedisServer, prefix: str) -> list[bytes]:
    """Every key under `prefix` in the test's Redis."""
    with redis.Redis.from_url(server.url) as client:
        return list(client.scan_iter(match=f"*{prefix}*"))


def queues(endpoint: str) -> list[str]:
    """The URL of every queue on the SQS server."""
    return list(sqs_client(endpoint).list_queues().get("QueueUrls", []))


def processor(
    env: dict[str, str], redis_server: RedisServer, prefix: str, endpoint: str | None
) -> subprocess.CompletedProcess[str]:
    """`exporter processor` with a live Redis under `prefix` and the given SQS settings."""
    base = {"REDIS_URL": redis_server.url, "EXPORTER_REDIS_PREFIX": prefix}
    if endpoint is not None:
        base["AWS_ENDPOINT_URL"] = endpoint
    return run_command("processor", {**base, **env})


def refused(result: subprocess.CompletedProcess[str], command: str = "processor") -> str:
    """The one line of a start-up refusal: exit 2, no traceback."""
    assert result.returncode == 2, result.stderr
    return one_line(result, command)


# ------------------------------------------------------------------ a queue as its own dead letters


def test_a_queue_named_as_its_own_dead_letter_queue_is_refused_before_anything_connects(
    sqs_endpoint: str, redis_server: RedisServer, prefix: str
) -> None:
    """SQS_QUEUE_NAME=loopq SQS_DLQ_NAME=loopq (and the same queue by its URL): exit 2 naming
    SQS_DLQ_NAME and the loop, even with creation on; no queue created, no Redis key."""
    url = f"{sqs_endpoint}/{ACCOUNT}/loopq"
    for env in (
        {"SQS_QUEUE_NAME": "loopq", "SQS_DLQ_NAME": "loopq"},
        {"SQS_QUEUE_URL": url, "SQS_DLQ_NAME": "loopq"},
        {"SQS_QUEUE_URLS": f"{sqs_endpoint}/{ACCOUNT}/other,{url}", "SQS_DLQ_NAME": "loopq"},
    ):
        result = processor(
            {**env, "EXPORTER_CREATE_QUEUES": "true"}, redis_server, prefix, sqs_endpoint
        )
        line = refused(result)
        assert "SQS_DLQ_NAME 'loopq' is the queue 'loopq' itself" in line, env
        assert "for ever" in line
    assert queues(sqs_endpoint) == []
    assert redis_keys(redis_server, prefix) == []
    peek = run_command(
        "dlq peek",
        {"AWS_ENDPOINT_URL": sqs_endpoint, "SQS_QUEUE_NAME": "loopq", "SQS_DLQ_NAME": "loopq"},
    )
    assert "is the queue 'loopq' itself" in refused(peek, "dlq")


def _with_redrive_to(endpoint: str, name: str, target: str | None = None) -> str:
    """A queue `name` whose redrive policy sends to `target` (itself when None); its URL."""
    client = sqs_client(endpoint)
    url = client.create_queue(QueueName=name)["QueueUrl"]
    target_url = url if target is None else client.get_queue_url(QueueName=target)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=target_url, AttributeNames=["QueueArn"])
    policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": "5"}
    client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})
    return url


def test_a_queue_whose_redrive_policy_names_itself_is_refused_when_found(
    sqs_endpoint: str, redis_server: RedisServer, prefix: str
) -> None:
    """A queue whose RedrivePolicy deadLetterTargetArn is its own ARN, by name or by URL: exit 2
    naming the redrive policy, before any receive; no dead-letter queue created, no Redis key."""
    name = unique_queue_name("loop")
    url = _with_redrive_to(sqs_endpoint, name)
    for env in ({"SQS_QUEUE_NAME": name}, {"SQS_QUEUE_URL": url}):
        result = processor(
            {**env, "EXPORTER_CREATE_QUEUES": "true"}, redis_server, prefix, sqs_endpoint
        )
        line = refused(result)
        assert f"the redrive policy's dead-letter queue '{name}' is the queue '{name}'" in line
    assert queues(sqs_endpoint) == [url]
    assert redis_keys(redis_server, prefix) == []


def test_a_dead_letter_queue_that_is_another_queue_read_is_refused(
    sqs_endpoint: str, redis_server: RedisServer, prefix: str
) -> None:
    """Several queues (SQS_QUEUE_URLS) where one is the other's dead-letter queue, by its redrive
    policy or by the default name: exit 2 naming both; nothing created, no Redis key."""
    client = sqs_client(sqs_endpoint)
    parked_name = unique_queue_name("parked")
    parked = client.create_queue(QueueName=parked_name)["QueueUrl"]
    orders = unique_queue_name("orders")
    orders_url = _with_redrive_to(sqs_endpoint, orders, parked_name)
    plain = unique_queue_name("plain")
    plain_url = client.create_queue(QueueName=plain)["QueueUrl"]
    plain_dlq = client.create_queue(QueueName=f"{plain}-dlq")["QueueUrl"]
    before = sorted(queues(sqs_endpoint))
    for urls, expected in (
        (f"{orders_url},{parked}", f"the redrive policy's dead-letter queue '{parked_name}'"),
        (f"{plain_url},{plain_dlq}", f"the default dead-letter queue '{plain}-dlq'"),
    ):
        env = {"SQS_QUEUE_URLS": urls, "EXPORTER_CREATE_QUEUES": "true"}
        line = refused(processor(env, redis_server, prefix, sqs_endpoint))
        assert expected in line, line
        assert "is also a queue this processor reads" in line
    assert sorted(queues(sqs_endpoint)) == before
    assert redis_keys(redis_server, prefix) == []


# ---------------------------------------------------------------- AWS settings that cannot work

UNUSABLE = {
    "endpoint-without-scheme": (
        {"AWS_ENDPOINT_URL": "localhost:4566"},
        "AWS_ENDPOINT_URL 'localhost:4566' is not an http:// or https:// URL",
    ),
    "empty-region": ({"AWS_DEFAULT_REGION": ""}, "AWS_DEFAULT_REGION is empty"),
    "key-without-secret": (
        {"AWS_SECRET_ACCESS_KEY": ""},
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
    ),
    "unknown-profile": (
        {
            "AWS_PROFILE": "no-such-profile",
            "AWS_CONFIG_FILE": "/nonexistent/config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        },
        "AWS_PROFILE 'no-such-profile' is not a profile",
    ),
}
COMMANDS = ["processor", "produce --count 1", "dlq peek", "dlq redrive"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(UNUSABLE))
def test_an_aws_setting_that_cannot_work_is_one_line_in_every_command(
    sqs_endpoint: str, redis_server: RedisServer, prefix: str, command: str, case: str
) -> None:
    """Each command that talks to SQS refuses the same unusable setting the same way: exit 2,
    one line naming the variable, no traceback; no queue created, no Redis key."""
    env, expected = UNUSABLE[case]
    queue = unique_queue_name()
    result = run_command(
        command,
        {
            "AWS_ENDPOINT_URL": sqs_endpoint,
            "SQS_QUEUE_NAME": queue,
            "EXPORTER_CREATE_QUEUES": "true",
            "REDIS_URL": redis_server.url,
            "EXPORTER_REDIS_PREFIX": prefix,
            **env,
        },
    )
    assert expected in refused(result, command)
    assert queues(sqs_endpoint) == []
    assert redis_keys(redis_server, prefix) == []


def test_the_demo_refuses_an_empty_region_before_it_starts() -> None:
    """`exporter demo` with AWS_DEFAULT_REGION empty: the same line, before any banner."""
    result = run_command("demo", {"AWS_DEFAULT_REGION": "", "EXPORTER_API_PORT": "0"})
    assert "AWS_DEFAULT_REGION is empty" in refused(result, "demo")
    assert result.stdout == ""


@pytest.fixture(name="key_checking_sqs", scope="module")
def fixture_key_checking_sqs() -> Iterator[MotoServer]:
    """An SQS server that refuses every key it is given, as AWS refuses unknown ones."""
    server = MotoServer(checks_keys=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("command", COMMANDS)
def test_refused_keys_are_named_as_credentials_and_end_the_start(
    key_checking_sqs: MotoServer, redis_server: RedisServer, prefix: str, command: str
) -> None:
    """Keys SQS refuses (403 InvalidClientTokenId) are a refusal of the credentials, not an SQS
    that is "not reachable": exit 2 at once, one line naming the code and the variables."""
    result = run_command(
        command,
        {
            "AWS_ENDPOINT_URL": key_checking_sqs.url,
            "SQS_QUEUE_NAME": unique_queue_name(),
            "EXPORTER_CREATE_QUEUES": "true",
            "REDIS_URL": redis_server.url,
            "EXPORTER_REDIS_PREFIX": prefix,
        },
    )
    line = refused(result, command)
    assert "the AWS credentials were refused (InvalidClientTokenId" in line
    assert "AWS_ACCESS_KEY_ID" in line
    assert "not reachable" not in result.stderr
    assert redis_keys(redis_server, prefix) == []


# ------------------------------------------------------------------- the start-up deadline


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("closed-port", "cannot connect to 127.0.0.1:"),
        ("https-to-http", "SSL"),
        ("unresolvable-host", "cannot connect to no-such-host.invalid:4566"),
        ("redis-port", "SQS GetQueueUrl failed"),
    ],
)
def test_an_sqs_that_never_answers_ends_the_start_after_the_deadline(
    sqs_endpoint: str, redis_server: RedisServer, prefix: str, case: str, cause: str
) -> None:
    """An endpoint where SQS never answers is not waited on for ever: after
    EXPORTER_STARTUP_TIMEOUT_SECONDS, exit 1 with one line naming the endpoint, what was tried,
    how it failed and the variable to check; Redis was never written to."""
    endpoint = {
        "closed-port": f"http://127.0.0.1:{free_port()}",
        "https-to-http": sqs_endpoint.replace("http://", "https://"),
        "unresolvable-host": "http://no-such-host.invalid:4566",
        "redis-port": f"http://127.0.0.1:{redis_server.port}",
    }[case]
    result = processor({"EXPORTER_STARTUP_TIMEOUT_SECONDS": "1"}, redis_server, prefix, endpoint)
    assert result.returncode == 1, result.stderr
    line = one_line(result, "processor")
    assert line.startswith(
        f"exporter processor: SQS at {endpoint} did not answer within 1 s of start-up "
        "(EXPORTER_STARTUP_TIMEOUT_SECONDS): "
    ), line
    assert cause in line
    assert line.endswith("check the scheme (http or https), host and port in AWS_ENDPOINT_URL")
    assert redis_keys(redis_server, prefix) == []


def test_a_region_botocore_does_not_know_is_a_warning_then_named_at_the_deadline(
    redis_server: RedisServer, prefix: str
) -> None:
    """AWS_DEFAULT_REGION=us-east-9 on AWS's endpoint: a warning at start (a region newer than
    botocore would work), then, as its endpoint never answers (here: the proxy it goes through
    refuses), exit 1 naming the region and the closest known one."""
    result = processor(
        {
            "AWS_DEFAULT_REGION": "us-east-9",
            "EXPORTER_STARTUP_TIMEOUT_SECONDS": "1",
            # Through a local proxy that refuses: nothing leaves this machine, not even DNS.
            "HTTPS_PROXY": f"http://127.0.0.1:{free_port()}",
        },
        redis_server,
        prefix,
        None,
    )
    assert result.returncode == 1, result.stderr
    warnings = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("'us-east-9' is not a region this botocore knows" in w["message"] for w in warnings)
    line = one_line(result, "processor")
    assert "SQS at https://sqs.us-east-9.amazonaws.com did not answer within 1 s" in line
    assert "check AWS_DEFAULT_REGION ('us-east-9')" in line
    assert "did you mean 'us-east-" in line
    assert redis_keys(redis_server, prefix) == []


# --------------------------------------------------------------------- queue creation is off


def test_a_missing_queue_is_one_line_naming_the_setting_that_creates_it(
    sqs_endpoint: str, redis_server: RedisServer, prefix: str
) -> None:
    """By default nothing is created: a queue that does not exist (a typo) is exit 2, one line
    naming the queue, its dead-letter queue and EXPORTER_CREATE_QUEUES; no queue appears and
    nothing is written to Redis, although Redis answers."""
    name = unique_queue_name("typo")
    line = refused(processor({"SQS_QUEUE_NAME": name}, redis_server, prefix, sqs_endpoint))
    assert f"queue '{name}' does not exist, nor does its dead-letter queue '{name}-dlq'" in line
    assert "EXPORTER_CREATE_QUEUES=true" in line
    # The dead-letter queue alone missing is named alone.
    sqs_client(sqs_endpoint).create_queue(QueueName=name)
    line = refused(processor({"SQS_QUEUE_NAME": name}, redis_server, prefix, sqs_endpoint))
    assert f"dead-letter queue '{name}-dlq' does not exist" in line
    assert "EXPORTER_CREATE_QUEUES=true" in line
    assert [url.rsplit("/", 1)[1] for url in queues(sqs_endpoint)] == [name]
    assert redis_keys(redis_server, prefix) == []


def test_the_processor_help_says_queues_must_exist_unless_created() -> None:
    """`exporter processor --help` no longer says it creates queues unless told not to."""
    result = run_command("processor --help", {})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "must exist, unless --create-queues (EXPORTER_CREATE_QUEUES=true)" in text
    assert "EXPORTER_CREATE_QUEUES; default off" in text
