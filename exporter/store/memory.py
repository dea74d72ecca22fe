"""A single-process store for demos and tests, with the same contract as the Redis store.

Its data (`MemoryData`) may be shared by stores of different configurations, as one Redis is
shared by processes: two processors of a rolling restart, or a processor and the API.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from exporter.events import Event
from exporter.store import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    DEFAULT_MAX_TYPES,
    MAX_ABS_SUM_UNITS,
    ApplyResult,
    Outcome,
    Snapshot,
    TypeTotals,
)
from exporter.store.detail import Breakdown, CountingConfig, Detail, Fold
from exporter.store.memory_tallies import Tallies
from exporter.store.series import MinuteTotals, SeriesPolicy


@dataclass(slots=True)
class _Totals:
    count: int = 0
    sum_micros: int = 0
    last_applied: datetime | None = None


class MemoryData:
    """What memory stores keep: totals, remembered identities, buckets, rejected counts and
    dimensions, under one lock, so that every call is atomic with respect to the others."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.totals: dict[str, _Totals] = {}
        # Insertion order is expiry order because every identity gets the same window.
        self.seen: OrderedDict[str, float] = OrderedDict()
        self.buckets = _Buckets()
        self.rejected: dict[str, int] = {}
        self.tallies = Tallies()
        # When these totals began: the first applied event, or the last reset (decision 0017).
        self.since: datetime | None = None


