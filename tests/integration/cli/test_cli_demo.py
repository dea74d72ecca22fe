"""`exporter demo` as a real process: /stats fills up, the store choice is announced, Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from exporter.cli.demo import DEMO_PREFIX
from exporter.store.keys import StoreKeys
from tests.exporter_process import STOP_TIMEOUT_SECONDS, ExporterProcess, run_exporter
from tests.polling import wait_until
from tests.servers import STARTUP_TIMEOUT_SECONDS, RedisServer, free_port, require_binary
from tests.store_support import unique_prefix

DEFAULT_REDIS_PORT = 6379
# The demo's keys (its own prefix, one shard), as the store names them.
DEMO_KEYS = StoreKeys.build(DEMO_PREFIX, 1)


class Demo(ExporterProcess):
    """One `exporter demo` subprocess on free ports. It is ended with Ctrl-C, so that it stops
    its private redis-server (a killed demo leaves that server running), killed only if Ctrl-C
    is not enough."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        env: dict[str, str] | None = None,
        prefix: str | None = "unique",
        rate: str = "50",
        api_port: int | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.api_port = api_port or free_port()
        self.metrics_port = metrics_port or free_port()
        super().__init__(
            [
                "demo",
                "--api-port", str(self.api_port),
                "--metrics-port", str(self.metrics_port),
                *(["--redis-url", redis_url] if redis_url is not None else []),
                "--rate", rate,
                *(["--redis-prefix", unique_prefix()] if prefix else []),
            ],
            # No REDIS_URL at all when `redis_url` is None: neither in the environment nor a flag.
            {"REDIS_URL": None, "EXPORTER_LOG_FORMAT": "json", **(env or {})},
            stop_signal=signal.SIGINT,
        )  # fmt: skip

    def get(self, path: str, port: int | None = None) -> bytes:
        url = f"http://127.0.0.1:{port or self.api_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body

    def stats(self) -> list[dict[str, Any]]:
        stats: list[dict[str, Any]] = json.loads(self.get("/stats"))
        return stats

    def wait_counting(self) -> None:
        """Wait until /stats counts its first events (it fails at once if the demo exits)."""
        self.wait_ready(lambda: counted(self.stats()) > 0, message="the first totals")

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C, then the exit code and output; fails if it takes longer than a few seconds."""
        code = self.stop(timeout=STOP_TIMEOUT_SECONDS)
        return code, self.stdout, self.stderr


@pytest.fixture(name="dead_redis_url")
def fixture_dead_redis_url() -> str:
    """A Redis URL where nothing answers."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture(name="demo")
def fixture_demo(dead_redis_url: str) -> Iterator[Demo]:
    """A demo whose REDIS_URL does not answer (so it starts a private redis-server)."""
    demo = Demo(dead_redis_url)
    yield demo
    demo.end()


def counted(stats: list[dict[str, Any]]) -> int:
    return sum(item["count"] for item in stats)


def test_stats_fill_up_and_ctrl_c_stops_everything(demo: Demo, redis_server: RedisServer) -> None:
    """Traffic flows end to end (/stats grows, both /metrics answer) and SIGINT exits 0 quickly."""
    del redis_server  # only to skip this test where redis-server is missing
    demo.wait_counting()
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
    client.delete(DEMO_KEYS.legacy_totals, DEMO_KEYS.types)
    demo = Demo(redis_server.url, prefix=None)
    try:
        demo.wait_counting()
        code, out, _ = demo.interrupt()
    finally:
        demo.end()
    assert code == 0
    assert f"Redis at {redis_server.url} (REDIS_URL), keys under 'exporter-demo': empty" in out
    assert client.exists(DEMO_KEYS.legacy_totals)
    client.delete(DEMO_KEYS.legacy_totals, DEMO_KEYS.types)
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
        demo.wait_counting()
        code, out, err = demo.interrupt()
    finally:
        demo.end()
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
        demo.wait(30)
    finally:
        demo.end()
    err = demo.stderr
    assert demo.returncode == 1
    assert "Traceback" not in err
    assert "exporter demo: the private redis-server at redis://127.0.0.1:" in err
    assert err.rstrip().endswith("did not start")


