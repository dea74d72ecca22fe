"""Settings as the real commands read them: under their documented names only, a misspelt one
named at start, and each command checking only the settings it uses (decision 0016)."""

from __future__ import annotations

import json
import signal
from typing import Any

import redis

from exporter.store.keys import StoreKeys
from tests.integration.cli.test_cli_api import ApiProcess
from tests.integration.cli.test_cli_lifecycle import one_line, run_command
from tests.servers import RedisServer
from tests.store_support import unique_prefix

# What a Kubernetes Service called `redis` (and one called `sqs-metrics-exporter-api`) puts in
# every pod's environment: shared prefixes, no settings, nothing to warn about.
SERVICE_LINKS = {
    "REDIS_SERVICE_HOST": "10.96.0.12",
    "REDIS_SERVICE_PORT": "6379",
    "REDIS_SERVICE_PORT_REDIS": "6379",
    "REDIS_PORT": "tcp://10.96.0.12:6379",
    "REDIS_PORT_6379_TCP": "tcp://10.96.0.12:6379",
    "REDIS_PORT_6379_TCP_PROTO": "tcp",
    "REDIS_PORT_6379_TCP_PORT": "6379",
    "REDIS_PORT_6379_TCP_ADDR": "10.96.0.12",
    "SQS_METRICS_EXPORTER_API_PORT": "tcp://10.96.0.13:8000",
    "SQS_METRICS_EXPORTER_API_SERVICE_HOST": "10.96.0.13",
}


def _warnings(stderr: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [record for record in records if record["logger"] == "exporter.settings"]


def test_a_field_name_in_the_environment_enables_nothing(redis_server: RedisServer) -> None:
    """ADMIN_TOKEN=sneaky (the token's field name, not EXPORTER_ADMIN_TOKEN) leaves reset
    disabled: DELETE /stats with that token is refused as disabled, and the start-up log names
    the variable to use; LOG_LEVEL=debug no longer fails the command naming EXPORTER_LOG_LEVEL."""
    env = {"EXPORTER_ADMIN_TOKEN": None, "ADMIN_TOKEN": "sneaky", "LOG_LEVEL": "debug"}
    api = ApiProcess(redis_server.url, unique_prefix(), env=env)
    try:
        status, body = api.get("/stats", "DELETE", token="sneaky")
    finally:
        code, stderr = api.finish(signal.SIGTERM)
    assert (status, json.loads(body)["error"]) == (403, "reset_disabled")
    assert code == 0, stderr
    messages = {record["message"] for record in _warnings(stderr)}
    assert messages == {
        "ADMIN_TOKEN is not a setting; did you mean EXPORTER_ADMIN_TOKEN?",
        "LOG_LEVEL is not a setting; did you mean EXPORTER_LOG_LEVEL?",
    }
    assert "sneaky" not in stderr


def test_a_misspelt_variable_is_named_at_start_and_service_links_are_not(
    redis_server: RedisServer,
) -> None:
    """REDIS_ULR set beside the real REDIS_URL (the test's Redis): the API starts on REDIS_URL
    and logs one warning naming REDIS_URL; Kubernetes' service links and the suite's own
    EXPORTER_TEST_TIMEOUT_SCALE draw none."""
    prefix = unique_prefix()
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_ULR": "redis://127.0.0.1:1/0",
        "EXPORTER_TEST_TIMEOUT_SCALE": "3",
        **SERVICE_LINKS,
    }
    api = ApiProcess(redis_server.url, prefix, env=env)
    try:
        assert api.get("/stats") == (200, b"[]")
    finally:
        code, stderr = api.finish(signal.SIGTERM)
    assert code == 0, stderr
    warnings = _warnings(stderr)
    assert [record["message"] for record in warnings] == [
        "REDIS_ULR is not a setting; did you mean REDIS_URL?"
    ]
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["did_you_mean"] == "REDIS_URL"
    client = redis.Redis.from_url(redis_server.url)
    try:
        # The Redis REDIS_URL names is the one used (the store records its shard count there).
        assert client.exists(StoreKeys.build(prefix, 1).shard_count)
    finally:
        client.close()


def test_a_bad_value_fails_only_the_commands_that_use_the_setting(
    redis_server: RedisServer,
) -> None:
    """EXPORTER_CONCURRENCY=0 (one env file for every compose service): `exporter api`, which
    has no pollers, serves; `exporter processor` exits 2 with one line naming the variable."""
    env = {"EXPORTER_CONCURRENCY": "0"}
    api = ApiProcess(redis_server.url, unique_prefix(), env=env)
    code, stderr = api.finish(signal.SIGTERM)
    assert code == 0, stderr
    assert "EXPORTER_CONCURRENCY" not in stderr
    result = run_command("processor", {**env, "REDIS_URL": redis_server.url})
    assert result.returncode == 2, result.stderr
    line = one_line(result, "processor")
    assert line.startswith("exporter processor: invalid configuration: EXPORTER_CONCURRENCY:")
    assert "greater than or equal to 1" in line
