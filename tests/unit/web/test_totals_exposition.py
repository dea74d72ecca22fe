"""The totals written by hand are what the client library would write, in both text formats."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector

from exporter.metrics import le_text
from exporter.store import TypeTotals
from exporter.store.detail import CombinationTotals, CountingConfig, Detail, Tally, TypeDetail
from exporter.store.histograms import BucketBounds, cumulative
from exporter.web.telemetry import EVENTS_HELP, VALUE_HELP
from exporter.web.totals_exposition import TotalsExposition

DETAIL = Detail(
    (
        TypeDetail(
            TypeTotals("page_view", 4, 4_000_000),
            ((1.0, 4),),
            (CombinationTotals(("web", "NL"), Tally(3, 3_000_000), ((1.0, 3),)),),
        ),
        TypeDetail(
            TypeTotals("purchase", 6, -2_500_000),
            ((1.0, 1), (10.0, 2), (math.inf, 3)),
            (
                CombinationTotals(("app", "__absent__"), Tally(2, 12_500_000), ((10.0, 2),)),
                CombinationTotals(("__other__", "__other__"), Tally(3, -15_000_001), ((1.0, 1),)),
            ),
        ),
    )
)


class Reference(Collector):
    """The families as the client library writes them (the API's way before it wrote its own)."""

    def __init__(self, counting: CountingConfig) -> None:
        self.counting = counting

    def collect(self) -> Iterator[Metric]:
        names = ["type", *self.counting.dimensions]
        events = CounterMetricFamily("exporter_stats_events", EVENTS_HELP, labels=names)
        values = HistogramMetricFamily("exporter_stats_value", VALUE_HELP, labels=names)
        bounds = self.counting.buckets.bounds
        le = [*(le_text(b) for b in bounds), "+Inf"]
        for kind in DETAIL.types:
            rows = (
                [*kind.combinations, kind.unattributed(len(self.counting.dimensions))]
                if self.counting.dimensions
                else [
                    CombinationTotals(
                        (), Tally(kind.totals.count, kind.totals.sum_micros), kind.buckets
                    )
                ]
            )
            for row in rows:
                labels = [kind.totals.type, *row.values]
                events.add_metric(labels, row.tally.count)
                counts = cumulative(row.buckets, bounds, row.tally.count)
                values.add_metric(labels, list(zip(le, counts, strict=True)), row.tally.sum)
        yield events
        yield values


@pytest.mark.parametrize(
    "counting",
    [
        CountingConfig(("channel", "country"), buckets=BucketBounds.of([1, 10])),
        CountingConfig(buckets=BucketBounds.of([1, 2.5, 10])),
        CountingConfig(("channel", "country"), buckets=BucketBounds.of([])),
    ],
)
def test_the_written_totals_equal_the_client_library_s(counting: CountingConfig) -> None:
    """Same families, types, help, samples and values, in the text format and in OpenMetrics."""
    registry = CollectorRegistry()
    registry.register(Reference(counting))
    exposition = TotalsExposition(counting)
    text = exposition.render(DETAIL, openmetrics=False).decode()
    assert text == generate_latest(registry).decode()
    written = exposition.render(DETAIL, openmetrics=True).decode() + "# EOF\n"
    library: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
    assert written == library.decode()
    assert list(parse_text(text))


def test_the_openmetrics_totals_parse() -> None:
    """Without negative sums (which OpenMetrics 1.0's own parser refuses as a histogram's _sum,
    while Prometheus takes them, decision 0021) the OpenMetrics answer passes its parser."""
    positive = Detail(tuple(t for t in DETAIL.types if t.totals.sum_micros >= 0))
    written = TotalsExposition(CountingConfig(("channel", "country"))).render(
        positive, openmetrics=True
    )
    families = list(parse_openmetrics(written.decode() + "# EOF\n"))  # type: ignore[no-untyped-call]
    assert [f.name for f in families] == ["exporter_stats_events", "exporter_stats_value"]


def test_without_a_read_only_the_names_are_written() -> None:
    """A failed store read leaves the families empty rather than stale."""
    text = TotalsExposition(CountingConfig()).render(None, openmetrics=False).decode()
    assert "exporter_stats_events_total{" not in text
    assert "# TYPE exporter_stats_value histogram" in text