def test_without_moto_it_says_how_to_install_it(tmp_path: Path) -> None:
    """When moto cannot be imported the demo exits 2 naming the extra to install."""
    fake = tmp_path / "moto"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('moto is not installed')\n")
    result = run_exporter(
        ["demo"],
        {"PYTHONPATH": str(tmp_path), "EXPORTER_API_PORT": "0", "EXPORTER_METRICS_PORT": "0"},
        timeout=30,
    )
    assert result.returncode == 2
    assert "uv sync --extra demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_redis_url_set_it_says_it_continues_the_totals_there(
    redis_server: RedisServer,
) -> None:
    """REDIS_URL set and holding demo totals: the banner says the demo continues them, with how
    many types and events."""
    client = redis.Redis.from_url(redis_server.url)
    client.delete(DEMO_KEYS.legacy_totals, DEMO_KEYS.types)
    client.hset(
        DEMO_KEYS.legacy_totals,
        mapping={
            "count:keep": 1234,
            "units:keep": 5,
            "frac:keep": 0,
            "count:b": 1,
            "units:b": 1,
            "frac:b": 0,
        },
    )
    client.sadd(DEMO_KEYS.types, "keep", "b")
    demo = Demo(None, env={"REDIS_URL": redis_server.url}, prefix=None, rate="0")
    try:
        wait_until(
            lambda: counted(demo.stats()) == 1235,
            timeout=STARTUP_TIMEOUT_SECONDS,
            message="the API",
        )
        code, out, _ = demo.interrupt()
    finally:
        demo.end()
        client.delete(DEMO_KEYS.legacy_totals, DEMO_KEYS.types)
        client.close()
    assert code == 0
    assert "(REDIS_URL), keys under 'exporter-demo': continuing 2 types, 1,235 events" in out


def _answers_on(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_without_redis_url_no_redis_of_yours_is_touched_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    """REDIS_URL unset (no variable, no flag): the demo uses a private redis-server and says why,
    leaves neither it nor its files behind, and writes nothing to a Redis on localhost:6379 (one of
    the test's own there when the port is free, else the one already listening: no key appears)."""
    require_binary("redis-server")
    local: RedisServer | None = None
    if not _answers_on(DEFAULT_REDIS_PORT):
        local = RedisServer(tmp_path / "local")
        local.port = DEFAULT_REDIS_PORT
        local.start()
    watched = redis.Redis(port=DEFAULT_REDIS_PORT, socket_timeout=5)
    demo_tmp = tmp_path / "demo-tmp"
    demo_tmp.mkdir()
    try:
        before = set(watched.scan_iter(count=1000))
        demo = Demo(None, env={"TMPDIR": str(demo_tmp)}, prefix=None)
        try:
            demo.wait_counting()
            code, out, err = demo.interrupt()
        finally:
            demo.end()
        new_keys = set(watched.scan_iter(count=1000)) - before
    finally:
        watched.close()
        if local is not None:
            local.stop()
    assert code == 0, err
    assert not any(b"exporter" in key for key in new_keys), new_keys
    assert "REDIS_URL is not set, so no Redis of yours is touched" in out
    private = re.search(r"private redis-server at redis://127\.0\.0\.1:(\d+)/0", out)
    assert private is not None, out
    assert not _answers_on(int(private.group(1))), "the private redis-server outlived the demo"
    assert list(demo_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("taken", "flag"),
    [("api_port", "--api-port (EXPORTER_API_PORT)"),
     ("metrics_port", "--metrics-port (EXPORTER_METRICS_PORT)")],
)  # fmt: skip
def test_a_taken_port_ends_the_demo_before_its_banner_naming_the_flag(
    tmp_path: Path, taken: str, flag: str
) -> None:
    """A port the test holds, given as the API's or the processor's: the demo exits 1 with one
    line naming the port and the flag that changes it, prints no banner, and starts nothing: it
    binds its ports first, so no store is chosen (no private redis-server, nothing in its
    TMPDIR) and no moto runs."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    demo_tmp = tmp_path / "demo-tmp"
    demo_tmp.mkdir()
    demo = Demo(None, env={"TMPDIR": str(demo_tmp)}, prefix=None, **{taken: port})
    try:
        demo.wait(60)
    finally:
        demo.end()
        held.close()
    out, err = demo.stdout, demo.stderr
    assert demo.returncode == 1, err
    assert out == ""  # no banner, no "running", no URL
    assert err.splitlines() == [
        f"exporter demo: port {port} for "
        + ("the stats API" if taken == "api_port" else "the processor's /metrics")
        + f" is taken (Address already in use); choose another with {flag}"
    ]
    assert list(demo_tmp.iterdir()) == []
