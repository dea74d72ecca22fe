"""Dimensions and value buckets read back from Redis (decisions 0020, 0021): every shard's
detail and joint hashes summed into a Breakdown or a Detail. Pure: no I/O.

A detail hash (`ShardKeys.detail`) holds one type's marginals, `c|<dimension>|<value>`,
`u|...` (whole units) and `f|...` (millionths), the first moment each dimension was counted,
`s|<dimension>` (unix ms), and the type's value buckets, `h|<bound>`. A joint hash
(`ShardKeys.joint`) holds one type's combinations of one configuration, `c|u|f|<combination>`
(values joined by `|`), their buckets `h|<bound>|<combination>`, `folded` and `since`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exporter.events import MICROS_PER_UNIT, OTHER
from exporter.store import TypeTotals
from exporter.store.detail import (
    Breakdown,
    CombinationTotals,
    CountingConfig,
    Tally,
    TypeDetail,
    ValueTotals,
)
from exporter.store.histograms import stored_buckets

Raw = dict[bytes, bytes]


def pairs(flat: Sequence[bytes]) -> Raw:
    """A flat HGETALL reply (as a script returns it) as a dict."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


@dataclass(slots=True)
class _Cells:
    """Counts and exact sums by cell, value buckets by field, the earliest moments."""

    counts: dict[bytes, int] = field(default_factory=dict)
    micros: dict[bytes, int] = field(default_factory=dict)
    buckets: dict[bytes, int] = field(default_factory=dict)
    since: dict[bytes, int] = field(default_factory=dict)
    folded: int = 0

    def add(self, raw: Raw) -> None:
        for key, value in raw.items():
            kind, _, cell = key.partition(b"|")
            if kind == b"c":
                self.counts[cell] = self.counts.get(cell, 0) + int(value)
            elif kind == b"u":
                self.micros[cell] = self.micros.get(cell, 0) + int(value) * MICROS_PER_UNIT
            elif kind == b"f":
                self.micros[cell] = self.micros.get(cell, 0) + int(value)
            elif kind == b"h":
                self.buckets[cell] = self.buckets.get(cell, 0) + int(value)
            elif kind in (b"s", b"since"):
                moment = int(value)
                current = self.since.get(cell)
                self.since[cell] = moment if current is None else min(current, moment)
            elif kind == b"folded":
                self.folded += int(value)

    def tally(self, cell: bytes) -> Tally:
        return Tally(self.counts.get(cell, 0), self.micros.get(cell, 0))


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def decode_breakdown(totals: TypeTotals, dimension: str, details: Iterable[Raw]) -> Breakdown:
    """One type's totals by the values of `dimension`, from every shard's detail hash."""
    cells = _Cells()
    for raw in details:
        cells.add(raw)
    prefix = dimension.encode() + b"|"
    values = sorted(
        (
            ValueTotals(cell[len(prefix) :].decode(), cells.tally(cell))
            for cell in cells.counts
            if cell.startswith(prefix)
        ),
        key=lambda v: (-v.tally.count, v.value),
    )
    counted = sum(v.tally.count for v in values)
    summed = sum(v.tally.sum_micros for v in values)
    return Breakdown(
        totals.type,
        dimension,
        _moment(cells.since.get(dimension.encode())),
        tuple(values),
        Tally(max(totals.count - counted, 0), totals.sum_micros - summed),
    )


def decode_type_detail(
    totals: TypeTotals, counting: CountingConfig, details: Iterable[Raw], joints: Iterable[Raw]
) -> TypeDetail:
    """One type's value buckets and, for `counting`'s configuration, its joint table."""
    marginals = _Cells()
    for raw in details:
        marginals.add(raw)
    buckets = stored_buckets((bound.decode(), n) for bound, n in marginals.buckets.items())
    if not counting.dimensions:
        return TypeDetail(totals, buckets)
    table = _Cells()
    for raw in joints:
        table.add(raw)
    by_combination: dict[bytes, list[tuple[str, int]]] = {}
    for cell, n in table.buckets.items():
        bound, _, combination = cell.partition(b"|")
        by_combination.setdefault(combination, []).append((bound.decode(), n))
    combinations = tuple(
        sorted(
            (
                CombinationTotals(
                    tuple(cell.decode().split("|")),
                    table.tally(cell),
                    stored_buckets(by_combination.get(cell, ())),
                )
                for cell in table.counts
            ),
            key=lambda c: c.values,
        )
    )
    other = OTHER.encode()
    folded = tuple(
        (name, marginals.counts.get(name.encode() + b"|" + other, 0))
        for name in counting.dimensions
    )
    return TypeDetail(
        totals,
        buckets,
        combinations,
        _moment(table.since.get(b"")),
        folded,
        table.folded,
    )


__all__ = ["Raw", "decode_breakdown", "decode_type_detail", "pairs"]
