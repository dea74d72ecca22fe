"""The processor's Prometheus metrics, built on a registry the caller passes in (never the global).

Names and labels are a contract with the dashboards and alert rules: see docs/metrics.md.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from exporter import __version__
from exporter.store.histograms import DEFAULT_VALUE_BUCKETS

BATCH_SIZE_BUCKETS: Final = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
# A receive stage includes the long poll (up to 20 s), so the buckets reach past it.
STAGE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
# Lag runs from milliseconds (live traffic) to hours (a backlog, or a replayed dead-letter queue).
LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
STAGES: Final = ("receive", "store", "delete", "dead_letter")


@dataclass(frozen=True, slots=True)
class StoreWatchMetrics:
    """What the Redis store reports about Redis itself; the processor and the API both expose it."""

    totals_lost: Counter
    evicting: Gauge


def register_store_watch(registry: CollectorRegistry) -> StoreWatchMetrics:
    """Register the store's own metrics on `registry` (decision 0017)."""
    return StoreWatchMetrics(
        totals_lost=Counter(
            "exporter_store_totals_lost",
            "Times this process found that Redis had lost totals it held (a shard emptied or "
            "writes gone back); the log line names the shard and since when.",
            registry=registry,
        ),
        evicting=Gauge(
            "exporter_redis_evicting",
            "1 while a Redis master has a maxmemory-policy that may evict the exporter's keys "
            "(allowed by EXPORTER_REDIS_ALLOW_EVICTION, or seen by the API), else 0.",
            registry=registry,
        ),
    )


@dataclass(frozen=True, slots=True)
class ProcessorMetrics:
    """Every metric one processor replica exposes."""

    events_processed: Counter
    event_value: BatchedHistogram
    dimension_folded: Counter
    events_invalid: Counter
    events_duplicate: Counter
    events_unbucketed: Counter
    messages_received: Counter
    messages_dead_lettered: Counter
    batch_size: Histogram
    batch_stage_duration: Histogram
    event_lag: BatchedHistogram
    queue_messages: Gauge
    messages_in_flight: Gauge
    dependency_errors: Counter
    ready: Gauge
    store: StoreWatchMetrics


def register_build_info(registry: CollectorRegistry) -> None:
    """Register `exporter_build_info`, the one both HTTP apps expose, on `registry`."""
    Gauge(
        "exporter_build_info",
        "Always 1; the labels name the running version.",
        ["version", "python"],
        registry=registry,
    ).labels(version=__version__, python=platform.python_version()).set(1)


