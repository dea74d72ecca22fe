"""Store options shared by `processor`, `api` and `demo`, without the processor's imports."""

from __future__ import annotations

from exporter.events import ContractOptions
from exporter.metrics import StoreWatchMetrics
from exporter.settings import Settings
from exporter.store.detail import CountingConfig
from exporter.store.histograms import BucketBounds
from exporter.store.observer import StoreObserver
from exporter.store.series import SeriesPolicy

# Every dimension and bucket setting, for the SETTINGS of each command that counts or reads.
COUNTING_SETTINGS = (
    "dimensions",
    "max_dimension_values",
    "max_dimension_combinations",
    "value_buckets",
)


def series_policy(settings: Settings) -> SeriesPolicy:
    """The event-time bucket part of the settings."""
    return SeriesPolicy(
        enabled=settings.series_enabled, retention_seconds=settings.series_retention
    )


def counting_config(settings: Settings) -> CountingConfig:
    """What the store counts beyond per-type totals: dimensions, their caps, value buckets."""
    return CountingConfig(
        dimensions=settings.dimensions,
        max_values=settings.max_dimension_values,
        max_combinations=settings.max_dimension_combinations,
        buckets=BucketBounds.of(settings.value_buckets),
    )


def contract_options(settings: Settings) -> ContractOptions:
    """The dimensions events are read with (the same as the store counts)."""
    return ContractOptions(settings.dimensions)


def store_observer(metrics: StoreWatchMetrics) -> StoreObserver:
    """The store's reports of Redis itself, counted on the process's metrics."""

    def evicting(policy: str | None) -> None:
        metrics.evicting.set(0 if policy is None else 1)

    def totals_lost(_: object) -> None:
        metrics.totals_lost.inc()

    return StoreObserver(totals_lost=totals_lost, evicting=evicting)


__all__ = [
    "COUNTING_SETTINGS",
    "contract_options",
    "counting_config",
    "series_policy",
    "store_observer",
]
