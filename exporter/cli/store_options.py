"""Store options shared by `processor`, `api` and `demo`, without the processor's imports."""

from __future__ import annotations

from exporter.metrics import StoreWatchMetrics
from exporter.settings import Settings
from exporter.store.observer import StoreObserver
from exporter.store.series import SeriesPolicy


def series_policy(settings: Settings) -> SeriesPolicy:
    """The event-time bucket part of the settings."""
    return SeriesPolicy(
        enabled=settings.series_enabled, retention_seconds=settings.series_retention
    )


def store_observer(metrics: StoreWatchMetrics) -> StoreObserver:
    """The store's reports of Redis itself, counted on the process's metrics."""

    def evicting(policy: str | None) -> None:
        metrics.evicting.set(0 if policy is None else 1)

    def totals_lost(_: object) -> None:
        metrics.totals_lost.inc()

    return StoreObserver(totals_lost=totals_lost, evicting=evicting)


__all__ = ["series_policy", "store_observer"]
