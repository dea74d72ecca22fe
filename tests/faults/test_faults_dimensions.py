"""Dimensions and value buckets under faults (decisions 0020, 0021): processors SIGKILLed, Redis
killed and restarted from its append-only file, processors of two configurations on one queue;
per-type totals stay exact and every breakdown adds up to them."""

from __future__ import annotations

import json
import random
import urllib.request
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.harness import (
    Stack,
    assert_exact,
    ready,
    send_in_background,
    settle,
    wait_processed,
)
from tests.faults.traffic import Traffic
from tests.polling import scaled, wait_until
from tests.servers import RedisServer

COUNTRIES: list[Any] = ["NL", "DE", "FR", "BE", "PL", None, {"not": "a value"}, "bad|value"]
CHANNELS: list[Any] = ["web", "app", 7, True, "kiosk"]


def dimension_traffic(events: int, *, seed: int) -> Traffic:
    """`events` distinct valid events with `country` and `channel` fields of every kind (absent,
    rule-breaking, more values than the caps admit), a few resent as a producer retry would."""
    rng = random.Random(seed)
    traffic = Traffic()
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, Decimal] = defaultdict(Decimal)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:12]
    for i in range(events):
        kind = rng.choice(("purchase", "refund"))
        value = Decimal(rng.randint(-500, 1_500_000)) / 100
        event: dict[str, Any] = {
            "type": kind,
            "value": float(value),
            "occurred_at": "2026-11-26 10:00:00",
            "id": f"{run}-{i}",
        }
        country = rng.choice(COUNTRIES)
        if country is not None or rng.random() < 0.5:
            event["country"] = country  # None: null, else the field is left out
        event["channel"] = rng.choice(CHANNELS)
        body = json.dumps(event)
        counts[kind] += 1
        sums[kind] += value
        traffic.bodies.append(body)
        if rng.random() < 0.05:
            traffic.bodies.append(body)
    traffic.expected = {k: (counts[k], sums[k]) for k in counts}
    return traffic


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return json.loads(reply.read())


def assert_breakdowns_add_up(
    stack: Stack, traffic: Traffic, dimensions: tuple[str, ...], *, attributed: bool
) -> None:
    """Each type's values of each dimension, plus its unattributed remainder, are its exact
    totals; with `attributed` (every processor declared them) nothing is unattributed."""
    assert stack.api is not None
    for kind, (count, total) in traffic.expected.items():
        for dimension in dimensions:
            answer = _get(stack.api.port, f"/stats/{kind}?by={dimension}")
            values = answer["values"]
            rest = answer["unattributed"]
            assert sum(v["count"] for v in values) + rest["count"] == count, (kind, dimension)
            assert (
                sum(Decimal(v["sum_exact"]) for v in values) + Decimal(rest["sum_exact"]) == total
            ), (kind, dimension)
            if attributed:
                assert rest["count"] == 0, (kind, dimension, rest)


def joint_totals(api_port: int) -> dict[str, tuple[int, int]]:
    """Per type, the sum of `exporter_stats_events_total` over its series (every combination
    and the unattributed one), and the count of series labelled `__unattributed__`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found: dict[str, tuple[int, int]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "exporter_stats_events":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            kind = sample.labels["type"]
            total, unattributed = found.get(kind, (0, 0))
            outside = "__unattributed__" in sample.labels.values()
            found[kind] = (
                total + int(sample.value),
                unattributed + (int(sample.value) if outside else 0),
            )
    return found


def _dimensions_env(stack: Stack, dimensions: str, buckets: str | None = None) -> None:
    stack.extra_env["EXPORTER_DIMENSIONS"] = dimensions
    # Caps small enough that the traffic folds by values and by combinations.
    stack.extra_env["EXPORTER_MAX_DIMENSION_VALUES"] = "3"
    stack.extra_env["EXPORTER_MAX_DIMENSION_COMBINATIONS"] = "5"
    if buckets is not None:
        stack.extra_env["EXPORTER_VALUE_BUCKETS"] = buckets
    stack.extra_env["EXPORTER_VISIBILITY_TIMEOUT_SECONDS"] = "5"


@pytest.mark.parametrize("shards", [1, 4])
def test_kills_and_a_redis_restart_keep_every_breakdown_equal_to_the_totals(
    stack: Stack, fresh_redis_server: RedisServer, shards: int
) -> None:
    """3,000 events with two dimensions, two processors SIGKILLed and restarted three times and
    Redis killed and restarted, with one shard (admission in the apply script) and with four
    (admission by the registration on the global slot): per-type totals exact, each type's total
    equal to the sum over its combinations (on /metrics, nothing unattributed) and to the sum
    over each dimension's values, folds included."""
    _dimensions_env(stack, "country,channel")
    stack.extra_env["EXPORTER_REDIS_SHARDS"] = str(shards)
    traffic = dimension_traffic(3000, seed=27)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    sender = send_in_background(stack, traffic)
    rng = random.Random(28)
    for round_ in range(1, 4):
        wait_processed(stack, traffic.valid_events * round_ // 6)
        victim = rng.choice(stack.processors)
        victim.kill()
        victim.restart()
    wait_processed(stack, traffic.valid_events * 2 // 3)
    fresh_redis_server.kill()
    ports = [p.port for p in stack.processors]
    wait_until(lambda: not any(ready(port) for port in ports), timeout=30, message="not ready")
    fresh_redis_server.start()
    sender.join(timeout=scaled(120))
    assert_exact(traffic, settle(stack, traffic))
    assert_breakdowns_add_up(stack, traffic, ("country", "channel"), attributed=True)
    assert stack.api is not None
    joint = joint_totals(stack.api.port)
    assert {kind: total for kind, (total, _) in joint.items()} == {
        kind: count for kind, (count, _) in traffic.expected.items()
    }
    assert all(unattributed == 0 for _, unattributed in joint.values()), joint
    # The caps were reached: the traffic folded, and the folds were counted as applied.
    assert stack.api is not None
    folded = _get(stack.api.port, "/stats/purchase?by=country")["values"]
    assert any(v["value"] == "__other__" for v in folded)


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_processors_of_two_configurations_keep_totals_exact(stack: Stack, order: str) -> None:
    """A rolling restart caught in the middle: one processor declares `country` with one set of
    value buckets, the other `country,channel` with another, both on one queue and one Redis.
    Per-type totals are exact; `country`, which both declare, adds up with nothing
    unattributed; `channel` adds up with the old processor's events unattributed; the API's
    /metrics (of the new configuration) sums to the totals."""
    traffic = dimension_traffic(1500, seed=29 if order == "old-first" else 30)
    configurations = [("country", "1,10,100"), ("channel,country", "5,50,500,5000")]
    if order == "new-first":
        configurations.reverse()
    for dimensions, buckets in configurations:
        _dimensions_env(stack, dimensions, buckets)
        stack.add_processor()
    # The API reads with the new configuration.
    _dimensions_env(stack, "channel,country", "5,50,500,5000")
    stack.start_api()
    sender = send_in_background(stack, traffic)
    sender.join(timeout=scaled(120))
    assert_exact(traffic, settle(stack, traffic))
    assert_breakdowns_add_up(stack, traffic, ("country",), attributed=True)
    assert_breakdowns_add_up(stack, traffic, ("channel",), attributed=False)
    assert stack.api is not None
    joint = joint_totals(stack.api.port)
    assert {kind: total for kind, (total, _) in joint.items()} == {
        kind: count for kind, (count, _) in traffic.expected.items()
    }
