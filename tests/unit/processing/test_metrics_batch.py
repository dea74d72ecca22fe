"""Batch observations leave histograms and summaries exactly as one observation per amount."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, Summary, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Sample

from exporter.metrics import LAG_BUCKETS, BatchedHistogram, BatchedSummary

TRACE = {"trace_id": "0af7651916cd43dd8448eb211c80319c"}
amounts_strategy = st.lists(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e7, allow_nan=False),
        st.sampled_from([0.0, 0.05, 0.1, 60.0, 3600.0, 86400.0, math.inf]),
    ),
    max_size=40,
)


def samples(registry: CollectorRegistry) -> list[Sample]:
    """Every sample but the creation time, which the client library's own metrics add."""
    return [
        sample
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    ]


def buckets_and_exemplars(registry: CollectorRegistry) -> list[tuple[str, float, object]]:
    return [
        (
            sample.labels.get("le", ""),
            sample.value,
            None if sample.exemplar is None else (sample.exemplar.labels, sample.exemplar.value),
        )
        for sample in samples(registry)
        if sample.name.endswith("_bucket")
    ]


def without_created(exposition: bytes) -> list[str]:
    return [line for line in exposition.decode().splitlines() if "_created" not in line]


@given(amounts=amounts_strategy, exemplar=st.booleans())
def test_batched_histogram_equals_observing_one_by_one(
    amounts: list[float], exemplar: bool
) -> None:
    """Buckets, count, sum and exemplars match what `Histogram.observe` per amount leaves."""
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("lag", "h", buckets=LAG_BUCKETS, registry=one)
    batched = BatchedHistogram("lag", "h", LAG_BUCKETS, many)
    for amount in amounts:
        single.observe(amount, TRACE if exemplar else None)
    batched.observe_many(amounts, TRACE if exemplar else None)
    assert buckets_and_exemplars(one) == buckets_and_exemplars(many)
    assert one.get_sample_value("lag_count") == many.get_sample_value("lag_count")
    # Added in the same order from zero, so even the float sum is the same to the last bit.
    assert one.get_sample_value("lag_sum") == many.get_sample_value("lag_sum")


def test_batched_histogram_exposes_like_a_histogram() -> None:
    """Both text formats carry the same bucket lines, and OpenMetrics the exemplar."""
    one, many = CollectorRegistry(), CollectorRegistry()
    Histogram("lag", "Lag.", buckets=(1, 2), registry=one).observe(1.5)
    BatchedHistogram("lag", "Lag.", (1, 2), many).observe_many([1.5], TRACE)
    assert without_created(generate_latest(many)) == without_created(generate_latest(one))
    openmetrics: bytes = generate_openmetrics(many)  # type: ignore[no-untyped-call]
    assert 'lag_bucket{le="2.0"} 1.0 # {trace_id="' in openmetrics.decode()


def test_batched_summary_adds_a_count_and_a_sum() -> None:
    """A series gets `count` observations summing to `total`, as many observe calls would."""
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Summary("value", "s", ["type"], registry=one)
    batched = BatchedSummary("value", "s", "type", many)
    for value in (1.0, 2.5, 0.25):
        single.labels(type="t").observe(value)
    batched.add("t", 2, 3.5)
    batched.add("t", 1, 0.25)
    assert samples(one) == samples(many)
