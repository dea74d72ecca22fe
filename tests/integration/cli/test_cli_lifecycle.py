"""Start-up and shutdown as a user meets them, with the real commands: a mistake fails fast with
one line, a Redis never reached ends after a deadline, and SIGTERM ends cleanly in every state
(waiting, paused, probing a Redis that hangs, and a SIGKILLed demo leaves nothing behind)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.exporter_process import ExporterProcess, run_exporter
from tests.integration.cli.test_cli_demo import Demo
from tests.integration.processing.processor_support import event_body, unique_queue_name
from tests.polling import scaled, wait_until
from tests.servers import (
    STARTUP_TIMEOUT_SECONDS,
    MotoServer,
    RedisServer,
    free_port,
    require_binary,
)
from tests.sqs_messages import send, sqs_client


def run_command(
    command: str, env: dict[str, str], sqs: MotoServer | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `exporter <command>` (words split at spaces: `dlq peek`) to its end (it must end by
    itself) on free ports; with `sqs`, on a new queue of that server, which the processor
    creates (it finds SQS before Redis)."""
    queue = (
        {
            "AWS_ENDPOINT_URL": sqs.url,
            "SQS_QUEUE_NAME": unique_queue_name(),
            "EXPORTER_CREATE_QUEUES": "true",
        }
        if sqs is not None
        else {}
    )
    return run_exporter(
        command.split(),
        {
            "EXPORTER_API_PORT": "0",
            "EXPORTER_METRICS_PORT": "0",
            "EXPORTER_LOG_FORMAT": "json",
            **queue,
            **env,
        },
    )


def one_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The one line `exporter <command>` ended with on stderr; no traceback anywhere."""
    assert "Traceback" not in result.stderr, result.stderr
    name = command.split(maxsplit=1)[0]
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"exporter {name}:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "setting", "served"),
    [
        ("api", "api_port", "the stats API"),
        ("processor", "metrics_port", "the processor's /metrics"),
    ],
)
def test_a_taken_port_ends_api_and_processor_with_the_same_line(
    command: str, setting: str, served: str
) -> None:
    """A port another process holds, as the API's or the processor's metrics port: exit 1 with
    the one line the demo gives too (exporter.cli.exits), naming the port and the flag that
    changes it, and nothing else on stderr; neither reaches for Redis or SQS first."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    variable = f"EXPORTER_{setting.upper()}"
    try:
        result = run_command(
            command,
            {
                variable: str(port),
                "EXPORTER_API_HOST": "127.0.0.1",
                "EXPORTER_METRICS_HOST": "127.0.0.1",
                "EXPORTER_LOG_FORMAT": "text",
            },
        )
    finally:
        held.close()
    assert result.returncode == 1, result.stderr
    flag = "--" + setting.replace("_", "-")
    assert result.stderr.splitlines() == [
        f"exporter {command}: port {port} for {served} is taken (Address already in use); "
        f"choose another with {flag} ({variable})"
    ]


@pytest.mark.parametrize("command", ["processor", "api"])
def test_a_user_part_with_a_stray_at_sign_is_refused_at_start(command: str) -> None:
    """REDIS_URL='redis://:bad@@host' (an '@' not percent-encoded): exit 2 at once with one line
    naming REDIS_URL and the fix, the password hidden; nothing looks up 'host'."""
    result = run_command(command, {"REDIS_URL": "redis://:bad-secret@@host"})
    assert result.returncode == 2, result.stderr
    line = one_line(result, command)
    assert "REDIS_URL is not usable" in line
    assert "%40" in line
    assert "bad-secret" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["processor", "api"])
def test_a_database_that_does_not_exist_exits_2_at_start(
    command: str, redis_server: RedisServer, moto_server: MotoServer
) -> None:
    """REDIS_URL naming database 99 of a Redis that has 16: a refusal found at start-up ends the
    command with exit 2 and one line saying what to change (it used to run on, not ready)."""
    url = redis_server.url.rsplit("/", 1)[0] + "/99"
    result = run_command(command, {"REDIS_URL": url}, moto_server)
    assert result.returncode == 2, result.stderr
    line = one_line(result, command)
    assert f"Redis at {url} refuses this configuration" in line
    assert "the database number in REDIS_URL does not exist" in line


