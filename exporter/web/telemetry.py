"""The API's own metrics, and the global totals as metrics read from the store at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter.metrics import le_text, register_build_info
from exporter.store.detail import CombinationTotals, CountingConfig, Detail, Tally, TypeDetail
from exporter.store.histograms import cumulative

UNMATCHED: Final = "unmatched"
# Methods outside this set share one label value, so a client cannot grow the label set.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    """The request metrics of one app."""

    requests: Counter
    duration: Histogram
    totals: StoreTotalsCollector


def build_api_metrics(registry: CollectorRegistry, counting: CountingConfig) -> ApiMetrics:
    """Register the API's metrics on `registry` (never the global one); the totals' labels and
    buckets follow `counting`."""
    requests = Counter(
        "exporter_api_requests",
        "HTTP requests answered by the stats API, by route template, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    duration = Histogram(
        "exporter_api_request_duration_seconds",
        "Time to answer an HTTP request of the stats API, by route template and method.",
        ["route", "method"],
        registry=registry,
    )
    register_build_info(registry)
    totals = StoreTotalsCollector(counting)
    registry.register(totals)
    return ApiMetrics(requests=requests, duration=duration, totals=totals)


def route_label(request: web.Request) -> str:
    """The matched route template (`/stats/{type}`), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def instrument_middleware(metrics: ApiMetrics) -> Middleware:
    """Count and time every request by route template; outermost, so it sees final statuses."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            route = route_label(request)
            method = request.method if request.method in _METHODS else "other"
            metrics.requests.labels(route, method, str(status)).inc()
            metrics.duration.labels(route, method).observe(time.perf_counter() - started)

    return middleware


class StoreTotalsCollector(Collector):
    """Renders the detail the /metrics handler read just before; it does no I/O itself.

    Without dimensions, one series per type. With them, one per combination of the joint table
    of this API's configuration, every dimension a label, plus one per type with every
    dimension `__unattributed__` for the events outside it: `sum by (type)` is the type's total.
    """

    def __init__(self, counting: CountingConfig) -> None:
        self.detail: Detail | None = None
        self._width = len(counting.dimensions)
        self._labels = ["type", *counting.dimensions]
        self._bounds = counting.buckets.bounds
        self._le = [*(le_text(b) for b in self._bounds), "+Inf"]

    def describe(self) -> list[Metric]:
        """The metric names, so that the registry can reject a clash at registration."""
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        """The global totals as of the last read; no totals, and store_up 0, if it failed."""
        return self._families(self.detail)

    def _families(self, detail: Detail | None) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "exporter_stats_events",
            "Events counted per type (and combination of dimensions) in the shared store, by "
            "all replicas since the last reset.",
            labels=self._labels,
        )
        values = HistogramMetricFamily(
            "exporter_stats_value",
            "Values of those events: buckets cumulative over EXPORTER_VALUE_BUCKETS (lower "
            "bounds while processors count with other bounds), count, and the exact sum rounded "
            "once to a float.",
            labels=self._labels,
        )
        for kind in detail.types if detail is not None else ():
            for row in self._rows(kind):
                labels = [kind.totals.type, *row.values]
                count = row.tally.count
                events.add_metric(labels, count)
                counts = cumulative(row.buckets, self._bounds, count)
                values.add_metric(labels, list(zip(self._le, counts, strict=True)), row.tally.sum)
        yield events
        yield values
        yield GaugeMetricFamily(
            "exporter_stats_store_up",
            "1 when the store answered this scrape's read of the totals, else 0.",
            value=1 if detail is not None else 0,
        )

    def _rows(self, kind: TypeDetail) -> list[CombinationTotals]:
        if not self._width:
            tally = Tally(kind.totals.count, kind.totals.sum_micros)
            return [CombinationTotals((), tally, kind.buckets)]
        return [*kind.combinations, kind.unattributed(self._width)]
