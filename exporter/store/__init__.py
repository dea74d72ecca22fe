"""The aggregate store: per-type count and exact sum, each event identity applied at most once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

from exporter.events import Event
from exporter.faults import Fatal, Transient
from exporter.store.detail import Breakdown, CountingConfig, Detail, Fold, Summed
from exporter.store.series import MinuteTotals

Outcome = Literal["applied", "duplicate", "too_many_types", "sum_overflow"]
"""What `apply` did with one event of a batch."""

DEFAULT_MAX_TYPES: Final = 1000
DEFAULT_DEDUPE_WINDOW_SECONDS: Final = 3600

# Sums are kept as whole units plus millionths; the whole part is a signed 64-bit integer in
# Redis, and a batch that would push a type's sum past this bound is refused for that type.
MAX_ABS_SUM_UNITS: Final = 9 * 10**18


class StoreUnavailable(Transient):
    """The store could not be reached or did not answer in time; nothing of the call was
    half-applied. It passes by itself: callers wait (the processor pauses, /ready says why)."""


class StoreRefused(Transient):
    """The store answered but refused the call, for a cause someone must clear and that can clear
    while the process runs.

    READONLY (a replica, or a primary demoted by a failover), out of memory, a script or type
    error, a refused password, a database that does not exist: the message carries Redis's own
    words, so an operator sees what to fix. Nothing of the call was applied. The processor pauses
    and probes (a failover ends, memory is freed, a password is granted) and /ready and /health
    name the refusal; at start-up a refusal exits 2 instead of being waited for. `advice` says
    what to change when the configuration itself is refused (REDIS_URL, TLS files).
    """

    @property
    def configuration(self) -> bool:
        """Whether the settings are what is refused: fixing them, not the data, clears it."""
        return self.advice is not None


class StoreUntrusted(StoreRefused):
    """TLS to the store failed for a cause a retry meets again: its certificate does not verify or
    does not name the host, or it refused ours. The message says what failed and what to set;
    the exporter, not Redis, is what refuses here."""


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


class StoreMisconfigured(Fatal):
    """The data in the store was laid out with other settings (the shard count): waiting cannot
    help and guessing would split totals, so the processor stops and the command exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, advice=message)


STORE_ERRORS: Final = (StoreUnavailable, StoreRefused, StoreMisconfigured)
"""Every error a store call raises, for a caller that treats them all alike (an API read that
renders without the store, a reset that did not complete)."""


@dataclass(frozen=True, slots=True)
class TypeTotals(Summed):
    """Totals of one event type since the last reset (`sum`, `sum_decimal`, `mean` from
    `Summed`)."""

    type: str
    count: int
    sum_micros: int
    last_applied: datetime | None = None


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
    event-time bucket (older than the series retention, or too far in the future). `folds` says,
    for applied events only, which dimensions were counted under `__other__` and why, in order of
    position (none for a duplicate: it folds nothing).
    """

    outcomes: tuple[Outcome, ...]
    unbucketed: tuple[int, ...] = ()
    folds: tuple[Fold, ...] = ()

    def part(self, start: int, end: int) -> ApplyResult:
        """The result of the events at positions [start, end), renumbered from 0."""
        return ApplyResult(
            self.outcomes[start:end],
            tuple(i - start for i in self.unbucketed if start <= i < end),
            tuple(
                Fold(f.position - start, f.dimension, f.reason)
                for f in self.folds
                if start <= f.position < end
            ),
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
        """Raise `StoreUnavailable` unless the store answers (`StoreRefused` when it answers
        no, `StoreMisconfigured` when its data was laid out with other settings)."""
        ...

    async def probe_write(self) -> None:
        """Raise `StoreUnavailable` (or `StoreRefused` naming why, or `StoreMisconfigured`)
        unless a write goes through."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    @property
    def counting(self) -> CountingConfig:
        """What this store counts beyond per-type totals (dimensions, their caps, value
        buckets): a processor's store writes with it, a reader's reads its joint table and
        bounds (decisions 0020, 0021)."""
        ...

    async def breakdown(self, event_type: str, dimension: str) -> Breakdown | None:
        """One type's totals by the values of `dimension`; None if the type was never applied."""
        ...

    async def detail(self) -> Detail:
        """Every type's totals, value buckets and the joint table of this store's
        configuration, read at one moment."""
        ...


__all__ = [
    "DEFAULT_DEDUPE_WINDOW_SECONDS",
    "DEFAULT_MAX_TYPES",
    "MAX_ABS_SUM_UNITS",
    "STORE_ERRORS",
    "ApplyResult",
    "Outcome",
    "ReplicasMissing",
    "Snapshot",
    "Store",
    "StoreMisconfigured",
    "StoreRefused",
    "StoreUnavailable",
    "StoreUnfit",
    "StoreUntrusted",
    "TypeTotals",
]
