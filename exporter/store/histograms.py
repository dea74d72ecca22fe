"""Value buckets (decision 0021): the bounds a deployment sets, the bucket of each value, and
stored buckets read back over a reader's own bounds. Pure: no I/O.

A stored bucket is named by its upper bound's canonical text (`format_bound`) and counts, not
cumulatively, the events whose value is at most that bound and above the next smaller bound of
the processor that counted them. Processors of two bound sets may write side by side (a rolling
restart), so a reader never assumes its own bounds were used: a stored bucket counts toward the
reader's bound `b` only when the stored bound is at most `b`. Every cumulative count is then a
lower bound of the truth, and the `+Inf` count, taken from the exact total, is exact.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

DEFAULT_VALUE_BUCKETS: Final[tuple[float, ...]] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
)  # fmt: skip
MAX_BUCKETS: Final = 40
# Values are within +-1e12 (the event contract), so a bound past it would never be reached.
MAX_ABS_BOUND: Final = 10**12
INF: Final = "+Inf"
BOUNDS_RULE: Final = (
    f"at most {MAX_BUCKETS} finite numbers, strictly increasing, each within -1e12..1e12 with "
    "at most six decimals, comma-separated (empty: no buckets)"
)
_MICROS: Final = 10**6


def format_bound(bound: float) -> str:
    """The canonical text of a bound: the shortest decimal that reads back as it, no exponent,
    no trailing zeros (`10`, `0.5`, `2.25`); `+Inf` for infinity."""
    if bound == math.inf:
        return INF
    text = format(Decimal(repr(float(bound))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def parse_bounds(items: Iterable[str | float]) -> tuple[float, ...]:
    """Bounds from their texts (or numbers); ValueError saying which one breaks `BOUNDS_RULE`."""
    bounds: list[float] = []
    for item in items:
        text = str(item).strip()
        try:
            exact = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{text[:40]!r} is not a number; bounds are {BOUNDS_RULE}") from None
        if not exact.is_finite() or abs(exact) > MAX_ABS_BOUND:
            raise ValueError(f"{text[:40]!r} is out of range; bounds are {BOUNDS_RULE}")
        if exact != exact.quantize(Decimal("0.000001"), rounding="ROUND_FLOOR"):
            raise ValueError(f"{text[:40]!r} has more than six decimals; bounds are {BOUNDS_RULE}")
        bound = float(exact)
        if bounds and bound <= bounds[-1]:
            raise ValueError(
                f"{text[:40]!r} does not exceed the bound before it; bounds are {BOUNDS_RULE}"
            )
        bounds.append(bound)
    if len(bounds) > MAX_BUCKETS:
        raise ValueError(f"{len(bounds)} bounds given; bounds are {BOUNDS_RULE}")
    return tuple(bounds)


@dataclass(frozen=True, slots=True)
class BucketBounds:
    """A process's upper bounds (`+Inf` implicit), ready to place values: empty means off."""

    bounds: tuple[float, ...]
    texts: tuple[str, ...]  # each bound's canonical text, then "+Inf"
    thresholds: tuple[int, ...]  # each bound in whole millionths, floored: exact for any value

    @classmethod
    def of(cls, bounds: Iterable[str | float]) -> BucketBounds:
        """Checked bounds; ValueError as `parse_bounds` says."""
        checked = parse_bounds(bounds)
        return cls(
            checked,
            (*(format_bound(b) for b in checked), INF),
            tuple(math.floor(Decimal(repr(b)) * _MICROS) for b in checked),
        )

    @property
    def enabled(self) -> bool:
        """Whether values are bucketed at all."""
        return bool(self.bounds)

    def text_of(self, value_micros: int) -> str:
        """The canonical upper bound of the bucket a value (in millionths) falls in.

        An integer at most a bound's floored millionths is at most the bound, exactly: no float
        rounding can put a value at a bound into the next bucket.
        """
        return self.texts[bisect_left(self.thresholds, value_micros)]


DEFAULT_BOUNDS: Final = BucketBounds.of(DEFAULT_VALUE_BUCKETS)
NO_BUCKETS: Final = BucketBounds.of(())

StoredBuckets = tuple[tuple[float, int], ...]
"""Stored buckets as (upper bound, events in it), not cumulative, sorted by bound."""


def stored_buckets(by_text: Iterable[tuple[str, int]]) -> StoredBuckets:
    """Stored buckets from (canonical bound text, count) pairs; empty buckets left out."""
    return tuple(sorted((float(text), count) for text, count in by_text if count))


def cumulative(stored: StoredBuckets, bounds: Sequence[float], total: int) -> tuple[int, ...]:
    """Events at most each of `bounds`, then `total` for `+Inf`.

    A stored bucket counts toward a bound only when its own bound is at most that bound, so with
    stored bounds other than the reader's each count is a lower bound; `+Inf` is `total`, the
    exact count, which also holds the events no processor put in a bucket.
    """
    counts: list[int] = []
    running = 0
    index = 0
    for bound in bounds:
        while index < len(stored) and stored[index][0] <= bound:
            running += stored[index][1]
            index += 1
        counts.append(min(running, total))
    counts.append(total)
    return tuple(counts)


def subtract(whole: StoredBuckets, part: Iterable[StoredBuckets]) -> StoredBuckets:
    """`whole` less every bucket of each of `part`, bound by bound, never below zero."""
    left = dict(whole)
    for buckets in part:
        for bound, count in buckets:
            if bound in left:
                left[bound] -= count
    return tuple((bound, count) for bound, count in sorted(left.items()) if count > 0)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A quantile estimated from buckets, and the bucket it lies in (None: unbounded there)."""

    value: float
    lower: float | None
    upper: float | None


def estimate_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> Estimate | None:
    """The q-quantile from cumulative `counts` (one per bound, then `+Inf`) as Prometheus's
    `histogram_quantile` computes it: linear within the bucket, 0 as the lower edge of a first
    bucket whose bound is positive, the highest finite bound for the `+Inf` bucket. None when
    nothing was counted or there are no finite bounds."""
    total = counts[-1] if counts else 0
    if not bounds or total <= 0:
        return None
    rank = q * total
    # The first finite bucket whose cumulative count reaches the rank, else the +Inf bucket.
    index = next((i for i, count in enumerate(counts[:-1]) if count >= rank), len(bounds))
    if index == len(bounds):
        return Estimate(bounds[-1], bounds[-1], None)
    upper = bounds[index]
    if index == 0:
        if upper <= 0:
            return Estimate(upper, None, upper)
        start, below = 0.0, 0
    else:
        start, below = bounds[index - 1], counts[index - 1]
    in_bucket = counts[index] - below
    value = start + (upper - start) * ((rank - below) / in_bucket) if in_bucket else upper
    return Estimate(value, bounds[index - 1] if index else None, upper)


__all__ = [
    "BOUNDS_RULE",
    "DEFAULT_BOUNDS",
    "DEFAULT_VALUE_BUCKETS",
    "INF",
    "MAX_BUCKETS",
    "NO_BUCKETS",
    "BucketBounds",
    "Estimate",
    "StoredBuckets",
    "cumulative",
    "estimate_quantile",
    "format_bound",
    "parse_bounds",
    "stored_buckets",
    "subtract",
]
