"""A Redis in trouble under real processes (decision 0017): out of memory for longer than SQS's
redrive takes, emptied under running processors and the API, and hanging: totals stay exact,
no valid event reaches the dead-letter queue, losses are said, probes answer in time."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.faults.harness import (
    Exporter,
    Stack,
    assert_dead_lettered,
    assert_exact,
    drain_dead_letters_in_full,
    iter_lines,
    queue_urls,
    send_in_background,
    settle,
    wait_processed,
)
from tests.faults.traffic import Traffic, make_traffic
from tests.polling import scaled, wait_until
from tests.servers import RedisServer
from tests.sqs_messages import sqs_client
from tests.store_support import DEFAULT_KEYS

# Small, so that a refusal of REFUSAL_SECONDS outlasts SQS's own redrive: a message received
# MAX_RECEIVE_COUNT times, VISIBILITY_SECONDS apart, would be moved to the dead-letter queue.
# The harness's 20 s: at 5 s and 10 s, a loaded machine's moto (slow with the backlog a refusal
# leaves) made batches outlast their visibility after the resume, which is not this test's point.
VISIBILITY_SECONDS = 20
MAX_RECEIVE_COUNT = 2
REFUSAL_SECONDS = VISIBILITY_SECONDS * MAX_RECEIVE_COUNT + 6
# The probes' timeoutSeconds in deploy/kubernetes and docker-compose.yaml is 3 s.
PROBE_ANSWER_LIMIT_SECONDS = 2.0


def _answer(port: int, path: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=scaled(10)) as reply:
            return int(reply.status), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=scaled(5)) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def _naming_memory(port: int) -> bool:
    status, body = _answer(port, "/ready")
    redis_problem = body.get("failing", {}).get("redis", "")
    return status == 503 and "of maxmemory" in redis_problem


def _lines(process: Exporter, words: str) -> list[dict[str, Any]]:
    return [line for line in iter_lines(process.log) if words in str(line.get("message", ""))]


def test_out_of_memory_longer_than_the_redrive_dead_letters_no_valid_event(
    stack: Stack, fresh_redis_server: RedisServer
) -> None:
    """maxmemory (noeviction) reached mid-stream and held for longer than visibility timeout x
    max receive count, then lifted: both processors pause without flapping (/ready names used
    against maxmemory on every poll, no resume until the lift), totals are exact, and the
    dead-letter queue holds only malformed bodies."""
    stack.extra_env["EXPORTER_VISIBILITY_TIMEOUT_SECONDS"] = str(VISIBILITY_SECONDS)
    stack.extra_env["EXPORTER_MAX_RECEIVE_COUNT"] = str(MAX_RECEIVE_COUNT)
    traffic = make_traffic(800, seed=31, malformed_ratio=0.02)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    admin = redis.Redis(port=fresh_redis_server.port)
    try:
        sender = send_in_background(stack, traffic)
        wait_processed(stack, traffic.valid_events // 4)
        # The limit just above what Redis uses now: the stream reaches it within a few batches,
        # and from then on memory hovers at the edge, where a small write may pass again.
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(used + 16 * 1024))
        ports = [p.port for p in stack.processors]
        wait_until(
            lambda: all(_naming_memory(port) for port in ports),
            timeout=60,
            interval=0.1,
            message="both processors' /ready naming memory",
        )
        refused_at = time.monotonic()
        while time.monotonic() - refused_at < REFUSAL_SECONDS:
            for port in ports:
                assert _naming_memory(port), _answer(port, "/ready")
            time.sleep(0.25)  # the pace of the polling, not a wait for a condition
        for processor in stack.processors:
            assert _lines(processor, "Redis is back") == [], processor.tail()
        admin.config_set("maxmemory", str(used * 10))
        sender.join(timeout=scaled(120))
        assert_exact(traffic, settle(stack, traffic))
    finally:
        admin.config_set("maxmemory", "0")
        admin.close()
    _, dlq = queue_urls(stack)
    found = drain_dead_letters_in_full(sqs_client(stack.sqs_endpoint), dlq)
    malformed = {body for body, _ in traffic.malformed}
    assert [letter.body for letter in found if letter.body not in malformed] == []
    assert_dead_lettered(traffic, found, exactly_once=False)
    for processor in stack.processors:
        assert len(_lines(processor, "Redis is back")) <= 1, processor.tail()
        assert _lines(processor, "OOM, Redis is out of memory"), processor.tail()


def _counting_since(api_port: int) -> tuple[datetime | None, str | None]:
    url = f"http://127.0.0.1:{api_port}/stats"
    with urllib.request.urlopen(url, timeout=scaled(5)) as reply:
        rows: list[dict[str, Any]] = json.loads(reply.read())
        header = reply.headers.get("Counting-Since")
    values = {row["counting_since"] for row in rows}
    assert len(values) <= 1, values
    (value,) = values or {None}
    moment = None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment, header


def _loss_is_said_and_counted_again_from_zero(
    stack: Stack, empty: Traffic, emptied_at: datetime
) -> None:
    """The events sent after Redis was emptied are the totals, exactly; the API and at least one
    processor logged the loss as an ERROR and counted it; /stats counts since after the loss."""
    sender = send_in_background(stack, empty)
    sender.join(timeout=scaled(120))
    assert_exact(empty, settle(stack, empty))
    assert stack.api is not None
    api = stack.api
    wait_until(
        lambda: _lines(api, "Redis lost the totals of"), timeout=30, message="the API's ERROR"
    )
    (said,) = _lines(api, "Redis lost the totals of")
    assert said["level"] == "error"
    assert DEFAULT_KEYS.legacy_totals in said["message"]
    assert "counted since" in said["message"]
    assert _metric(api.port, "exporter_store_totals_lost_total") == 1
    writers = [p for p in stack.processors if _lines(p, "Redis lost the totals of")]
    assert writers, [p.tail() for p in stack.processors]
    assert all(_metric(p.port, "exporter_store_totals_lost_total") == 1 for p in writers)
    since, header = _counting_since(api.port)
    assert since is not None
    assert since >= emptied_at.replace(microsecond=0)
    assert header == since.isoformat().replace("+00:00", "Z")


def test_flushall_under_running_processors_and_the_api_is_said(
    stack: Stack, fresh_redis_server: RedisServer
) -> None:
    """FLUSHALL while two processors and the API run: an ERROR naming the shard and since when,
    exporter_store_totals_lost_total, /stats counting since the loss, and exact totals of what
    came after, counted from zero."""
    first, after = make_traffic(400, seed=32), make_traffic(400, seed=33)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    send_in_background(stack, first).join(timeout=scaled(120))
    assert_exact(first, settle(stack, first))
    assert stack.api is not None
    before, _ = _counting_since(stack.api.port)
    assert before is not None
    emptied_at = datetime.now(UTC)
    with redis.Redis(port=fresh_redis_server.port) as admin:
        admin.flushall()
    _loss_is_said_and_counted_again_from_zero(stack, after, emptied_at)


def test_redis_restarted_empty_is_said(stack: Stack, fresh_redis_server: RedisServer) -> None:
    """Redis restarted without its data (a cache node replaced, no persistence): the same as a
    FLUSHALL once it answers again; no process exited."""
    first, after = make_traffic(400, seed=34), make_traffic(400, seed=35)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    send_in_background(stack, first).join(timeout=scaled(120))
    assert_exact(first, settle(stack, first))
    fresh_redis_server.kill()
    _forget_data(fresh_redis_server.workdir)
    emptied_at = datetime.now(UTC)
    fresh_redis_server.start()
    _loss_is_said_and_counted_again_from_zero(stack, after, emptied_at)
    for process in [*stack.processors, stack.api]:
        assert process is not None
        assert process.process is not None
        assert process.process.poll() is None, process.tail()


def _forget_data(workdir: Path) -> None:
    """Remove the append-only files a restart would load."""
    for path in sorted(workdir.rglob("*"), reverse=True):
        if path.name == "redis.log":
            continue
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()


def test_probes_answer_their_503_in_time_while_redis_hangs(
    stack: Stack, fresh_redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis stopped (SIGSTOP: connections open, nothing answers): the processor's /ready and the
    API's /health answer 503 with the reason, and the processor's /health 200, each well within
    the probes' 3 s timeout; after SIGCONT the processor is ready again."""
    stack.start_api()
    processor = stack.add_processor()
    assert stack.api is not None
    assert fresh_redis_server.process is not None
    pid = fresh_redis_server.process.pid
    limit = scaled(PROBE_ANSWER_LIMIT_SECONDS)
    times: list[str] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        for port, path, status, reason in (
            (processor.port, "/ready", 503, ("failing", "redis")),
            (stack.api.port, "/health", 503, ("detail",)),
            (processor.port, "/health", 200, ("status",)),
        ):
            started = time.monotonic()
            answered, body = _answer(port, path)
            elapsed = time.monotonic() - started
            assert answered == status, (path, body)
            found: Any = body
            for key in reason:
                found = found[key]
            assert found, (path, body)
            assert elapsed < limit, f"{path} on {port} answered after {elapsed:.2f} s"
            who = "processor" if port == processor.port else "API"
            times.append(f"{who} {path} {elapsed:.2f} s")
            if status == 503:
                assert "1.5" in json.dumps(body), body  # the reason: no answer in time
    finally:
        os.kill(pid, signal.SIGCONT)
    with capsys.disabled():
        print(f"\n  Redis stopped: answered in {', '.join(times)}", end="")
    wait_until(
        lambda: _answer(processor.port, "/ready")[0] == 200, timeout=60, message="ready again"
    )
