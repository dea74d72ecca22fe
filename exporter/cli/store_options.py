"""Store options shared by `processor`, `api` and `demo`, without the processor's imports."""

from __future__ import annotations

from exporter.settings import Settings
from exporter.store.series import SeriesPolicy


def series_policy(settings: Settings) -> SeriesPolicy:
    """The event-time bucket part of the settings."""
    return SeriesPolicy(
        enabled=settings.series_enabled, retention_seconds=settings.series_retention
    )


__all__ = ["series_policy"]
