"""Value buckets: bounds checked, each value placed exactly, stored buckets read back over any
bounds as lower bounds, and percentiles estimated as Prometheus's histogram_quantile does."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.store import TypeTotals
from exporter.store.detail import CombinationTotals, Tally, TypeDetail
from exporter.store.histograms import (
    DEFAULT_BOUNDS,
    BucketBounds,
    Estimate,
    cumulative,
    estimate_quantile,
    format_bound,
    parse_bounds,
    stored_buckets,
    subtract,
)


@pytest.mark.parametrize(
    ("bound", "text"),
    [(1, "1"), (10000, "10000"), (0.5, "0.5"), (2.25, "2.25"), (-3, "-3"), (0.000001, "0.000001"),
     (1e12, "1000000000000"), (-0.0, "0"), (math.inf, "+Inf")],
)  # fmt: skip
def test_a_bound_has_one_canonical_text(bound: float, text: str) -> None:
    """Shortest decimal, no exponent, no trailing zeros; `+Inf` for infinity."""
    assert format_bound(bound) == text
    if bound != math.inf:
        assert float(text) == bound


def test_the_default_bounds_suit_money() -> None:
    """1, 2, 5 up to 10,000: thirteen bounds, and `+Inf`."""
    assert DEFAULT_BOUNDS.texts == (
        "1", "2", "5", "10", "20", "50", "100", "200", "500", "1000", "2000", "5000", "10000",
        "+Inf",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        (["1", "1"], "does not exceed"),
        (["2", "1"], "does not exceed"),
        (["abc"], "not a number"),
        (["nan"], "out of range"),
        (["inf"], "out of range"),
        (["1e13"], "out of range"),
        (["0.0000001"], "six decimals"),
        ([str(n) for n in range(41)], "41 bounds"),
    ],
)
def test_bad_bounds_are_refused_with_the_reason(items: list[str], problem: str) -> None:
    """Not increasing, not a finite number, out of range, too precise, too many: refused."""
    with pytest.raises(ValueError, match=problem):
        parse_bounds(items)


def test_good_bounds_pass() -> None:
    """Negative, fractional and up to forty bounds pass; none is off."""
    assert parse_bounds(["-10", "0", "0.25", "1e3"]) == (-10.0, 0.0, 0.25, 1000.0)
    assert len(parse_bounds([str(n) for n in range(40)])) == 40
    assert parse_bounds([]) == ()
    assert not BucketBounds.of([]).enabled


finite_bounds = st.lists(
    st.decimals(min_value=-(10**6), max_value=10**6, places=6, allow_nan=False), max_size=12
).map(lambda ds: sorted({float(d) for d in ds}))


@given(finite_bounds, st.integers(-(10**12), 10**12))
def test_a_value_falls_in_the_first_bucket_at_or_above_it(bounds: list[float], micros: int) -> None:
    """Exactly, in millionths: a value at a bound is in that bound's bucket, a millionth more
    is in the next."""
    buckets = BucketBounds.of(bounds)
    exact = Decimal(micros).scaleb(-6)
    expected = next((b for b in bounds if exact <= Decimal(repr(b))), math.inf)
    assert buckets.text_of(micros) == format_bound(expected)


def test_values_at_and_around_a_bound() -> None:
    """0.1 + 0.2 style rounding never moves a value across a bound."""
    buckets = BucketBounds.of(["0.3", "1"])
    assert buckets.text_of(300_000) == "0.3"
    assert buckets.text_of(300_001) == "1"
    assert buckets.text_of(1_000_001) == "+Inf"


def test_cumulative_counts_over_the_same_bounds_are_exact() -> None:
    """Stored with the reader's own bounds, every cumulative count is the truth."""
    stored = stored_buckets([("1", 3), ("10", 2), ("+Inf", 2)])
    assert stored == ((1.0, 3), (10.0, 2), (math.inf, 2))
    assert cumulative(stored, (1, 10), 7) == (3, 5, 7)


def test_cumulative_counts_over_other_bounds_are_lower_bounds() -> None:
    """A stored bucket counts toward a bound only when its own bound is at most that bound;
    `+Inf` is the exact total, events in no bucket included."""
    stored = stored_buckets([("5", 4), ("50", 3), ("+Inf", 1)])
    assert cumulative(stored, (1, 10, 100), 10) == (0, 4, 7, 10)
    assert cumulative((), (1, 10), 3) == (0, 0, 3)


def test_subtracting_buckets_never_goes_below_zero() -> None:
    """The remainder of a type's buckets less its combinations' is per bound, at least 0."""
    whole = ((1.0, 5), (10.0, 2))
    assert subtract(whole, [((1.0, 2),), ((1.0, 1), (10.0, 9), (5.0, 1))]) == ((1.0, 2),)


def test_the_unattributed_remainder_is_totals_less_the_joint_table() -> None:
    """Count, sum and buckets of events outside the joint table, labelled __unattributed__."""
    detail = TypeDetail(
        TypeTotals("p", 5, 50_000_000),
        ((1.0, 2), (10.0, 3)),
        (CombinationTotals(("NL",), Tally(2, 12_000_000), ((1.0, 1), (10.0, 1))),),
    )
    rest = detail.unattributed(1)
    assert rest == CombinationTotals(
        ("__unattributed__",), Tally(3, 38_000_000), ((1.0, 1), (10.0, 2))
    )


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        (0.5, (0, 0, 10, 10), Estimate(3.5, 2, 5)),  # all in (2, 5]: halfway
        (0.9, (0, 0, 10, 10), Estimate(4.7, 2, 5)),
        (0.5, (4, 8, 8, 8), Estimate(1.0, None, 1)),  # first bucket: 0 as its lower edge
        (0.99, (4, 8, 8, 10), Estimate(5.0, 5, None)),  # +Inf: the highest finite bound
        (0.5, (0, 0, 0, 0), None),  # nothing counted
    ],
)
def test_percentiles_interpolate_as_prometheus_does(
    q: float, counts: tuple[int, ...], expected: Estimate | None
) -> None:
    """Linear within the bucket, the bucket's bounds alongside the estimate."""
    got = estimate_quantile(q, (1.0, 2.0, 5.0), counts)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert got.value == pytest.approx(expected.value)
        assert (got.lower, got.upper) == (expected.lower, expected.upper)


def test_a_first_bucket_at_or_below_zero_gives_its_bound() -> None:
    """As histogram_quantile: no interpolation below a non-positive first bound."""
    assert estimate_quantile(0.5, (-1.0, 1.0), (5, 6, 6)) == Estimate(-1.0, None, -1.0)
    assert estimate_quantile(0.5, (), (3,)) is None
