"""Benchmark: what reading envelopes costs, bare events first (issue 20).

Two views, each measured in alternating rounds in one run so that a shared machine's load falls
on both sides alike:

- the parse step alone, CPU time per body, the readers taking turns every 500 bodies: the
  contract (`parse_event`) on bare bodies is the baseline; the envelope reader (`read_event`) on
  the same bare bodies, on the same events inside SNS notifications, and inside EventBridge
  events;
- the whole core (`Processor.handle_batch` over a real Redis, as bench_pipeline) on bare bodies
  with unwrapping off (the parse step as it was, `parse_event` alone) and on (the default), and
  on SNS notifications.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from exporter.envelopes import read_event
from exporter.events import parse_event
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from tests.perf.bench_pipeline import AckingSource, _in_parallel, as_messages, core_pipeline
from tests.store_support import redis_store, url_of


def as_sns(body: bytes) -> bytes:
    """`body` as SNS delivers it to SQS with raw delivery off."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:events",
            "Message": body.decode(),
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "A" * 344,
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        },
        indent=2,
        separators=(",", " : "),
    ).encode()


def as_eventbridge(body: bytes) -> bytes:
    """`body` as an EventBridge rule delivers it to an SQS target."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Event",
            "source": "com.example",
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": json.loads(body),
        }
    ).encode()


def _parse_costs(
    readers: dict[str, tuple[Callable[[bytes], object], Sequence[bytes]]], chunk: int = 500
) -> dict[str, float]:
    """CPU microseconds per body of each reader over its bodies, the readers taking turns chunk
    by chunk (and in a rotating order), so that a load swing falls on all of them alike."""
    spent = dict.fromkeys(readers, 0.0)
    names = list(readers)
    count = min(len(bodies) for _, bodies in readers.values())
    for turn, start in enumerate(range(0, count, chunk)):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            read, bodies = readers[name]
            started = time.process_time()
            for body in bodies[start : start + chunk]:
                read(body)
            spent[name] += time.process_time() - started
    return {name: seconds / count * 1e6 for name, seconds in spent.items()}


async def _core_rate(
    client: aioredis.Redis, bodies: Sequence[bytes], *, unwrap: bool, workers: int
) -> tuple[float, int]:
    """Events per second of the core, and how many messages it dead-lettered (none should be)."""
    store = redis_store(url_of(client), prefix=f"bench-envelopes-{uuid.uuid4().hex[:8]}")
    source = AckingSource()
    processor = Processor(
        store, source, build_metrics(CollectorRegistry()), ProcessorConfig(unwrap_envelopes=unwrap)
    )
    messages = as_messages(bodies)
    await processor.handle_batch(messages[:10])  # warm up: script load, connections
    measured = messages[10:]
    started = time.perf_counter()
    await _in_parallel(workers, measured, lambda part: core_pipeline(processor, part, 10))
    return len(measured) / (time.perf_counter() - started), source.dead_lettered


async def envelopes(
    url: str, bodies: Sequence[bytes], *, rounds: int = 5, workers: int = 4
) -> dict[str, Any]:
    """Per-body parse cost and core events/s, bare and in envelopes, in alternating rounds."""
    sns = [as_sns(body) for body in bodies]
    eventbridge = [as_eventbridge(body) for body in bodies]
    parse: dict[str, list[float]] = {"contract": [], "bare": [], "sns": [], "eventbridge": []}
    core: dict[str, list[float]] = {"unwrap_off": [], "unwrap_on": [], "sns": []}
    dead_lettered = 0
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    readers: dict[str, tuple[Callable[[bytes], object], Sequence[bytes]]] = {
        "contract": (parse_event, bodies),
        "bare": (read_event, bodies),
        "sns": (read_event, sns),
        "eventbridge": (read_event, eventbridge),
    }
    variants = [("unwrap_off", bodies, False), ("unwrap_on", bodies, True), ("sns", sns, True)]
    for round_ in range(rounds):
        for name, cost in _parse_costs(readers).items():
            parse[name].append(cost)
        # Each round in another order: the first core run after a flush is not always the same.
        turn = round_ % len(variants)
        for name, sample, unwrap in variants[turn:] + variants[:turn]:
            rate, rejected = await _core_rate(client, sample, unwrap=unwrap, workers=workers)
            core[name].append(rate)
            dead_lettered += rejected
        await client.flushdb()
    await client.aclose()
    parse_us = {name: round(statistics.median(v), 3) for name, v in parse.items()}
    core_rate = {name: round(statistics.median(v)) for name, v in core.items()}
    bare_ratio = parse_us["bare"] / parse_us["contract"]
    core_ratio = core_rate["unwrap_on"] / core_rate["unwrap_off"]
    return {
        "benchmark": "envelopes",
        "events": len(bodies),
        "rounds": rounds,
        "parse_us_per_body": parse_us,
        "parse_ratio_to_contract": {
            name: round(value / parse_us["contract"], 3) for name, value in parse_us.items()
        },
        "core_events_per_s": core_rate,
        "core_dead_lettered": dead_lettered,
        "ratio": round(core_ratio, 3),
        "baseline": "parse_event and unwrapping off: the parse step as it was before envelopes",
        "target": "bare bodies: parse step within 10% of the contract, core within 5%",
        "target_met": bare_ratio <= 1.10 and core_ratio >= 0.95,
    }


__all__ = ["as_eventbridge", "as_sns", "envelopes"]
