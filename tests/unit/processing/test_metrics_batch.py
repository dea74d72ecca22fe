"""Batch observations leave histograms exactly as one observation per amount."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Sample

from exporter.metrics import LAG_BUCKETS, BatchedHistogram, build_metrics

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


@given(
    batches=st.lists(
        st.tuples(st.sampled_from(["purchase", "refund"]), amounts_strategy), max_size=5
    )
)
def test_a_labelled_batched_histogram_equals_a_labelled_histogram(
    batches: list[tuple[str, list[float]]],
) -> None:
    """Per label value, the series match `Histogram.labels(...).observe` per amount."""
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("value", "h", ["type"], buckets=(1, 2, 5), registry=one)
    batched = BatchedHistogram("value", "h", (1, 2, 5), many, label="type")
    for label, amounts in batches:
        for amount in amounts:
            single.labels(type=label).observe(amount)
        batched.observe_many(amounts, label_value=label)
    expected, got = by_labels(one), by_labels(many)
    # A batch's amounts are added up before its sum is: equal up to float rounding.
    assert got == {k: pytest.approx(v, rel=1e-12) if k[0].endswith("_sum") else v
                   for k, v in expected.items()}  # fmt: skip


def by_labels(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    """Every sample's value by its name, `type` and `le`."""
    return {
        (s.name, s.labels.get("type", ""), s.labels.get("le", "")): s.value
        for s in samples(registry)
    }


def test_the_value_histogram_takes_the_configured_bounds() -> None:
    """`exporter_event_value` has a bucket per EXPORTER_VALUE_BUCKETS bound, `+Inf` only when
    buckets are off, and keeps its `_count` and `_sum` names."""
    registry = CollectorRegistry()
    build_metrics(registry, (10, 100)).event_value.observe_many([5.0, 50.0, 500.0], None, "t")
    value = registry.get_sample_value
    assert [value("exporter_event_value_bucket", {"type": "t", "le": le}) for le in
            ("10.0", "100.0", "+Inf")] == [1, 2, 3]  # fmt: skip
    assert value("exporter_event_value_count", {"type": "t"}) == 3
    assert value("exporter_event_value_sum", {"type": "t"}) == 555.0
    off = CollectorRegistry()
    build_metrics(off, ()).event_value.observe_many([5.0], None, "t")
    buckets = [
        s for m in off.collect() for s in m.samples if s.name == "exporter_event_value_bucket"
    ]
    assert [(s.labels["le"], s.value) for s in buckets] == [("+Inf", 1)]
