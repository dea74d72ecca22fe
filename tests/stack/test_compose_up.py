"""The compose stack brought up for real: `docker compose up --build` (or podman-compose's).

One stack per module (tests/stack/conftest.py); the tests run in file order and later ones rely on
what earlier ones did (the third processor, the stopped producer), each saying so.
"""

from __future__ import annotations

import json
import math
import subprocess
from decimal import Decimal
from typing import Any

import pytest

from tests.stack.conftest import Stack
from tests.stack.engine import seconds
from tests.stack.files import EXPORTER_IMAGE, alert_rules, compose_services
from tests.stack.probes import Totals, instant, prometheus, stats, targets, wait_for

# Bring-up (image build included) happens in the first test's setup.
pytestmark = pytest.mark.timeout(int(seconds(1800)), method="signal")

EXPORTER_UID = 10001
# Alerts that the demo traffic makes pending on purpose; none may fire (docs/stack.md).
EXPECTED_PENDING = {
    # The producer spoils 2% of its events so that the dead-letter views have something to show.
    "ExporterDeadLetterQueueNotEmpty",
    "ExporterDeadLetterQueueGrowing",
    # The producer back-dates a tenth of its events by an hour, so the lag's 99th percentile is
    # about an hour (docs/stack.md#what-the-stack-test-found).
    "ExporterEventLagHigh",
}
# Events the test itself sends while it kills a processor.
KILL_TEST_EVENTS = 1500


def _exec(stack: Stack, service: str, *command: str, timeout: float = 60) -> str:
    container = stack.engine.containers(service)[0]
    result = stack.engine.exec(container, *command, timeout=seconds(timeout))
    assert result.returncode == 0, (
        f"`{' '.join(command)}` in {container} exited with {result.returncode}:\n"
        f"{(result.stdout + result.stderr)[-3000:]}"
    )
    return result.stdout


def _queue_depth(stack: Stack) -> int:
    """Messages in the main queue, visible or in flight, asked of SQS from inside the stack."""
    script = (
        "import boto3, os; sqs = boto3.client('sqs');"
        "url = sqs.get_queue_url(QueueName=os.environ['SQS_QUEUE_NAME'])['QueueUrl'];"
        "a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes'];"
        "print(int(a['ApproximateNumberOfMessages'])"
        " + int(a['ApproximateNumberOfMessagesNotVisible']))"
    )
    return int(_exec(stack, "api", "python", "-c", script))


def _stop_producer_and_drain(stack: Stack) -> Totals:
    """Stop the compose producer, wait until the queue is empty and /stats still; its totals."""
    stack.engine.compose("stop", "producer", timeout=seconds(120))
    previous: list[Totals] = []

    def drained() -> tuple[bool, str]:
        depth = _queue_depth(stack)
        now = stats()
        done = depth == 0 and previous[-1:] == [now]
        previous.append(now)
        return done, f"{depth} messages in the queue, /stats {now}"

    wait_for("the queue to drain after the producer stopped", drained, 240)
    return previous[-1]


def _processor_targets() -> list[dict[str, Any]]:
    return [t for t in targets() if t["labels"]["job"] == "processor"]


def test_the_images_processes_run_as_a_non_root_user(stack: Stack) -> None:
    """Every process in the exporter's containers runs as the image's user 10001, never root."""
    script = (
        "import glob\n"
        "for path in glob.glob('/proc/[0-9]*/status'):\n"
        "    try:\n"
        "        lines = open(path).read().splitlines()\n"
        "    except OSError:\n"
        "        continue\n"
        "    fields = dict(line.split(':', 1) for line in lines if ':' in line)\n"
        "    print(fields['Name'].strip(), fields['Uid'].split()[1])\n"
    )
    for service in ("processor", "api", "producer"):
        for container in stack.engine.containers(service):
            output = _exec(stack, service, "python", "-c", script)
            processes = [line.rsplit(" ", 1) for line in output.splitlines()]
            assert processes, f"no process seen in {container}"
            rooted = [name for name, uid in processes if int(uid) != EXPORTER_UID]
            assert not rooted, f"{container}: not running as {EXPORTER_UID}: {processes}"


