"""A processor with dimensions and value buckets: events read with the declared dimensions, folds
counted as the store applied them, values in the configured buckets."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from exporter.events import ContractOptions
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.store.detail import CountingConfig
from exporter.store.memory import MemoryStore
from tests.unit.processing.processor_fakes import RecordingSource, message

COUNTING = CountingConfig(("channel", "country"), max_values=1, max_combinations=1)


def body(value: float, **fields: object) -> str:
    """A valid event body with extra top-level `fields`."""
    return json.dumps(
        {"type": "purchase", "value": value, "occurred_at": "2020-10-06 10:02:05", **fields}
    )


def make() -> tuple[Processor, MemoryStore, CollectorRegistry]:
    registry = CollectorRegistry()
    store = MemoryStore(counting=COUNTING)
    config = ProcessorConfig(contract=ContractOptions(COUNTING.dimensions))
    processor = Processor(store, RecordingSource(), build_metrics(registry, (10, 100)), config)
    return processor, store, registry


def folded(registry: CollectorRegistry, dimension: str, reason: str) -> float | None:
    return registry.get_sample_value(
        "exporter_dimension_folded_total",
        {"type": "purchase", "dimension": dimension, "reason": reason},
    )


async def test_folds_are_counted_by_dimension_and_reason_as_applied() -> None:
    """Invalid values, values past the cap and combinations past the cap each count once per
    applied event; a redelivery of a folded event counts nothing more."""
    processor, store, registry = make()
    await processor.handle_batch(
        [
            message(body(5, channel="web", country="NL"), "a"),
            message(body(5, channel="web", country="DE"), "b"),  # DE past the value cap
            message(body(5, channel=1.5, country="NL"), "c"),  # a fraction: invalid
            message(body(5, channel="web"), "d"),  # (web, absent): past the combination cap
        ]
    )
    assert folded(registry, "country", "values") == 1
    assert folded(registry, "channel", "invalid") == 1
    assert folded(registry, "*", "combinations") == 3
    await processor.handle_batch([message(body(5, channel="web", country="DE"), "b")])
    assert folded(registry, "country", "values") == 1
    breakdown = await store.breakdown("purchase", "country")
    assert breakdown is not None
    assert {v.value: v.tally.count for v in breakdown.values} == {
        "NL": 2,
        "__other__": 1,
        "__absent__": 1,
    }


async def test_no_fold_series_exists_before_a_fold() -> None:
    """Events whose dimensions all count under their own names leave the counter empty."""
    processor, _, registry = make()
    await processor.handle_batch([message(body(5, channel="web", country="NL"), "a")])
    assert folded(registry, "country", "values") is None
    assert folded(registry, "*", "combinations") is None


async def test_the_value_histogram_uses_the_configured_bounds() -> None:
    """`exporter_event_value` puts each applied value in its bucket; duplicates are not
    observed; `_count` and `_sum` keep their meaning."""
    processor, _, registry = make()
    await processor.handle_batch(
        [
            message(body(5, channel="web", country="NL"), "a"),
            message(body(50, channel="web", country="NL"), "b"),
            message(body(500, channel="web", country="NL"), "c"),
            message(body(500, channel="web", country="NL"), "c"),
        ]
    )
    value = registry.get_sample_value
    buckets = [
        value("exporter_event_value_bucket", {"type": "purchase", "le": le})
        for le in ("10.0", "100.0", "+Inf")
    ]
    assert buckets == [1, 2, 3]
    assert value("exporter_event_value_count", {"type": "purchase"}) == 3
    assert value("exporter_event_value_sum", {"type": "purchase"}) == 555


async def test_an_event_read_with_other_dimensions_than_the_store_is_refused_whole() -> None:
    """Wiring a processor's contract and its store with different dimensions is a bug that
    must not count values under the wrong names: the apply raises and changes nothing."""
    store = MemoryStore(counting=COUNTING)
    registry = CollectorRegistry()
    config = ProcessorConfig(contract=ContractOptions(("country",)))
    source = RecordingSource()
    processor = Processor(store, source, build_metrics(registry), config)
    with pytest.raises(ValueError, match="dimension"):
        await processor.handle_batch([message(body(5, country="NL"), "a")])
    assert (await store.snapshot()).types == ()
    assert source.deleted == []
