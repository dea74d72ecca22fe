"""What a store counts beyond per-type totals (decisions 0020 and 0021): the configuration it is
given, what an apply folded, and the two reads, a type's breakdown by one dimension and the
detail of every type (value buckets and the joint table of combinations)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

from exporter.events import OTHER, Event, micros_to_decimal
from exporter.store.histograms import DEFAULT_BOUNDS, BucketBounds, StoredBuckets, subtract

if TYPE_CHECKING:
    from exporter.store import TypeTotals

DEFAULT_MAX_DIMENSION_VALUES: Final = 250
DEFAULT_MAX_DIMENSION_COMBINATIONS: Final = 1000
UNATTRIBUTED: Final = "__unattributed__"
"""Every dimension's value on the series of a type's events outside the reader's joint table."""
ALL_DIMENSIONS: Final = "*"
"""The dimension of a fold by the combination cap: the whole combination, not one dimension."""

FoldReason = Literal["invalid", "values", "combinations"]
"""Why a dimension of an applied event was counted under `__other__`."""


@dataclass(frozen=True, slots=True)
class CountingConfig:
    """What a process counts beyond per-type totals, given to its store at construction.

    `dimensions` (sorted) is its configuration; the caps bound the values per dimension of a
    type and the combinations per type and configuration; `buckets` are the value buckets'
    upper bounds (no bounds: no buckets). A processor's store writes with it, and a reader's
    store reads the joint table of its configuration.
    """

    dimensions: tuple[str, ...] = ()
    max_values: int = DEFAULT_MAX_DIMENSION_VALUES
    max_combinations: int = DEFAULT_MAX_DIMENSION_COMBINATIONS
    buckets: BucketBounds = DEFAULT_BOUNDS

    def __post_init__(self) -> None:
        if list(self.dimensions) != sorted(set(self.dimensions)):
            raise ValueError("dimension names must be sorted and distinct")
        if self.max_values < 1 or self.max_combinations < 1:
            raise ValueError("the dimension caps must be at least 1")

    @property
    def configuration_id(self) -> str:
        """The configuration's name in keys: its dimensions joined by `,` (sorted)."""
        return ",".join(self.dimensions)

    @property
    def all_other(self) -> tuple[str, ...]:
        """The combination every event past the combination cap is counted under."""
        return (OTHER,) * len(self.dimensions)

    def check(self, batch: Iterable[tuple[str, Event]]) -> None:
        """ValueError unless every event carries one value per dimension: events read with
        other contract options are a wiring mistake that would count values under the wrong
        dimensions, so a store applies nothing of such a batch."""
        width = len(self.dimensions)
        for _, event in batch:
            if len(event.dimensions) != width:
                raise ValueError(
                    f"an event with {len(event.dimensions)} dimension values was given to a "
                    f"store of {width} dimensions"
                )


@dataclass(frozen=True, slots=True)
class Fold:
    """One applied event of a batch whose `dimension` was counted under `__other__`, and why.

    `reason` is `invalid` (the value broke the rule), `values` (past the value cap) or
    `combinations` (past the combination cap, in the joint table only; `dimension` is `*`).
    """

    position: int
    dimension: str
    reason: FoldReason


class Summed:
    """The sum and mean of anything with a `count` and an exact `sum_micros`."""

    __slots__ = ()
    count: int
    sum_micros: int

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
        """The mean, or None when nothing was counted."""
        return float(self.sum_decimal / self.count) if self.count else None


@dataclass(frozen=True, slots=True)
class Tally(Summed):
    """A count and an exact sum in millionths."""

    count: int
    sum_micros: int


@dataclass(frozen=True, slots=True)
class ValueTotals:
    """One value of one dimension of a type: its events' count and exact sum."""

    value: str
    tally: Tally


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A type's totals by the values of one dimension, exact per admitted value.

    `values` are sorted by count, most first, then by value; `__absent__` and `__other__` are
    values like any other. `unattributed` is the type's total less the values' sum: events
    applied by processors that did not declare the dimension. `since` is when the dimension's
    first event of this type was counted (since the last reset).
    """

    type: str
    dimension: str
    since: datetime | None
    values: tuple[ValueTotals, ...]
    unattributed: Tally


@dataclass(frozen=True, slots=True)
class CombinationTotals:
    """One combination of the joint table: its values in configuration order, count, exact sum
    and value buckets."""

    values: tuple[str, ...]
    tally: Tally
    buckets: StoredBuckets = ()


@dataclass(frozen=True, slots=True)
class TypeDetail:
    """One type as /metrics and /stats show it, read at one moment.

    `buckets` is the type's value histogram (every processor's events, whatever its
    configuration); `combinations` the joint table of the reader's configuration, begun at
    `since`; `folded` the events counted under `__other__` per dimension of that configuration,
    and `folded_combinations` those folded by its combination cap.
    """

    totals: TypeTotals
    buckets: StoredBuckets = ()
    combinations: tuple[CombinationTotals, ...] = ()
    since: datetime | None = None
    folded: tuple[tuple[str, int], ...] = ()
    folded_combinations: int = 0

    def unattributed(self, width: int) -> CombinationTotals:
        """The type's events outside the joint table (counted before its configuration began,
        or by processors of another): totals less the table's, never negative, labelled
        `__unattributed__` on each of `width` dimensions."""
        count = sum(c.tally.count for c in self.combinations)
        micros = sum(c.tally.sum_micros for c in self.combinations)
        left = max(self.totals.count - count, 0)
        return CombinationTotals(
            (UNATTRIBUTED,) * width,
            Tally(left, self.totals.sum_micros - micros if left else 0),
            subtract(self.buckets, (c.buckets for c in self.combinations)),
        )


@dataclass(frozen=True, slots=True)
class Detail:
    """Every known type's detail, sorted by type; `counting_since` as the snapshot's."""

    types: tuple[TypeDetail, ...] = field(default=())
    counting_since: datetime | None = None

    def get(self, event_type: str) -> TypeDetail | None:
        """One type's detail, or None if it was never applied."""
        return next((t for t in self.types if t.totals.type == event_type), None)


__all__ = [
    "ALL_DIMENSIONS",
    "DEFAULT_MAX_DIMENSION_COMBINATIONS",
    "DEFAULT_MAX_DIMENSION_VALUES",
    "UNATTRIBUTED",
    "Breakdown",
    "CombinationTotals",
    "CountingConfig",
    "Detail",
    "Fold",
    "FoldReason",
    "Summed",
    "Tally",
    "TypeDetail",
    "ValueTotals",
]
