"""`exporter api` as a real process over a real Redis: serves, honours flags, stops on signals."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from exporter.events import Event
from tests.exporter_process import ExporterProcess
from tests.integration.web.api_support import add, event, redis_store
from tests.polling import wait_until
from tests.servers import RedisServer, free_port
from tests.store_support import unique_prefix

TOKEN = "cli-admin-token-xyz"


class ApiProcess(ExporterProcess):
    """One `exporter api` subprocess on a free port; `env` adds variables (None removes one)."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        *,
        health: int = 200,
        env: Mapping[str, str | None] | None = None,
    ) -> None:
        self.port = free_port()
        super().__init__(
            [
                "api",
                "--api-host", "127.0.0.1",
                "--api-port", str(self.port),
                "--redis-url", redis_url,
                "--redis-prefix", prefix,
            ],
            {
                "EXPORTER_ADMIN_TOKEN": TOKEN,
                "EXPORTER_LOG_FORMAT": "json",
                "EXPORTER_API_PORT": "1",  # the flag above must win over the environment
                **(env or {}),
            },
        )  # fmt: skip
        self.wait_ready(lambda: self.get("/health")[0] == health, message="exporter api")

    def get(self, path: str, method: str = "GET", token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


async def api_over(redis_url: str, events: Sequence[Event]) -> ApiProcess:
    """An `exporter api` over a prefix of its own, holding `events` applied as a processor would."""
    prefix = unique_prefix()
    writer = redis_store(redis_url, prefix)
    await add(writer, events)
    await writer.close()
    return ApiProcess(redis_url, prefix)


@pytest.fixture(name="api")
def fixture_api(redis_server: RedisServer) -> Iterator[ApiProcess]:
    """A running `exporter api` over a prefix of its own."""
    with ApiProcess(redis_server.url, unique_prefix()) as api:
        yield api


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_it_serves_and_stops_cleanly_on_a_signal(api: ApiProcess, signum: int) -> None:
    """The process serves /stats and the page, then exits 0 on SIGTERM or SIGINT."""
    assert api.get("/stats") == (200, b"[]")
    status, page = api.get("/")
    assert status == 200
    assert b"<title>Event totals</title>" in page
    code, stderr = api.finish(signum)
    assert code == 0, stderr
    messages = [json.loads(line)["message"] for line in stderr.splitlines()]
    assert "stats API listening" in messages
    assert "stats API stopping" in messages


async def test_it_reads_the_shared_store_and_resets_with_the_token(
    redis_server: RedisServer,
) -> None:
    """Totals written by a processor show up; DELETE with the env token resets; logs hide it."""
    api = await api_over(redis_server.url, [event("purchase", "3.33")] * 3)
    try:
        status, body = api.get("/stats/purchase")
        assert status == 200
        assert json.loads(body)["sum_exact"] == "9.99"
        assert api.get("/stats", "DELETE", token="wrong")[0] == 401
        assert api.get("/stats", "DELETE", token=TOKEN)[0] == 204
        assert api.get("/stats") == (200, b"[]")
    finally:
        code, stderr = api.finish(signal.SIGTERM)
    assert code == 0
    assert "statistics reset" in stderr
    assert TOKEN not in stderr


def test_the_page_names_the_store_without_its_password_and_links_dashboards(
    redis_server: RedisServer,
) -> None:
    """The page says which Redis it reads, password redacted, and links the configured URLs."""
    secret_url = redis_server.url.replace("redis://", "redis://:pw-hunter2@")
    env = {
        "REDIS_URL": secret_url,
        "EXPORTER_GRAFANA_URL": "http://grafana.example:3000",
        "EXPORTER_PROMETHEUS_URL": "http://prometheus.example:9090",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}/"

    def page() -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: bytes = response.read()
                return body
        except OSError:
            return b""

    with ExporterProcess(["api", "--api-host", "127.0.0.1", "--api-port", str(port)], env) as api:
        api.wait_ready(lambda: page() != b"", message="exporter api")
        body = page()
    assert b"pw-hunter2" not in body
    assert b":***@127.0.0.1" in body
    assert b'"grafana": "http://grafana.example:3000"' in body
    assert b'"prometheus": "http://prometheus.example:9090"' in body


def _logged(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_refusal_after_start_is_told_apart_from_an_outage(tmp_path: Path) -> None:
    """Redis's password rotated under a running API (its connections dropped): /health says
    misconfigured and names the fix, /stats says retrying will not help, the log says it once as
    an error; no password anywhere. (A refusal found at start-up exits 2 instead:
    test_cli_lifecycle.py.)"""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with redis.Redis(port=server.port) as admin:
            admin.config_set("requirepass", "first-secret")
        url = f"redis://:first-secret@127.0.0.1:{server.port}/0"
        api = ApiProcess(url, unique_prefix())
        try:
            with redis.Redis(port=server.port, password="first-secret") as admin:
                admin.config_set("requirepass", "second-secret")
                admin.client_kill_filter(_type="normal", skipme=True)
            # The first call may meet the dropped connection (an outage); the next ones the refusal.
            wait_until(
                lambda: json.loads(api.get("/health")[1])["checks"] == {"store": "misconfigured"},
                timeout=30,
                message="/health saying misconfigured",
            )
            health = json.loads(api.get("/health")[1])
            stats_status, stats_body = api.get("/stats")
        finally:
            code, stderr = api.finish(signal.SIGTERM)
    finally:
        server.kill()
    assert code == 0
    assert health["checks"] == {"store": "misconfigured"}
    assert "Redis refused the user or password in REDIS_URL" in health["problem"]
    assert stats_status == 503
    assert json.loads(stats_body)["error"] == "store_misconfigured"
    assert "secret" not in stderr + json.dumps(health)
    logged = _logged(stderr)
    refusals = [r for r in logged if r["message"] == "health: store misconfigured"]
    assert refusals
    assert {r["level"] for r in refusals} == {"error"}


def test_an_unreachable_redis_is_named_redacted_and_called_an_outage() -> None:
    """A Redis that does not answer: the log names it with the password hidden and calls it not
    reachable yet; /health says failing (an outage), not misconfigured."""
    password = "hunter2-not-for-logs"
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"
    api = ApiProcess(url, unique_prefix(), health=503)
    try:
        health = json.loads(api.get("/health")[1])
        stats = json.loads(api.get("/stats")[1])
    finally:
        code, stderr = api.finish(signal.SIGTERM)
    assert code == 0
    assert health["checks"] == {"store": "failing"}
    assert "problem" not in health
    assert stats["error"] == "store_unavailable"
    assert password not in stderr
    logged = _logged(stderr)
    listening = next(r for r in logged if r["message"] == "stats API listening")
    assert listening["store"] == url.replace(password, "***")
    assert any(r["message"].startswith("Redis is not reachable yet") for r in logged)
