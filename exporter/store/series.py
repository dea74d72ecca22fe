"""Event-time series: which UTC minute an event belongs to, and minutes summed into steps.

Pure arithmetic shared by every store and the API; no I/O. Buckets are per type and per UTC
minute of `occurred_at` (decision 0008), with the same exact count and millionths as the totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

MINUTE: Final = 60
HOUR: Final = 3600
DEFAULT_SERIES_RETENTION_SECONDS: Final = 7 * 24 * HOUR
# Producers' clocks drift; past this an event is more likely a wrong clock than the future.
FUTURE_TOLERANCE_SECONDS: Final = 5 * MINUTE
MAX_POINTS: Final = 10_000


@dataclass(frozen=True, slots=True)
class SeriesPolicy:
    """Whether buckets are kept, for how long, and how far ahead an event may claim to be."""

    enabled: bool = True
    retention_seconds: int = DEFAULT_SERIES_RETENTION_SECONDS
    future_tolerance_seconds: int = FUTURE_TOLERANCE_SECONDS

    def minute_of(self, occurred_at_s: float, now_s: float) -> int | None:
        """The UTC minute (seconds since the epoch // 60) of a bucketable moment, else None."""
        if now_s - occurred_at_s > self.retention_seconds:
            return None
        if occurred_at_s - now_s > self.future_tolerance_seconds:
            return None
        return int(occurred_at_s // MINUTE)

    def readable_minutes(self, now_s: float) -> tuple[int, int]:
        """The minutes [first, last) that may still hold a bucket at `now_s`."""
        first = int((now_s - self.retention_seconds) // MINUTE)
        last = int((now_s + self.future_tolerance_seconds) // MINUTE) + 1
        return first, last


@dataclass(frozen=True, slots=True)
class MinuteTotals:
    """Count and exact sum (millionths) of one type's events in one UTC minute."""

    count: int = 0
    sum_micros: int = 0

    def __add__(self, other: MinuteTotals) -> MinuteTotals:
        return MinuteTotals(self.count + other.count, self.sum_micros + other.sum_micros)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One step of a series: it covers [start_s, start_s + step)."""

    start_s: int
    count: int
    sum_micros: int


def to_steps(
    minutes: Mapping[int, MinuteTotals], start_s: int, step_s: int, points: int
) -> list[SeriesPoint]:
    """Every step from `start_s` (a whole minute), empty ones as zeros; minutes outside dropped."""
    counts = [0] * points
    sums = [0] * points
    first_minute = start_s // MINUTE
    per_step = step_s // MINUTE
    for minute, totals in minutes.items():
        index = (minute - first_minute) // per_step
        if 0 <= index < points:
            counts[index] += totals.count
            sums[index] += totals.sum_micros
    return [SeriesPoint(start_s + i * step_s, counts[i], sums[i]) for i in range(points)]


def merge(parts: Iterable[Mapping[int, MinuteTotals]]) -> dict[int, MinuteTotals]:
    """Minutes of several partial stores (shards) added together."""
    total: dict[int, MinuteTotals] = {}
    for part in parts:
        for minute, totals in part.items():
            current = total.get(minute)
            total[minute] = totals if current is None else current + totals
    return total


__all__ = [
    "DEFAULT_SERIES_RETENTION_SECONDS",
    "FUTURE_TOLERANCE_SECONDS",
    "HOUR",
    "MAX_POINTS",
    "MINUTE",
    "MinuteTotals",
    "SeriesPoint",
    "SeriesPolicy",
    "merge",
    "to_steps",
]
