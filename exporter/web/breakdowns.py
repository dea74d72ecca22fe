"""GET /stats/{type}?by=<dimension>: one type's totals per value of a declared dimension, exact
per admitted value, every value unless `limit` cuts (decision 0020)."""

from __future__ import annotations

from typing import Any, Final

from multidict import MultiMapping

from exporter.events import micros_to_text
from exporter.store.detail import Breakdown, Tally
from exporter.web.stats_body import iso

MAX_LIMIT: Final = 1_000_000


class BadBreakdown(Exception):
    """A `by` or `limit` that cannot be answered; the message says what would work."""


def _declared(dimensions: tuple[str, ...]) -> str:
    if not dimensions:
        return "No dimension is declared (EXPORTER_DIMENSIONS is empty)."
    return "Declared dimensions: " + ", ".join(repr(name) for name in dimensions) + "."


def breakdown_query(
    query: MultiMapping[str], dimensions: tuple[str, ...]
) -> tuple[str, int | None] | None:
    """The dimension and limit asked for, or None without `by` (the type's totals as before).

    A bad `limit` is refused even without `by`, where a good one changes nothing.
    """
    limit = _limit(query.getall("limit", []))
    asked = query.getall("by", [])
    if not asked:
        return None
    if len(asked) > 1:
        raise BadBreakdown(f"'by' is given {len(asked)} times; give it once.")
    dimension = asked[0]
    if dimension not in dimensions:
        raise BadBreakdown(f"Unknown dimension {dimension[:40]!r}. {_declared(dimensions)}")
    return dimension, limit


def _limit(given: list[str]) -> int | None:
    if not given:
        return None
    text = given[0]
    if len(given) > 1 or not text.isascii() or not text.isdigit() or len(text) > 7:
        raise BadBreakdown(f"'limit' must be given once, a whole number from 1 to {MAX_LIMIT}.")
    limit = int(text)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadBreakdown(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
    return limit


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "count": tally.count,
        "sum": tally.sum,
        "sum_exact": micros_to_text(tally.sum_micros),
    }


def breakdown_json(breakdown: Breakdown, limit: int | None) -> dict[str, Any]:
    """The breakdown as the API shows it, numbers as in /stats; `cut` counts values left out."""
    values = breakdown.values if limit is None else breakdown.values[:limit]
    return {
        "type": breakdown.type,
        "dimension": breakdown.dimension,
        "since": iso(breakdown.since),
        "values": [
            {"value": v.value, **_tally_json(v.tally), "mean": v.tally.mean} for v in values
        ],
        "cut": len(breakdown.values) - len(values),
        "unattributed": _tally_json(breakdown.unattributed),
    }


__all__ = ["BadBreakdown", "breakdown_json", "breakdown_query"]