class MemoryStore:
    """Keeps totals and remembered identities in this process; lost when it exits.

    `counting` is this store's configuration (dimensions, caps, value buckets); `data`, when
    given, is shared with other memory stores.
    """

    def __init__(
        self,
        *,
        dedupe_window_seconds: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
        max_types: int = DEFAULT_MAX_TYPES,
        clock: Callable[[], float] = time.monotonic,
        series: SeriesPolicy | None = None,
        wall_clock: Callable[[], float] = time.time,
        counting: CountingConfig | None = None,
        data: MemoryData | None = None,
    ) -> None:
        self._window = dedupe_window_seconds
        self._max_types = max_types
        self._clock = clock
        self._data = data if data is not None else MemoryData()
        self._totals = self._data.totals
        self._seen = self._data.seen
        self._lock = self._data.lock
        self._series = series or SeriesPolicy()
        self._wall_clock = wall_clock
        self._rejected = self._data.rejected
        self._tallies = self._data.tallies
        self._counting = counting or CountingConfig()

    @property
    def counting(self) -> CountingConfig:
        """The configuration this store writes and reads with."""
        return self._counting

    @property
    def data(self) -> MemoryData:
        """What this store keeps, to share with another store."""
        return self._data

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            identity, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[identity]

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Add each event whose identity is new, all or nothing with respect to other calls."""
        self._counting.check(batch)
        async with self._lock:
            self._expire()
            outcomes: list[Outcome] = []
            pending: dict[str, _Totals] = {}
            applied_ids: set[str] = set()
            new_types = 0
            for identity, event in batch:
                if identity in self._seen or identity in applied_ids:
                    outcomes.append("duplicate")
                    continue
                if event.type not in self._totals and event.type not in pending:
                    if len(self._totals) + new_types >= self._max_types:
                        outcomes.append("too_many_types")
                        continue
                    new_types += 1
                delta = pending.setdefault(event.type, _Totals())
                delta.count += 1
                delta.sum_micros += event.value_micros
                applied_ids.add(identity)
                outcomes.append("applied")
            overflowing = {
                name
                for name, delta in pending.items()
                if abs(self._current(name).sum_micros + delta.sum_micros) // 1_000_000
                > MAX_ABS_SUM_UNITS
            }
            now = datetime.now(UTC)
            expires = self._clock() + self._window
            for index, (identity, event) in enumerate(batch):
                if outcomes[index] != "applied":
                    continue
                if event.type in overflowing:
                    outcomes[index] = "sum_overflow"
                    continue
                self._seen[identity] = expires
            for name, delta in pending.items():
                if name in overflowing:
                    continue
                if self._data.since is None:
                    self._data.since = now
                totals = self._totals.setdefault(name, _Totals())
                totals.count += delta.count
                totals.sum_micros += delta.sum_micros
                totals.last_applied = now
            unbucketed = self._add_to_buckets(batch, outcomes) if self._series.enabled else ()
            folds: list[Fold] = []
            for index, ((_, event), outcome) in enumerate(zip(batch, outcomes, strict=True)):
                if outcome == "applied":
                    folds += self._tallies.add(index, event, self._counting, now)
            return ApplyResult(tuple(outcomes), unbucketed, tuple(folds))

    def _add_to_buckets(
        self, batch: Sequence[tuple[str, Event]], outcomes: Sequence[Outcome]
    ) -> tuple[int, ...]:
        """Applied events into their type's minute; the positions of those too old or too new."""
        now_s = self._wall_clock()
        self._data.buckets.expire(self._series.readable_minutes(now_s)[0])
        unbucketed = []
        for index, ((_, event), outcome) in enumerate(zip(batch, outcomes, strict=True)):
            if outcome != "applied":
                continue
            minute = self._series.minute_of(event.occurred_at.timestamp(), now_s)
            if minute is None:
                unbucketed.append(index)
            else:
                self._data.buckets.add(event.type, minute, event.value_micros)
        return tuple(unbucketed)

    def _current(self, name: str) -> _Totals:
        return self._totals.get(name) or _Totals()

    async def snapshot(self) -> Snapshot:
        """A copy of all totals, sorted by type."""
        async with self._lock:
            return Snapshot(self._copy_totals(), self._data.since)

    def _copy_totals(self) -> tuple[TypeTotals, ...]:
        return tuple(
            TypeTotals(name, t.count, t.sum_micros, t.last_applied)
            for name, t in sorted(self._totals.items())
        )

    async def breakdown(self, event_type: str, dimension: str) -> Breakdown | None:
        """One type's totals by the values of `dimension`; None for a type never applied."""
        async with self._lock:
            totals = self._totals.get(event_type)
            if totals is None:
                return None
            return self._tallies.breakdown(
                TypeTotals(event_type, totals.count, totals.sum_micros, totals.last_applied),
                dimension,
            )

    async def detail(self) -> Detail:
        """Every type's totals, value buckets and this configuration's joint table."""
        async with self._lock:
            detail = self._tallies.detail(self._copy_totals(), self._counting)
            return replace(detail, counting_since=self._data.since)

    async def reset(self) -> None:
        """Forget all totals, buckets, dimensions and rejected counts; identities stay."""
        async with self._lock:
            self._totals.clear()
            self._data.buckets = _Buckets()
            self._rejected.clear()
            self._tallies.clear()
            self._data.since = datetime.now(UTC)

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        """One type's buckets of [first, end), leaving out minutes past retention."""
        async with self._lock:
            oldest = self._series.readable_minutes(self._wall_clock())[0]
            return self._data.buckets.read(event_type, max(first_minute, oldest), end_minute)

    async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
        """Add to the rejected counts."""
        async with self._lock:
            for reason, count in by_reason.items():
                self._rejected[reason] = self._rejected.get(reason, 0) + count

    async def rejected(self) -> Mapping[str, int]:
        """A copy of the rejected counts."""
        async with self._lock:
            return dict(self._rejected)

    async def ping(self) -> None:
        """Always reachable."""

    async def probe_write(self) -> None:
        """Always writable."""

    async def close(self) -> None:
        """Nothing to release."""


class _Buckets:
    """Per type and UTC minute: count and millionths; whole minutes expire together."""

    def __init__(self) -> None:
        self._by_type: dict[str, dict[int, MinuteTotals]] = {}
        self._oldest = 0  # no bucket is older than this minute

    def add(self, event_type: str, minute: int, micros: int) -> None:
        minutes = self._by_type.setdefault(event_type, {})
        current = minutes.get(minute)
        minutes[minute] = MinuteTotals(
            (current.count if current else 0) + 1, (current.sum_micros if current else 0) + micros
        )

    def expire(self, oldest: int) -> None:
        # Scanning every bucket is linear; once an hour of event time is plenty for a demo store.
        if oldest - self._oldest < 60:
            return
        self._oldest = oldest
        for minutes in self._by_type.values():
            for minute in [m for m in minutes if m < oldest]:
                del minutes[minute]

    def read(self, event_type: str, first: int, end: int) -> dict[int, MinuteTotals]:
        minutes = self._by_type.get(event_type, {})
        if end - first > len(minutes):
            return {m: t for m, t in minutes.items() if first <= m < end}
        return {m: minutes[m] for m in range(first, end) if m in minutes}
