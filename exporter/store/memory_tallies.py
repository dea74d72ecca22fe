"""The memory store's dimensions and value buckets (decisions 0020 and 0021): per type, the
marginals of each dimension, the joint table of each configuration, the value histogram, and
the admission sets that bound them; the same rules the Redis store's scripts follow."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from exporter.events import ABSENT, OTHER, Event
from exporter.store.detail import (
    ALL_DIMENSIONS,
    Breakdown,
    CombinationTotals,
    CountingConfig,
    Detail,
    Fold,
    Tally,
    TypeDetail,
    ValueTotals,
)
from exporter.store.histograms import stored_buckets

if TYPE_CHECKING:
    from exporter.store import TypeTotals


@dataclass(slots=True)
class _Cell:
    """A count, an exact sum and value buckets (canonical bound text to events in it)."""

    count: int = 0
    micros: int = 0
    buckets: dict[str, int] = field(default_factory=dict)

    def add(self, micros: int, bucket: str | None) -> None:
        self.count += 1
        self.micros += micros
        if bucket is not None:
            self.buckets[bucket] = self.buckets.get(bucket, 0) + 1


@dataclass(slots=True)
class _Joint:
    """One (type, configuration)'s joint table, since its first write."""

    since: datetime
    cells: dict[tuple[str, ...], _Cell] = field(default_factory=dict)
    folded: int = 0


class Tallies:
    """Everything counted beyond per-type totals, shared by stores of any configuration."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget everything (a reset)."""
        self._marginals: dict[tuple[str, str], dict[str, _Cell]] = {}
        self._dimension_since: dict[tuple[str, str], datetime] = {}
        self._histograms: dict[str, _Cell] = {}
        self._joints: dict[tuple[str, str], _Joint] = {}
        # Admission: a value or a combination, once in its set, counts under its own name until
        # a reset; `__absent__` and `__other__` (and the all-`__other__` combination) never
        # enter a set, so they never take a place under a cap.
        self._values: dict[tuple[str, str], set[str]] = {}
        self._combinations: dict[tuple[str, str], set[tuple[str, ...]]] = {}

    def add(self, position: int, event: Event, config: CountingConfig, now: datetime) -> list[Fold]:
        """Count one applied event; what of it was folded, and why."""
        bucket = config.buckets.text_of(event.value_micros) if config.buckets.enabled else None
        micros = event.value_micros
        self._histograms.setdefault(event.type, _Cell()).add(micros, bucket)
        if not config.dimensions:
            return []
        folds: list[Fold] = []
        values: list[str] = []
        for name, given in zip(config.dimensions, event.dimensions, strict=True):
            key = (event.type, name)
            value = given
            if value == OTHER:
                folds.append(Fold(position, name, "invalid"))
            elif value != ABSENT:
                admitted = self._values.setdefault(key, set())
                if value not in admitted:
                    if len(admitted) >= config.max_values:
                        folds.append(Fold(position, name, "values"))
                        value = OTHER
                    else:
                        admitted.add(value)
            values.append(value)
            self._marginals.setdefault(key, {}).setdefault(value, _Cell()).add(micros, None)
            self._dimension_since.setdefault(key, now)
        combination = tuple(values)
        joint_key = (event.type, config.configuration_id)
        joint = self._joints.setdefault(joint_key, _Joint(now))
        if combination != config.all_other:
            admitted_combinations = self._combinations.setdefault(joint_key, set())
            if combination not in admitted_combinations:
                if len(admitted_combinations) >= config.max_combinations:
                    folds.append(Fold(position, ALL_DIMENSIONS, "combinations"))
                    joint.folded += 1
                    combination = config.all_other
                else:
                    admitted_combinations.add(combination)
        joint.cells.setdefault(combination, _Cell()).add(micros, bucket)
        return folds

    def breakdown(self, totals: TypeTotals, dimension: str) -> Breakdown:
        """The marginals of one type and dimension, and what the type counted outside them."""
        key = (totals.type, dimension)
        cells = self._marginals.get(key, {})
        values = sorted(
            (ValueTotals(value, Tally(cell.count, cell.micros)) for value, cell in cells.items()),
            key=lambda v: (-v.tally.count, v.value),
        )
        counted = sum(cell.count for cell in cells.values())
        summed = sum(cell.micros for cell in cells.values())
        return Breakdown(
            totals.type,
            dimension,
            self._dimension_since.get(key),
            tuple(values),
            Tally(max(totals.count - counted, 0), totals.sum_micros - summed),
        )

    def detail(self, types: Iterable[TypeTotals], config: CountingConfig) -> Detail:
        """Each type's value histogram and, for `config`'s configuration, its joint table."""
        return Detail(tuple(self._type_detail(totals, config) for totals in types))

    def _type_detail(self, totals: TypeTotals, config: CountingConfig) -> TypeDetail:
        histogram = self._histograms.get(totals.type)
        buckets = stored_buckets(histogram.buckets.items()) if histogram else ()
        if not config.dimensions:
            return TypeDetail(totals, buckets)
        joint = self._joints.get((totals.type, config.configuration_id))
        cells = sorted(joint.cells.items()) if joint else []
        combinations = tuple(
            CombinationTotals(
                values, Tally(cell.count, cell.micros), stored_buckets(cell.buckets.items())
            )
            for values, cell in cells
        )
        folded = tuple(
            (name, self._marginals.get((totals.type, name), {}).get(OTHER, _Cell()).count)
            for name in config.dimensions
        )
        return TypeDetail(
            totals,
            buckets,
            combinations,
            joint.since if joint else None,
            folded,
            joint.folded if joint else 0,
        )


__all__ = ["Tallies"]