def build_metrics(
    registry: CollectorRegistry, value_buckets: Sequence[float] = DEFAULT_VALUE_BUCKETS
) -> ProcessorMetrics:
    """Register the processor's metrics on `registry` and return them; `value_buckets` are the
    upper bounds of `exporter_event_value` (EXPORTER_VALUE_BUCKETS; empty: `+Inf` only)."""
    metrics = ProcessorMetrics(
        events_processed=Counter(
            "exporter_events_processed",
            "Events applied to the totals by this replica (duplicates excluded).",
            ["type"],
            registry=registry,
        ),
        event_value=BatchedHistogram(
            "exporter_event_value",
            "Values of events applied by this replica, by type (EXPORTER_VALUE_BUCKETS).",
            value_buckets,
            registry,
            label="type",
        ),
        dimension_folded=Counter(
            "exporter_dimension_folded",
            "Applied events whose dimension was counted under __other__, by type, dimension "
            "and reason (invalid, values; combinations with dimension *).",
            ["type", "dimension", "reason"],
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
        events_unbucketed=Counter(
            "exporter_events_unbucketed",
            "Applied events in the totals but in no event-time bucket (too old or too far ahead).",
            registry=registry,
        ),
        messages_received=Counter(
            "exporter_messages_received",
            "Messages received from SQS, redeliveries included, by queue.",
            ["queue_name"],
            registry=registry,
        ),
        messages_dead_lettered=Counter(
            "exporter_messages_dead_lettered",
            "Messages forwarded to a dead-letter queue by this replica, by reason and queue.",
            ["reason", "queue_name"],
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
        event_lag=BatchedHistogram(
            "exporter_event_lag_seconds",
            "Processing time minus the event's occurred_at.",
            LAG_BUCKETS,
            registry,
        ),
        queue_messages=Gauge(
            "exporter_queue_messages",
            "Approximate messages in each queue read and its dead-letter queue, by state.",
            ["queue", "queue_name", "state"],
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
        store=register_store_watch(registry),
    )
    register_build_info(registry)
    for stage in STAGES:
        # Zero-valued series from the start, so rate() and alerts see them before the first batch.
        metrics.batch_stage_duration.labels(stage=stage)
    return metrics


def le_text(bound: float) -> str:
    """A bucket bound as Prometheus writes it (`+Inf`, `0.5`, `1.0`)."""
    return "+Inf" if bound == math.inf else repr(float(bound))


@dataclass(slots=True)
class _HistogramSeries:
    """One labelled series of a batched histogram: per-bucket counts, exemplars and the sum."""

    counts: list[int]
    exemplars: list[Exemplar | None]
    total: float = 0.0


class BatchedHistogram(Collector):
    """A histogram fed a whole batch of amounts at once, exposed as any histogram is.

    prometheus_client's `Histogram.observe` scans the buckets and takes two locks per amount, about
    a microsecond per event in the pipeline benchmark (docs/benchmarks.md). This collector owns
    its counts, so a batch writes each touched bucket once; it is public API of the client library
    (a custom collector), so no private attribute of `Histogram` is relied on. With a `label`, each
    value of it is a series of its own, made at its first observation.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
        label: str | None = None,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = [float(b) for b in buckets]
        if not self._bounds or self._bounds[-1] != math.inf:
            self._bounds.append(math.inf)
        self._series: dict[str, _HistogramSeries] = {}
        if label is None:
            self._series[""] = self._new_series()  # zeros from the start, as Histogram does
        self._lock = threading.Lock()
        registry.register(self)

    def _new_series(self) -> _HistogramSeries:
        return _HistogramSeries([0] * len(self._bounds), [None] * len(self._bounds))

    def observe_many(
        self,
        amounts: Sequence[float],
        exemplar: dict[str, str] | None = None,
        label_value: str = "",
    ) -> None:
        """Observe every amount (none NaN), as one observation each, in the series of
        `label_value`: each touched bucket's exemplar becomes the batch's last amount in it."""
        if not amounts:
            return
        bounds = self._bounds
        counts = [0] * len(bounds)
        last = [0.0] * len(bounds)
        total = 0.0
        for amount in amounts:
            index = bisect_left(bounds, amount)  # the first bound with amount <= bound
            counts[index] += 1
            last[index] = amount
            total += amount
        now = time.time()
        with self._lock:
            series = self._series.get(label_value)
            if series is None:
                series = self._series[label_value] = self._new_series()
            series.total += total
            for index, count in enumerate(counts):
                if count:
                    series.counts[index] += count
                    if exemplar:
                        series.exemplars[index] = Exemplar(exemplar, last[index], now)

    def describe(self) -> list[Metric]:
        """The family without samples, so registering does not collect."""
        return [self._family()]

    def _family(self) -> HistogramMetricFamily:
        labels = [self._label] if self._label is not None else None
        return HistogramMetricFamily(self._name, self._documentation, labels=labels)

    def collect(self) -> list[Metric]:
        """Cumulative buckets, count and sum of each series, with each bucket's latest exemplar."""
        with self._lock:
            copies = [
                (value, list(s.counts), list(s.exemplars), s.total)
                for value, s in self._series.items()
            ]
        family = self._family()
        for value, counts, exemplars, total in copies:
            cumulative = 0
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for bound, count, exemplar in zip(self._bounds, counts, exemplars, strict=True):
                cumulative += count
                le = le_text(bound)
                buckets.append((le, cumulative) if exemplar is None else (le, cumulative, exemplar))
            family.add_metric([value] if self._label is not None else [], buckets, total)
        return [family]


def trace_exemplar() -> dict[str, str] | None:
    """The current trace id as an exemplar, when a sampled span is recording."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": f"{context.trace_id:032x}"}


__all__ = [
    "STAGES",
    "BatchedHistogram",
    "ProcessorMetrics",
    "build_metrics",
    "le_text",
    "trace_exemplar",
]