def test_every_healthcheck_passes_when_run_by_hand(stack: Stack) -> None:
    """Each container's healthcheck command, exec'd in it, exits 0 (podman 4.3 never runs it)."""
    declared = {
        name: service["healthcheck"]
        for name, service in compose_services().items()
        if name in stack.services and not service.get("healthcheck", {}).get("disable")
    }
    assert set(declared) >= {"sqs", "redis", "processor", "api", "prometheus"}
    for service in declared:
        for container in stack.engine.containers(service):
            test = (stack.engine.inspect(container)["Config"].get("Healthcheck") or {}).get("Test")
            assert test, f"{container} has no healthcheck, though the compose file declares one"
            kind, *command = test
            argv = ["sh", "-c", command[0]] if kind == "CMD-SHELL" else command
            assert kind in ("CMD", "CMD-SHELL"), f"{container}: healthcheck {test}"

            def passes(container: str = container, argv: list[str] = argv) -> tuple[bool, str]:
                result = stack.engine.exec(container, *argv, timeout=seconds(20))
                return result.returncode == 0, f"exit {result.returncode}: {result.stdout}"

            wait_for(f"{container}'s healthcheck {argv} to pass", passes, 90)


def test_the_image_declares_the_healthcheck_compose_runs(stack: Stack) -> None:
    """The built image carries the Dockerfile's HEALTHCHECK, the command compose also declares."""
    image = json.loads(stack.engine.run("image", "inspect", EXPORTER_IMAGE).stdout)[0]
    # Docker keeps it in Config, podman at the top level.
    declared = image.get("Healthcheck") or (image.get("Config") or {}).get("Healthcheck") or {}
    expected = compose_services()["api"]["healthcheck"]["test"]
    assert declared.get("Test") == expected, f"{EXPORTER_IMAGE} healthcheck: {declared}"


def test_stats_fill_from_the_producers_traffic(stack: Stack) -> None:
    """/stats counts all three synthetic event types within a minute or two of `up`."""

    def filled() -> tuple[bool, Totals]:
        totals = stats()
        return len(totals) == 3 and all(count > 0 for count, _ in totals.values()), totals

    totals = wait_for("/stats to count events of three types", filled, 120)
    assert set(totals) == {"pageview", "added-to-basket", "purchase"}


def test_prometheus_finds_the_api_and_every_processor_up(stack: Stack) -> None:
    """Prometheus discovers the API and the compose file's processor replicas by DNS: all `up`."""
    replicas = compose_services()["processor"]["deploy"]["replicas"]

    def all_up() -> tuple[bool, list[tuple[str, str, str]]]:
        seen = [(t["labels"]["job"], t["scrapeUrl"], t["health"]) for t in targets()]
        jobs = [job for job, _, _ in seen]
        done = (
            jobs.count("processor") == replicas
            and jobs.count("api") == 1
            and all(health == "up" for _, _, health in seen)
        )
        return done, seen

    wait_for(f"Prometheus to scrape the API and {replicas} processors, all up", all_up, 120)


def test_alert_rules_are_loaded_and_none_fires(stack: Stack) -> None:
    """Prometheus evaluates every rule of alerts.yml without error; no alert fires."""
    expected = {rule["alert"] for rule in alert_rules()}

    def evaluated() -> tuple[bool, dict[str, str]]:
        rules = {
            rule["name"]: rule
            for group in prometheus("rules", type="alert")["groups"]
            for rule in group["rules"]
        }
        health = {name: rule["health"] for name, rule in rules.items()}
        done = set(rules) == expected and all(h == "ok" for h in health.values())
        done = done and all(not r["lastEvaluation"].startswith("0001") for r in rules.values())
        return done, health

    wait_for(f"Prometheus to load and evaluate the {len(expected)} alert rules", evaluated, 60)

    def quiet() -> tuple[bool, dict[str, str]]:
        states = {a["labels"]["alertname"]: a["state"] for a in prometheus("alerts")["alerts"]}
        unexpected = {
            name: state
            for name, state in states.items()
            if state == "firing" or name not in EXPECTED_PENDING
        }
        return not unexpected, states

    wait_for("no alert firing, and none pending but the demo traffic's", quiet, 60)


def test_invalid_events_wait_in_the_dead_letter_queue_with_their_reason(stack: Stack) -> None:
    """`exporter dlq peek` in the stack shows the producer's spoilt events, each with a reason."""

    def peek() -> tuple[bool, list[dict[str, Any]]]:
        output = _exec(stack, "api", "exporter", "dlq", "peek", "--limit", "20")
        messages = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        return bool(messages), messages

    messages = wait_for("dead-lettered events to appear", peek, 120)
    for message in messages:
        assert message["reason"], f"dead letter without a reason: {message}"
        assert message["detail"], f"dead letter without a detail: {message}"
        assert message["body"], f"dead letter without its body: {message}"


