"""A single-process store for demos and tests, with the same contract as the Redis store."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(slots=True)
class _Totals:
    count: int = 0
    sum_micros: int = 0
    last_applied: datetime | None = None


class MemoryStore:
    """Keeps totals and remembered identities in this process; lost when it exits."""

    def __init__(
        self,
        *,
        dedupe_window_seconds: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
        max_types: int = DEFAULT_MAX_TYPES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = dedupe_window_seconds
        self._max_types = max_types
        self._clock = clock
        self._totals: dict[str, _Totals] = {}
        # Insertion order is expiry order because every identity gets the same window.
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = asyncio.Lock()

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            identity, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[identity]

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Add each event whose identity is new, all or nothing with respect to other calls."""
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
                totals = self._totals.setdefault(name, _Totals())
                totals.count += delta.count
                totals.sum_micros += delta.sum_micros
                totals.last_applied = now
            return ApplyResult(tuple(outcomes))

    def _current(self, name: str) -> _Totals:
        return self._totals.get(name) or _Totals()

    async def snapshot(self) -> Snapshot:
        """A copy of all totals, sorted by type."""
        async with self._lock:
            return Snapshot(
                tuple(
                    TypeTotals(name, t.count, t.sum_micros, t.last_applied)
                    for name, t in sorted(self._totals.items())
                )
            )

    async def reset(self) -> None:
        """Forget all totals; remembered identities stay."""
        async with self._lock:
            self._totals.clear()

    async def ping(self) -> None:
        """Always reachable."""

    async def probe_write(self) -> None:
        """Always writable."""

    async def close(self) -> None:
        """Nothing to release."""
