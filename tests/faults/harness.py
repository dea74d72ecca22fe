"""Real exporter processes for the fault suite, and the checks that nothing was lost or doubled."""

from __future__ import annotations

import collections
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from types_boto3_sqs import SQSClient

from tests.exporter_process import ExporterProcess, exporter_env
from tests.faults.traffic import Traffic
from tests.integration.processing.processor_support import queue_depth
from tests.polling import wait_until
from tests.servers import AWS_TEST_ENV, free_port
from tests.sqs_messages import drain, send, sqs_client


@dataclass
class Exporter:
    """One `exporter <role>` of the stack, its environment and log file, which survive its
    kills and restarts."""

    role: str
    env: dict[str, str]
    log: Path
    port: int
    process: ExporterProcess | None = None
    restarts: int = 0

    def start(self) -> None:
        """Start the process and wait until it is ready (a processor has found its queues)."""
        self.process = ExporterProcess([self.role], self.env, log=self.log, inherit=False)
        self.process.wait_ready(self._ready, message=f"{self.role} ready on {self.port}")

    def _ready(self) -> bool:
        path = "/ready" if self.role == "processor" else "/health"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=1) as reply:
            return bool(reply.status == 200)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process is not None:
            self.process.kill()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and the exit code (within `timeout` seconds, scaled)."""
        assert self.process is not None
        return self.process.stop(signal.SIGTERM, timeout=timeout)

    def restart(self) -> None:
        """Start again after a kill."""
        self.restarts += 1
        self.start()

    def tail(self, lines: int = 30) -> str:
        """The end of the process's log, for failure messages."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """Redis, an SQS endpoint, a queue of the test's own, and exporter processes on them."""

    redis_url: str
    sqs_endpoint: str
    workdir: Path
    queue: str
    processors: list[Exporter] = field(default_factory=list)
    api: Exporter | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, port: int, endpoint: str | None = None) -> dict[str, str]:
        """The environment of one exporter process."""
        return {
            **exporter_env(fresh_settings=True),
            **AWS_TEST_ENV,
            "REDIS_URL": self.redis_url,
            "AWS_ENDPOINT_URL": endpoint or self.sqs_endpoint,
            "SQS_QUEUE_NAME": self.queue,
            "EXPORTER_CREATE_QUEUES": "true",  # the suite's queue is new; processors create it
            "SQS_WAIT_TIME_SECONDS": "1",
            # Long enough that a stalled machine does not make work reappear; tests that kill
            # processes shorten it so that the killed work comes back quickly.
            "EXPORTER_VISIBILITY_TIMEOUT_SECONDS": "20",
            # Kills make messages come back; SQS's own redrive must not move valid ones away.
            "EXPORTER_MAX_RECEIVE_COUNT": "100",
            "EXPORTER_QUEUE_DEPTH_INTERVAL_SECONDS": "1",
            "EXPORTER_METRICS_HOST": "127.0.0.1",
            "EXPORTER_METRICS_PORT": str(port),
            "EXPORTER_API_HOST": "127.0.0.1",
            "EXPORTER_API_PORT": str(port),
            "EXPORTER_ADMIN_TOKEN": "fault-suite-token",
            "EXPORTER_LOG_FORMAT": "json",
            "EXPORTER_LOG_LEVEL": "INFO",
            **self.extra_env,
        }

    def add_processor(self, endpoint: str | None = None) -> Exporter:
        """Start one more processor replica."""
        port = free_port()
        index = len(self.processors)
        proc = Exporter(
            "processor", self.env(port, endpoint), self.workdir / f"processor-{index}.log", port
        )
        proc.start()
        self.processors.append(proc)
        return proc

    def start_api(self) -> Exporter:
        """Start the stats API."""
        port = free_port()
        self.api = Exporter("api", self.env(port), self.workdir / "api.log", port)
        self.api.start()
        return self.api

    def stop_all(self) -> None:
        """Kill whatever still runs."""
        for proc in [*self.processors, *([self.api] if self.api else [])]:
            proc.kill()


def stats(api_port: int) -> dict[str, tuple[int, Decimal]]:
    """GET /stats as {type: (count, sum)}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/stats", timeout=5) as reply:
        rows: list[dict[str, Any]] = json.loads(reply.read())
    return {row["type"]: (int(row["count"]), Decimal(str(row["sum"]))) for row in rows}


def queue_empty(client: SQSClient, queue_url: str) -> bool:
    """No message visible, in flight or delayed."""
    return queue_depth(client, queue_url) == 0


@dataclass(frozen=True)
class DeadLetterSeen:
    """One message found in the dead-letter queue."""

    body: str
    reason: str
    original_message_id: str


def drain_dead_letters(client: SQSClient, dlq_url: str) -> list[tuple[str, str]]:
    """Every (body, reason) in the dead-letter queue, consuming them."""
    return [(seen.body, seen.reason) for seen in drain_dead_letters_in_full(client, dlq_url)]


def drain_dead_letters_in_full(client: SQSClient, dlq_url: str) -> list[DeadLetterSeen]:
    """Every message in the dead-letter queue with its attributes, consuming them."""
    return [
        DeadLetterSeen(
            letter.body,
            letter.attributes.get("reason", ""),
            letter.attributes.get("original_message_id", ""),
        )
        for letter in drain(client, dlq_url)
    ]


