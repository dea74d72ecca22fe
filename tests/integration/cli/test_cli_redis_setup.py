"""How a Redis is set up meets the real commands: an evicting maxmemory-policy is refused by the
processor at start (exit 2, one line) unless allowed, then warned of and shown as a metric; the
API warns and serves; too few replicas are named as such, and nothing is left behind."""

from __future__ import annotations

import json
import urllib.request

import pytest
import redis

from tests.exporter_process import ExporterProcess
from tests.integration.cli.test_cli_lifecycle import Processor, one_line, run_command
from tests.integration.processing.processor_support import unique_queue_name
from tests.polling import scaled, wait_until
from tests.servers import (
    EVICTING_POLICIES,
    STARTUP_TIMEOUT_SECONDS,
    MotoServer,
    RedisServer,
    free_port,
)


def _policy(server: RedisServer, policy: str) -> None:
    with redis.Redis(port=server.port) as client:
        client.config_set("maxmemory-policy", policy)


def _metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=scaled(5)) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


@pytest.mark.parametrize("policy", EVICTING_POLICIES)
def test_an_evicting_policy_is_refused_by_the_processor_at_start(
    fresh_redis_server: RedisServer, moto_server: MotoServer, policy: str
) -> None:
    """maxmemory-policy anything but noeviction (volatile-* too: they evict the remembered
    identities): exit 2 with one line naming the policy, the fix and the setting; nothing of
    the exporter's is written."""
    _policy(fresh_redis_server, policy)
    # The processor finds its queue before it first writes to Redis: it needs one to get there.
    result = run_command(
        "processor",
        {"REDIS_URL": fresh_redis_server.url, "SQS_QUEUE_NAME": unique_queue_name()},
        moto_server,
    )
    assert result.returncode == 2, result.stderr
    line = one_line(result, "processor")
    assert f"maxmemory-policy {policy}" in line
    assert "set maxmemory-policy noeviction" in line
    assert "EXPORTER_REDIS_ALLOW_EVICTION=true" in line
    with redis.Redis(port=fresh_redis_server.port) as client:
        assert [key for key in client.keys("*") if b"probe" in key or b"seen" in key] == []


def test_an_allowed_evicting_policy_runs_with_a_warning_and_a_metric(
    fresh_redis_server: RedisServer, moto_server: MotoServer
) -> None:
    """EXPORTER_REDIS_ALLOW_EVICTION=true on allkeys-lru: the processor gets ready, warns once
    naming the policy, and exporter_redis_evicting is 1."""
    _policy(fresh_redis_server, "allkeys-lru")
    processor = Processor(fresh_redis_server.url, moto_server, EXPORTER_REDIS_ALLOW_EVICTION="true")
    try:
        wait_until(
            lambda: processor.status("/ready") == 200,
            timeout=STARTUP_TIMEOUT_SECONDS,
            message="the processor ready",
        )
        assert _metric(processor.port, "exporter_redis_evicting") == 1
        code, err = processor.finish()
    finally:
        processor.end()
    assert code == 0, err
    warnings = [json.loads(line) for line in err.splitlines() if "may evict" in line]
    assert len(warnings) == 1, err
    assert warnings[0]["level"] == "warning"
    assert "maxmemory-policy allkeys-lru" in warnings[0]["message"]


def test_the_api_warns_of_an_evicting_policy_and_serves(
    fresh_redis_server: RedisServer,
) -> None:
    """The API only reads: on volatile-lru it serves /health 200, warns, and shows the metric."""
    _policy(fresh_redis_server, "volatile-lru")
    port = free_port()
    env = {
        "REDIS_URL": fresh_redis_server.url,
        "EXPORTER_API_HOST": "127.0.0.1",
        "EXPORTER_API_PORT": str(port),
        "EXPORTER_LOG_FORMAT": "json",
    }
    with ExporterProcess(["api"], env) as api:

        def healthy() -> bool:
            url = f"http://127.0.0.1:{port}/health"
            with urllib.request.urlopen(url, timeout=scaled(5)) as reply:
                return bool(reply.status == 200)

        api.wait_ready(healthy, message="the API healthy")
        assert _metric(port, "exporter_redis_evicting") == 1
        code, err = api.finish()
    assert code == 0, err
    assert "maxmemory-policy volatile-lru" in err
    assert "Traceback" not in err


def test_too_few_replicas_at_start_says_what_it_found_and_leaves_nothing(
    fresh_redis_server: RedisServer, moto_server: MotoServer
) -> None:
    """EXPORTER_REDIS_MIN_REPLICAS=1 on a Redis without replicas: the wait says Redis answers but
    0 of 1 replicas acknowledged, never "not reachable" nor "no answer in time"; the exit line
    (2) names the finding and both fixes; no key is left behind."""
    result = run_command(
        "processor",
        {
            "REDIS_URL": fresh_redis_server.url,
            "SQS_QUEUE_NAME": unique_queue_name(),
            "EXPORTER_REDIS_MIN_REPLICAS": "1",
            "EXPORTER_STARTUP_TIMEOUT_SECONDS": "3",
        },
        moto_server,
    )
    assert result.returncode == 2, result.stderr
    line = one_line(result, "processor")
    assert "answers, but for 3 s of start-up" in line
    assert "0 of 1 replicas acknowledged" in line
    assert "lower EXPORTER_REDIS_MIN_REPLICAS or add a replica" in line
    assert "not reachable" not in result.stderr
    assert "no answer in time" not in result.stderr
    assert "0 of 1 replicas acknowledged" in result.stderr.split(line)[0]  # the wait's warning
    with redis.Redis(port=fresh_redis_server.port) as client:
        assert client.keys("*ack*") == []
        assert client.keys("*probe*") == []
