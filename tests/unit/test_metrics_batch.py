"""Batch observations leave histograms and summaries exactly as one observation per amount."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, Summary
from prometheus_client.samples import Sample

from exporter.metrics import LAG_BUCKETS, observe_many, observe_total

TRACE = {"trace_id": "0af7651916cd43dd8448eb211c80319c"}
amounts_strategy = st.lists(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e7, allow_nan=False),
        st.sampled_from([0.0, 0.05, 0.1, 60.0, 3600.0, 86400.0, math.inf]),
    ),
    max_size=40,
)


def samples(registry: CollectorRegistry) -> list[Sample]:
    """Every sample but the creation time, which differs between two registries by nature."""
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


@given(amounts=amounts_strategy, exemplar=st.booleans())
def test_observe_many_equals_observing_one_by_one(amounts: list[float], exemplar: bool) -> None:
    """Buckets, count, sum and exemplars match what `observe` per amount leaves."""
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("lag", "h", buckets=LAG_BUCKETS, registry=one)
    batched = Histogram("lag", "h", buckets=LAG_BUCKETS, registry=many)
    for amount in amounts:
        single.observe(amount, TRACE if exemplar else None)
    observe_many(batched, amounts, TRACE if exemplar else None)
    assert buckets_and_exemplars(one) == buckets_and_exemplars(many)
    # Added in the same order from zero, so even the float sum is the same to the last bit.
    assert one.get_sample_value("lag_sum") == many.get_sample_value("lag_sum")


def test_observe_many_works_on_a_labelled_child() -> None:
    """A labelled child takes batch observations; its parent's other children stay untouched."""
    registry = CollectorRegistry()
    stages = Histogram("stage", "h", ["stage"], buckets=(1, 2), registry=registry)
    observe_many(stages.labels(stage="store"), [0.5, 1.5, 1.5, 3.0])
    assert registry.get_sample_value("stage_bucket", {"stage": "store", "le": "1.0"}) == 1
    assert registry.get_sample_value("stage_bucket", {"stage": "store", "le": "2.0"}) == 3
    assert registry.get_sample_value("stage_count", {"stage": "store"}) == 4
    assert registry.get_sample_value("stage_sum", {"stage": "store"}) == 6.5


def test_observe_total_adds_a_count_and_a_sum() -> None:
    """A summary child gets `count` observations summing to `total`, as many observe calls would."""
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Summary("value", "s", ["type"], registry=one)
    batched = Summary("value", "s", ["type"], registry=many)
    for value in (1.0, 2.5, 0.25):
        single.labels(type="t").observe(value)
    observe_total(batched.labels(type="t"), 3, 3.75)
    assert samples(one) == samples(many)
