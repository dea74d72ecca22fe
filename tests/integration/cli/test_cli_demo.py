"""`exporter demo` as a real process: /stats fills up, the store choice is announced, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.web.api_support import unique_prefix
from tests.servers import STARTUP_TIMEOUT_SECONDS, RedisServer, free_port, start_process, wait_until

EXPORTER = str(Path(sys.executable).parent / "exporter")
STOP_TIMEOUT_SECONDS = 15


class Demo:
    """One `exporter demo` subprocess on free ports."""

    def __init__(
        self,
        redis_url: str,
        *,
        env: dict[str, str] | None = None,
        prefix: str | None = "unique",
    ) -> None:
        self.api_port = free_port()
        self.metrics_port = free_port()
        self.process = start_process(
            [
                EXPORTER, "demo",
                "--api-port", str(self.api_port),
                "--metrics-port", str(self.metrics_port),
                "--redis-url", redis_url,
                "--rate", "50",
                *(["--redis-prefix", unique_prefix()] if prefix else []),
            ],
            env={**os.environ, "EXPORTER_LOG_FORMAT": "json", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def get(self, path: str, port: int | None = None) -> bytes:
        url = f"http://127.0.0.1:{port or self.api_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body

    def stats(self) -> list[dict[str, Any]]:
        stats: list[dict[str, Any]] = json.loads(self.get("/stats"))
        return stats

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C, then the exit code and output; fails if it takes longer than a few seconds."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=STOP_TIMEOUT_SECONDS)
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(name="dead_redis_url")
def fixture_dead_redis_url() -> str:
    """A Redis URL where nothing answers."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture(name="demo")
def fixture_demo(dead_redis_url: str) -> Iterator[Demo]:
    """A demo whose REDIS_URL does not answer (so it starts a private redis-server)."""
    demo = Demo(dead_redis_url)
    yield demo
    demo.kill()


def counted(stats: list[dict[str, Any]]) -> int:
    return sum(item["count"] for item in stats)


def test_stats_fill_up_and_ctrl_c_stops_everything(demo: Demo, redis_server: RedisServer) -> None:
    """Traffic flows end to end (/stats grows, both /metrics answer) and SIGINT exits 0 quickly."""
    del redis_server  # only to skip this test where redis-server is missing
    wait_until(
        lambda: counted(demo.stats()) > 0,
        timeout=STARTUP_TIMEOUT_SECONDS,
        message="the first totals",
    )
    first = counted(demo.stats())
    wait_until(lambda: counted(demo.stats()) > first, timeout=30, message="totals to grow")
    stats = demo.stats()
    assert {item["type"] for item in stats} <= {"pageview", "added-to-basket", "purchase"}
    assert b"exporter_stats_events_total" in demo.get("/metrics")
    processor_metrics = demo.get("/metrics", port=demo.metrics_port)
    assert b"exporter_events_processed_total" in processor_metrics
    assert b"<title>Event totals</title>" in demo.get("/")
    code, out, err = demo.interrupt()
    assert code == 0, err
    assert f"http://localhost:{demo.api_port}/" in out
    assert f"http://localhost:{demo.api_port}/stats" in out
    assert f"http://localhost:{demo.api_port}/metrics" in out
    assert "private redis-server" in out
    messages = [json.loads(line)["message"] for line in err.splitlines() if line.startswith("{")]
    assert "demo stopped" in messages
    assert "Traceback" not in err


def test_a_reachable_redis_url_is_used_under_a_demo_prefix(redis_server: RedisServer) -> None:
    """With Redis answering at REDIS_URL the demo uses it, keeping its keys apart by default."""
    client = redis.Redis.from_url(redis_server.url)
    client.delete("{exporter-demo}:totals", "{exporter-demo}:types")
    demo = Demo(redis_server.url, prefix=None)
    try:
        wait_until(
            lambda: counted(demo.stats()) > 0,
            timeout=STARTUP_TIMEOUT_SECONDS,
            message="the first totals",
        )
        code, out, _ = demo.interrupt()
    finally:
        demo.kill()
    assert code == 0
    assert f"Redis at {redis_server.url} (REDIS_URL), keys under 'exporter-demo'" in out
    assert client.exists("{exporter-demo}:totals")
    client.delete("{exporter-demo}:totals", "{exporter-demo}:types")
    client.close()


def test_without_redis_it_falls_back_to_memory_and_says_so(
    dead_redis_url: str, tmp_path: Path
) -> None:
    """No Redis and no redis-server on PATH: the in-memory store, announced loudly, still works;
    the announcement and the logs show REDIS_URL without its password."""
    password = "hunter2-not-for-logs"
    url = dead_redis_url.replace("redis://", f"redis://:{password}@")
    demo = Demo(url, env={"PATH": str(tmp_path)})
    try:
        wait_until(
            lambda: counted(demo.stats()) > 0,
            timeout=STARTUP_TIMEOUT_SECONDS,
            message="the first totals",
        )
        code, out, err = demo.interrupt()
    finally:
        demo.kill()
    assert code == 0
    assert "IN-MEMORY store" in out
    assert "redis://:***@127.0.0.1" in out
    assert password not in out
    assert password not in err


def test_a_private_redis_server_that_fails_is_one_line_and_exit_1(
    dead_redis_url: str, tmp_path: Path
) -> None:
    """A redis-server on PATH that exits at once ends the demo with one line, not a traceback."""
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    demo = Demo(dead_redis_url, env={"PATH": str(tmp_path)})
    try:
        _, err = demo.process.communicate(timeout=30)
    finally:
        demo.kill()
    assert demo.process.returncode == 1
    assert "Traceback" not in err
    assert "exporter demo: the private redis-server at redis://127.0.0.1:" in err
    assert err.rstrip().endswith("did not start")


def test_without_moto_it_says_how_to_install_it(tmp_path: Path) -> None:
    """When moto cannot be imported the demo exits 2 naming the extra to install."""
    fake = tmp_path / "moto"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('moto is not installed')\n")
    result = subprocess.run(
        [EXPORTER, "demo"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "uv sync --extra demo" in result.stderr
    assert "Traceback" not in result.stderr
