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

from exporter.metrics import StoreWatchMetrics, register_build_info, register_store_watch
from exporter.store.detail import CountingConfig, Detail

UNMATCHED: Final = "unmatched"
# Methods outside this set share one label value, so a client cannot grow the label set.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    """The request metrics of one app."""

    requests: Counter
    duration: Histogram
    totals: StoreTotalsCollector
    store: StoreWatchMetrics


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
    store = register_store_watch(registry)
    return ApiMetrics(requests=requests, duration=duration, totals=totals, store=store)


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


EVENTS_HELP: Final = (
    "Events counted per type (and combination of dimensions) in the shared store, by all "
    "replicas since the last reset."
)
VALUE_HELP: Final = (
    "Values of those events: buckets cumulative over EXPORTER_VALUE_BUCKETS (lower bounds while "
    "processors count with other bounds), count, and the exact sum rounded once to a float."
)


class StoreTotalsCollector(Collector):
    """Names the store's totals on the registry and exposes `exporter_stats_store_up`; the
    totals' own samples are written by `TotalsExposition` (the handler appends them)."""

    def __init__(self, counting: CountingConfig) -> None:
        self.detail: Detail | None = None
        self._labels = ["type", *counting.dimensions]

    def describe(self) -> list[Metric]:
        """Every name the totals use, so that the registry can reject a clash at registration."""
        return [
            CounterMetricFamily("exporter_stats_events", EVENTS_HELP, labels=self._labels),
            HistogramMetricFamily("exporter_stats_value", VALUE_HELP, labels=self._labels),
            *self.collect(),
        ]

    def collect(self) -> Iterator[Metric]:
        """Whether the store answered the last read."""
        yield GaugeMetricFamily(
            "exporter_stats_store_up",
            "1 when the store answered this scrape's read of the totals, else 0.",
            value=1 if self.detail is not None else 0,
        )