def test_a_wrong_password_and_a_replica_exit_2_at_start(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    """A refused password, and (for the processor, which writes) a REDIS_URL naming a read-only
    replica: exit 2 with one line naming the refusal, never the password."""
    server = RedisServer(tmp_path / "redis")
    replica = RedisServer(tmp_path / "replica")
    server.start()
    try:
        replica.start()
        with redis.Redis(port=replica.port) as client:
            client.replicaof("127.0.0.1", str(server.port))
        with redis.Redis(port=server.port) as client:
            client.config_set("requirepass", "the-right-one")
        wrong = f"redis://:not-this-one@127.0.0.1:{server.port}/0"
        for command in ("processor", "api"):
            result = run_command(command, {"REDIS_URL": wrong}, moto_server)
            assert result.returncode == 2, result.stderr
            line = one_line(result, command)
            assert "Redis refused the user or password in REDIS_URL" in line
            assert "not-this-one" not in result.stderr
        result = run_command("processor", {"REDIS_URL": replica.url}, moto_server)
        assert result.returncode == 2, result.stderr
        assert "READONLY" in one_line(result, "processor")
    finally:
        replica.kill()
        server.kill()


@pytest.mark.parametrize("command", ["processor", "api"])
def test_a_redis_never_reached_exits_1_after_the_start_up_deadline(
    command: str, moto_server: MotoServer
) -> None:
    """A closed port (a typo'd REDIS_URL) is not an outage for ever: after
    EXPORTER_STARTUP_TIMEOUT_SECONDS the command exits 1 with one line naming the store, the
    setting and what to check."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {"REDIS_URL": url, "EXPORTER_STARTUP_TIMEOUT_SECONDS": "2"}
    result = run_command(command, env, moto_server)
    assert result.returncode == 1, result.stderr
    line = one_line(result, command)
    assert f"Redis at {url} did not answer within 2 s of start-up" in line
    assert "EXPORTER_STARTUP_TIMEOUT_SECONDS" in line
    assert "check the host and port in REDIS_URL" in line


class Processor(ExporterProcess):
    """An `exporter processor` subprocess on a queue of its own; stopped on every path."""

    def __init__(self, redis_url: str, moto: MotoServer, **env: str) -> None:
        self.port = free_port()
        self.queue = unique_queue_name()
        super().__init__(
            ["processor"],
            {
                "REDIS_URL": redis_url,
                "AWS_ENDPOINT_URL": moto.url,
                "SQS_QUEUE_NAME": self.queue,
                "EXPORTER_CREATE_QUEUES": "true",  # the test's queue is new
                "SQS_WAIT_TIME_SECONDS": "1",
                "EXPORTER_METRICS_HOST": "127.0.0.1",
                "EXPORTER_METRICS_PORT": str(self.port),
                "EXPORTER_SHUTDOWN_TIMEOUT_SECONDS": "5",
                "EXPORTER_LOG_FORMAT": "json",
                **env,
            },
        )

    def status(self, path: str) -> int:
        """The HTTP status of GET `path` on the metrics port; 0 while nothing answers."""
        return self.answer(path)[0]

    def answer(self, path: str) -> tuple[int, str]:
        """Status and body of GET `path` on the metrics port."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=scaled(10)) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""


@pytest.fixture(name="silent_port")
def fixture_silent_port() -> Iterator[socket.socket]:
    """A listening socket that never accepts nor answers: connections open, replies never come
    (a Redis host that hangs rather than refuses)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener
    listener.close()


def test_sigterm_while_waiting_for_redis_at_start_exits_0(
    moto_server: MotoServer, silent_port: socket.socket
) -> None:
    """A processor waiting at start-up for a Redis that hangs: SIGTERM ends it at once, exit 0,
    no traceback."""
    port = silent_port.getsockname()[1]
    processor = Processor(
        f"redis://127.0.0.1:{port}/0", moto_server, EXPORTER_STARTUP_TIMEOUT_SECONDS="0"
    )
    try:
        wait_until(lambda: processor.status("/health") == 200, timeout=STARTUP_TIMEOUT_SECONDS)
        assert processor.status("/ready") == 503
        code, err = processor.finish()
    finally:
        processor.end()
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("after_the_kill", ["nothing answers", "a host that hangs"])
def test_sigterm_while_paused_exits_0_with_no_traceback(
    moto_server: MotoServer, tmp_path: Path, after_the_kill: str
) -> None:
    """Redis dies under a running processor, which pauses; then either nothing answers on its
    port, or something that accepts and never replies (the probe hangs mid-call). SIGTERM in
    either state: exit 0, no traceback, within the shutdown deadline."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    hanging: socket.socket | None = None
    processor = Processor(server.url, moto_server)
    try:
        wait_until(lambda: processor.status("/ready") == 200, timeout=STARTUP_TIMEOUT_SECONDS)
        server.kill()
        sqs = sqs_client(moto_server.url)
        queue = sqs.get_queue_url(QueueName=processor.queue)["QueueUrl"]
        send(sqs, queue, [event_body("view", "1")])  # a batch that meets the dead store
        if after_the_kill == "a host that hangs":
            hanging = socket.socket()
            hanging.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            hanging.bind(("127.0.0.1", server.port))
            hanging.listen(64)
        # Paused; with a host that hangs, /ready's own probe gets no answer in time either.
        symptoms = ["paused: "] + (["no answer within"] if hanging is not None else [])
        wait_until(
            lambda: all(symptom in processor.answer("/ready")[1] for symptom in symptoms),
            timeout=60,
            message=f"/ready saying {symptoms}",
        )
        code, err = processor.finish()
    finally:
        processor.end()
        if hanging is not None:
            hanging.close()
        server.kill()
    assert code == 0, err
    assert "Traceback" not in err


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in children.read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_sigkilled_demo_leaves_no_redis_server_behind() -> None:
    """The demo's private redis-server dies with the demo, even when the demo is SIGKILLed and
    none of its own cleanup runs."""
    require_binary("redis-server")
    demo = Demo(None, prefix=None, rate="0")
    try:
        wait_until(
            lambda: any(
                "redis-server" in Path(f"/proc/{child}/cmdline").read_text()
                for child in _children(demo.pid)
            ),
            timeout=STARTUP_TIMEOUT_SECONDS,
            message="the private redis-server",
        )
        wait_until(lambda: demo.get("/health"), timeout=STARTUP_TIMEOUT_SECONDS, message="demo")
        (server,) = [
            child
            for child in _children(demo.pid)
            if "redis-server" in Path(f"/proc/{child}/cmdline").read_text()
        ]
        # redis-server renames itself by its address once it runs.
        cmdline = Path(f"/proc/{server}/cmdline").read_bytes()
        port = re.search(rb"(?:--port\x00|127\.0\.0\.1:)(\d+)", cmdline)
        assert port is not None
        demo.kill()
        wait_until(lambda: not _alive(server), timeout=30, message="the redis-server to end")
    finally:
        demo.end()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(port.group(1)))) != 0
