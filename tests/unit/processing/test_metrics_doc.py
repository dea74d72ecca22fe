"""docs/metrics.md documents exactly the processor's metrics, no more and no fewer."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics

DOC = Path(__file__).parents[3] / "docs" / "metrics.md"


def processor_section() -> str:
    text = DOC.read_text()
    start = text.index("## Processor")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def documented_names(section: str) -> set[str]:
    return set(re.findall(r"^\| `(exporter_[a-z_]+)` \|", section, flags=re.MULTILINE))


def exposed_names() -> set[str]:
    registry = CollectorRegistry()
    build_metrics(registry)
    names = set()
    for metric in registry.collect():
        # Counters are collected without their `_total` suffix; the docs use the exposed name.
        names.add(metric.name + "_total" if metric.type == "counter" else metric.name)
    return names


def test_every_processor_metric_is_documented_and_every_documented_one_exists() -> None:
    """The Processor table of docs/metrics.md and build_metrics name the same metrics."""
    assert documented_names(processor_section()) == exposed_names()


def test_the_contract_names_are_the_exposed_names() -> None:
    """The names agreed with the API and the ops stack are the ones the processor exposes."""
    contract = {
        "exporter_events_processed_total",
        "exporter_event_value",
        "exporter_dimension_folded_total",
        "exporter_events_invalid_total",
        "exporter_events_duplicate_total",
        "exporter_events_unbucketed_total",
        "exporter_messages_received_total",
        "exporter_messages_dead_lettered_total",
        "exporter_batch_size",
        "exporter_batch_stage_duration_seconds",
        "exporter_event_lag_seconds",
        "exporter_queue_messages",
        "exporter_messages_in_flight",
        "exporter_dependency_errors_total",
        "exporter_ready",
        "exporter_store_totals_lost_total",
        "exporter_redis_evicting",
        "exporter_build_info",
    }
    assert exposed_names() == contract