def assert_exact(traffic: Traffic, observed: Mapping[str, tuple[int, Decimal]]) -> None:
    """The totals equal the expected totals to the last millionth."""
    assert observed == traffic.expected, _diff(traffic.expected, observed)


def assert_dead_lettered(
    traffic: Traffic, letters: list[DeadLetterSeen], *, exactly_once: bool
) -> None:
    """Every malformed body is in the dead-letter queue with its reason, at least once. With
    `exactly_once`, exactly one dead letter per malformed SQS message and nothing else: copies
    of one message (SQS delivers at least once, so a message can reach two pollers) carry the
    same `original_message_id`, which is how an operator, and `exporter dlq redrive`, tell them
    apart from distinct events."""
    sent = collections.Counter(traffic.malformed)
    got = collections.Counter((letter.body, letter.reason) for letter in letters)
    missing = sent - got
    assert not missing, (
        f"{sum(missing.values())} malformed bodies never reached the DLQ: {list(missing)[:3]}"
    )
    if exactly_once:
        per_message = {letter.original_message_id: letter for letter in letters}
        distinct = collections.Counter((m.body, m.reason) for m in per_message.values())
        assert distinct == sent, f"extra dead letters: {list((distinct - sent).items())[:3]}"


def _diff(
    expected: Mapping[str, tuple[int, Decimal]], observed: Mapping[str, tuple[int, Decimal]]
) -> str:
    keys = sorted(set(expected) | set(observed))
    return "; ".join(f"{k}: expected {expected.get(k)}, got {observed.get(k)}" for k in keys)


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON log lines of a process."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            yield json.loads(line)


def ready(port: int) -> bool:
    """Whether the processor on `port` answers /ready with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError:
        return False


def processed(stack: Stack) -> int:
    """Valid events counted so far, as the stack's API reports them."""
    assert stack.api is not None
    return sum(count for count, _ in stats(stack.api.port).values())


def settle(stack: Stack, traffic: Traffic, timeout: float = 180) -> dict[str, tuple[int, Decimal]]:
    """Wait until the queue is empty and the totals are complete; return them."""
    assert stack.api is not None
    client = sqs_client(stack.sqs_endpoint)
    url = client.get_queue_url(QueueName=stack.queue)["QueueUrl"]
    api_port = stack.api.port

    def done() -> bool:
        return queue_empty(client, url) and processed(stack) >= traffic.valid_events

    try:
        wait_until(done, timeout=timeout, interval=0.5, message="queue drained and totals complete")
    except TimeoutError:
        logs = "\n".join(p.tail(15) for p in stack.processors)
        raise AssertionError(
            f"not settled: {stats(api_port)} of {traffic.valid_events} valid events; "
            f"{queue_depth(client, url)} messages left in the queue (visible, in flight or "
            f"delayed)\n{logs}"
        ) from None
    return stats(api_port)


def queue_urls(stack: Stack) -> tuple[str, str]:
    """The URLs of the stack's queue and its dead-letter queue."""
    client = sqs_client(stack.sqs_endpoint)
    main = client.get_queue_url(QueueName=stack.queue)["QueueUrl"]
    dlq = client.get_queue_url(QueueName=f"{stack.queue}-dlq")["QueueUrl"]
    return main, dlq


def send_in_background(stack: Stack, traffic: Traffic) -> threading.Thread:
    """Send the traffic's bodies to the stack's queue from a thread; join it to wait."""
    main, _ = queue_urls(stack)
    sender = threading.Thread(
        target=send, args=(sqs_client(stack.sqs_endpoint), main, traffic.bodies), daemon=True
    )
    sender.start()
    return sender


def wait_processed(stack: Stack, at_least: int) -> None:
    """Wait until the API counts at least `at_least` valid events."""
    wait_until(
        lambda: processed(stack) >= at_least,
        timeout=120,
        interval=0.1,
        message=f"{at_least} events processed",
    )


# The promise of docs/reliability.md: consuming again within 10 s of the store being healthy.
RESUME_LIMIT_SECONDS = 10.0
_COUNTED = ("exporter_events_processed", "exporter_events_duplicate")


def consumed(port: int) -> float:
    """Events a processor applied or recognised as duplicates so far, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name in _COUNTED
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def _answers(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError:
        return False


def time_to_consume(stack: Stack, processors: list[Exporter], scenario: str) -> dict[str, float]:
    """Called the moment the store is healthy again: seconds until each of `processors` counts
    an event again and the API answers /stats; fails past RESUME_LIMIT_SECONDS (scaled)."""
    healthy_at = time.monotonic()
    marks = {p.port: consumed(p.port) for p in processors}
    assert stack.api is not None
    api = stack.api.port
    times: dict[str, float] = {}

    def back() -> bool:
        elapsed = time.monotonic() - healthy_at
        for index, proc in enumerate(processors):
            name = f"processor {index}"
            if name not in times and consumed(proc.port) > marks[proc.port]:
                times[name] = elapsed
        if "api" not in times and _answers(api, "/stats"):
            times["api"] = elapsed
        return len(times) == len(processors) + 1

    try:
        wait_until(
            back,
            timeout=RESUME_LIMIT_SECONDS,
            interval=0.05,
            message=f"consuming again within {RESUME_LIMIT_SECONDS:g} s of a healthy store",
        )
    except TimeoutError as exc:
        logs = "\n".join(p.tail(20) for p in processors)
        raise AssertionError(f"{scenario}: {exc}; resumed so far: {times}\n{logs}") from None
    return times