def test_scaling_to_three_processors_is_seen_by_prometheus(stack: Stack) -> None:
    """`up --scale processor=3` starts a third processor, and Prometheus scrapes all three."""
    stack.up("processor", extra=("--scale", "processor=3"))
    running = stack.engine.containers("processor")
    assert len(running) == 3, f"after --scale processor=3, running: {running}"

    def three_up() -> tuple[bool, list[tuple[str, str]]]:
        seen = [(t["scrapeUrl"], t["health"]) for t in _processor_targets()]
        return len(seen) == 3 and all(health == "up" for _, health in seen), seen

    wait_for("Prometheus to scrape three processors, all up", three_up, 120)


def test_killing_a_processor_while_traffic_flows_leaves_the_totals_exact(stack: Stack) -> None:
    """A processor SIGKILLed mid-traffic: /stats ends exactly at before + what the producer sent.

    The compose producer is stopped first (so nothing else sends); the test's own producer sends a
    known number of events with ids and prints exactly what SQS accepted.
    """
    before = _stop_producer_and_drain(stack)
    sent_before = sum(count for count, _ in before.values())
    api = stack.engine.containers("api")[0]
    command = [
        stack.engine.name, "exec", api, "exporter", "produce", "--count", str(KILL_TEST_EVENTS),
        "--rate", "75", "--malformed-ratio", "0.05", "--with-ids", "--summary-json",
        "--log-level", "WARNING",
    ]  # fmt: skip
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(
            "the test's events to be counted before the kill",
            lambda: (
                sum(c for c, _ in stats().values()) >= sent_before + 200,
                stats(),
            ),
            120,
        )
        victim = stack.engine.containers("processor")[-1]
        assert producer.poll() is None, "the test's producer finished before the kill: send more"
        stack.engine.run("kill", victim)  # SIGKILL: no graceful shutdown, batches in flight
        out, err = producer.communicate(timeout=seconds(180))
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    assert producer.returncode == 0, f"the test's producer failed:\n{err[-3000:]}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["failed"] == 0, f"SQS refused events: {summary}"
    assert summary["sent"] == KILL_TEST_EVENTS, summary

    expected = dict(before)
    for name, sent in summary["types"].items():
        count, total = expected.get(name, (0, Decimal(0)))
        expected[name] = (count + sent["count"], total + Decimal(sent["sum"]))
    after = _stop_producer_and_drain(stack)
    assert after == expected, (
        f"totals after killing {victim}: {after}, expected before {before} + sent {summary}"
    )


def test_stats_equal_what_prometheus_reads_from_the_api(stack: Stack) -> None:
    """With traffic stopped, Prometheus's last scrape of the API's /metrics equals /stats."""
    totals = _stop_producer_and_drain(stack)

    def agree() -> tuple[bool, str]:
        counts = instant('exporter_stats_events_total{job="api"}')
        sums = instant('exporter_stats_value_sum{job="api"}')
        done = set(counts) == set(totals) and all(
            counts[name] == count and math.isclose(sums[name], float(total), rel_tol=1e-12)
            for name, (count, total) in totals.items()
        )
        return done, f"Prometheus counts {counts}, sums {sums}; /stats {totals}"

    wait_for("Prometheus's totals to equal /stats", agree, 90)


def test_down_then_up_keeps_the_totals(stack: Stack) -> None:
    """`down` (volumes kept) and `up`: Redis's append-only file brings back the exact totals."""
    before = _stop_producer_and_drain(stack)
    stack.engine.down(volumes=False, timeout=seconds(180))
    # Only Redis and the API first, so nothing can count anything before the comparison.
    stack.up("redis", "api")
    after = wait_for("/stats to answer after up", lambda: (True, stats()), 120)
    assert after == before, f"totals after down and up: {after}, before: {before}"
    stack.up()
    wait_for(
        "/stats to grow again once the whole stack is back",
        lambda: (sum(c for c, _ in stats().values()) > sum(c for c, _ in before.values()), stats()),
        180,
    )


def test_every_service_of_the_compose_file_came_up(stack: Stack) -> None:
    """Every service of the compose file ran; those this machine cannot run are named."""
    if stack.left_out:
        reasons = "; ".join(f"{name}: {why}" for name, why in stack.left_out.items())
        pytest.skip(f"left out of the stack test: {reasons}")
