"""The aggregate store: per-type count and exact sum, each event identity applied at most once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal, Protocol

from exporter.events import Event, micros_to_decimal
from exporter.store.series import MinuteTotals

Outcome = Literal["applied", "duplicate", "too_many_types", "sum_overflow"]
"""What `apply` did with one event of a batch."""

DEFAULT_MAX_TYPES: Final = 1000
DEFAULT_DEDUPE_WINDOW_SECONDS: Final = 3600

# Sums are kept as whole units plus millionths; the whole part is a signed 64-bit integer in
# Redis, and a batch that would push a type's sum past this bound is refused for that type.
MAX_ABS_SUM_UNITS: Final = 9 * 10**18


class StoreUnavailable(Exception):
    """The store could not be reached or refused the call; nothing of the call was half-applied."""


class StoreRefused(StoreUnavailable):
    """The store answered but refused the call for a cause that waiting alone will not clear.

    READONLY (a replica or a demoted primary), out of memory, a script or type error, a refused
    password, a database that does not exist: the message carries Redis's own words, so an
    operator sees what to fix. Nothing of the call was applied. `advice` says what to change
    when the configuration itself is refused (REDIS_URL, the shard count).
    """

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.advice = advice

    @property
    def configuration(self) -> bool:
        """Whether the settings are what is refused: fixing them, not the data, clears it."""
        return self.advice is not None


class StoreUnfit(StoreRefused):
    """Redis takes writes but is set up so that totals could silently go wrong (an evicting
    maxmemory-policy): a refusal at start-up, a pause afterwards; `advice` names the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message, advice=message)


class ReplicasMissing(StoreUnavailable):
    """Redis answered, but fewer replicas than EXPORTER_REDIS_MIN_REPLICAS acknowledged a write.

    Not an outage of Redis, and not a refusal either: a replica that resyncs comes back by itself.
    """

    def __init__(self, message: str, *, acknowledged: int = 0, required: int = 0) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged
        self.required = required


class StoreMisconfigured(StoreRefused):
    """The data in the store was laid out with other settings (the shard count); never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, advice=message)


@dataclass(frozen=True, slots=True)
class TypeTotals:
    """Totals of one event type since the last reset."""

    type: str
    count: int
    sum_micros: int
    last_applied: datetime | None = None

    @property
    def sum(self) -> float:
        """The exact sum rounded once to the nearest float."""
        return float(self.sum_decimal)

    @property
    def sum_decimal(self) -> Decimal:
        """The sum with its six decimals exactly."""
        return micros_to_decimal(self.sum_micros)

    @property
    def mean(self) -> float | None:
        """The mean value, or None before the first event."""
        return float(self.sum_decimal / self.count) if self.count else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Totals of every known type, sorted by type."""

    types: tuple[TypeTotals, ...]
    counting_since: datetime | None = None
    """From when every applied event is in these totals (their beginning, a reset, or the
    moment Redis was found to have lost them); None before the first write (decision 0017)."""

    def get(self, event_type: str) -> TypeTotals | None:
        """Totals of one type, or None if it was never applied."""
        return next((t for t in self.types if t.type == event_type), None)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """One outcome per event of the batch, in the batch's order.

    `unbucketed` holds the positions of applied events that went into the totals but into no
    event-time bucket (older than the series retention, or too far in the future).
    """

    outcomes: tuple[Outcome, ...]
    unbucketed: tuple[int, ...] = ()

    def part(self, start: int, end: int) -> ApplyResult:
        """The result of the events at positions [start, end), renumbered from 0."""
        return ApplyResult(
            self.outcomes[start:end],
            tuple(i - start for i in self.unbucketed if start <= i < end),
        )


class Store(Protocol):
    """Where every processor replica adds its events, and where the API reads the totals."""

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Atomically add every (identity, event) whose identity was not applied in the window."""
        ...

    async def snapshot(self) -> Snapshot:
        """A consistent view of all totals."""
        ...

    async def reset(self) -> None:
        """Forget all totals, buckets and rejected counts at once; identities stay remembered."""
        ...

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        """One type's non-empty event-time buckets of the UTC minutes [first, end)."""
        ...

    async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
        """Add to the counts of rejected events by reason (at least once, not exactly once)."""
        ...

    async def rejected(self) -> Mapping[str, int]:
        """Rejected events by reason since the last reset."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""
        ...

    async def probe_write(self) -> None:
        """Raise `StoreUnavailable` (`StoreRefused` naming why) unless a write goes through."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


__all__ = [
    "DEFAULT_DEDUPE_WINDOW_SECONDS",
    "DEFAULT_MAX_TYPES",
    "MAX_ABS_SUM_UNITS",
    "ApplyResult",
    "Outcome",
    "ReplicasMissing",
    "Snapshot",
    "Store",
    "StoreMisconfigured",
    "StoreRefused",
    "StoreUnavailable",
    "StoreUnfit",
    "TypeTotals",
]
