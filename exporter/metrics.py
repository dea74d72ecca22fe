"""The processor's Prometheus metrics, built on a registry the caller passes in (never the global).

Names and labels are a contract with the dashboards and alert rules: see docs/metrics.md.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.samples import Exemplar

from exporter import __version__

BATCH_SIZE_BUCKETS: Final = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
# A receive stage includes the long poll (up to 20 s), so the buckets reach past it.
STAGE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
# Lag runs from milliseconds (live traffic) to hours (a backlog, or a replayed dead-letter queue).
LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
STAGES: Final = ("receive", "store", "delete", "dead_letter")


@dataclass(frozen=True, slots=True)
class ProcessorMetrics:
    """Every metric one processor replica exposes."""

    events_processed: Counter
    event_value: Summary
    events_invalid: Counter
    events_duplicate: Counter
    messages_received: Counter
    messages_dead_lettered: Counter
    batch_size: Histogram
    batch_stage_duration: Histogram
    event_lag: Histogram
    queue_messages: Gauge
    messages_in_flight: Gauge
    dependency_errors: Counter
    ready: Gauge
    build_info: Gauge


def build_metrics(registry: CollectorRegistry) -> ProcessorMetrics:
    """Register the processor's metrics on `registry` and return them."""
    metrics = ProcessorMetrics(
        events_processed=Counter(
            "exporter_events_processed",
            "Events applied to the totals by this replica (duplicates excluded).",
            ["type"],
            registry=registry,
        ),
        event_value=Summary(
            "exporter_event_value",
            "Values of applied events (count and sum).",
            ["type"],
            registry=registry,
        ),
        events_invalid=Counter(
            "exporter_events_invalid",
            "Events rejected, by reason (sent to the dead-letter queue).",
            ["reason"],
            registry=registry,
        ),
        events_duplicate=Counter(
            "exporter_events_duplicate",
            "Events whose identity was already applied (redeliveries, producer retries).",
            registry=registry,
        ),
        messages_received=Counter(
            "exporter_messages_received",
            "Messages received from SQS, redeliveries included.",
            registry=registry,
        ),
        messages_dead_lettered=Counter(
            "exporter_messages_dead_lettered",
            "Messages forwarded to the dead-letter queue by this replica, by reason.",
            ["reason"],
            registry=registry,
        ),
        batch_size=Histogram(
            "exporter_batch_size",
            "Messages per received batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        ),
        batch_stage_duration=Histogram(
            "exporter_batch_stage_duration_seconds",
            "Time spent per batch in each stage (receive includes the long poll).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        ),
        event_lag=Histogram(
            "exporter_event_lag_seconds",
            "Processing time minus the event's occurred_at.",
            buckets=LAG_BUCKETS,
            registry=registry,
        ),
        queue_messages=Gauge(
            "exporter_queue_messages",
            "Approximate messages in the main and dead-letter queues, by state.",
            ["queue", "state"],
            registry=registry,
        ),
        messages_in_flight=Gauge(
            "exporter_messages_in_flight",
            "Messages received by this replica and not yet deleted or released.",
            registry=registry,
        ),
        dependency_errors=Counter(
            "exporter_dependency_errors",
            "Failed calls to Redis or SQS, by dependency and operation.",
            ["dependency", "operation"],
            registry=registry,
        ),
        ready=Gauge(
            "exporter_ready",
            "1 when Redis and SQS are reachable and the processor is polling.",
            registry=registry,
        ),
        build_info=Gauge(
            "exporter_build_info",
            "Version of the exporter and of Python; always 1.",
            ["version", "python"],
            registry=registry,
        ),
    )
    metrics.build_info.labels(version=__version__, python=platform.python_version()).set(1)
    for stage in STAGES:
        # Zero-valued series from the start, so rate() and alerts see them before the first batch.
        metrics.batch_stage_duration.labels(stage=stage)
    return metrics


def observe_many(
    histogram: Histogram, amounts: Sequence[float], exemplar: dict[str, str] | None = None
) -> None:
    """Observe every amount (none NaN) into an unlabelled histogram or child, as one by one.

    `Histogram.observe` scans the buckets linearly and takes two locks per amount, which cost a
    microsecond per event in the pipeline benchmark (docs/benchmarks.md); here each bucket and the
    sum are written once per batch. Buckets, sum and exemplars end as `observe` would leave them:
    each touched bucket's exemplar is the batch's last amount in it. It writes the client
    library's own value objects (`_sum`, `_buckets`, stable since its first releases), so
    multiprocess mode and exposition work as before; a unit test compares it with `observe`.
    """
    if not amounts:
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    last = [0.0] * len(bounds)
    total = 0.0
    for amount in amounts:
        index = bisect_left(bounds, amount)  # the first bound with amount <= bound, as observe
        counts[index] += 1
        last[index] = amount
        total += amount
    histogram._sum.inc(total)
    buckets = histogram._buckets
    now = time.time()
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
            if exemplar:
                buckets[index].set_exemplar(Exemplar(exemplar, last[index], now))


def observe_total(summary: Summary, count: int, total: float) -> None:
    """Add `count` observations summing to `total` to an unlabelled summary or child at once."""
    summary._raise_if_not_observable()  # type: ignore[no-untyped-call]
    summary._count.inc(count)
    summary._sum.inc(total)


def trace_exemplar() -> dict[str, str] | None:
    """The current trace id as an exemplar, when a sampled span is recording."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": f"{context.trace_id:032x}"}


__all__ = [
    "STAGES",
    "ProcessorMetrics",
    "build_metrics",
    "observe_many",
    "observe_total",
    "trace_exemplar",
]
