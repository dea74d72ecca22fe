"""What /stats and /stats/{type} answer per type: the seed's keys, and beside them the value
buckets, percentiles estimated from them, and the folded counts when dimensions are declared."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from exporter.events import micros_to_text
from exporter.store import TypeTotals
from exporter.store.detail import CountingConfig, TypeDetail
from exporter.store.histograms import Estimate, cumulative, estimate_quantile

PERCENTILES: Final = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def iso(moment: datetime | None) -> str | None:
    """An aware time as RFC 3339 in UTC with a Z, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def stats_json(totals: TypeTotals, counting_since: datetime | None = None) -> dict[str, Any]:
    """One type's totals as the API shows them (the prototype's shape plus a few extras);
    `counting_since` is when the store's totals began (decision 0017)."""
    return {
        "type": totals.type,
        "count": totals.count,
        "sum": totals.sum,
        "sum_exact": micros_to_text(totals.sum_micros),
        "mean": totals.mean,
        "last_applied": iso(totals.last_applied),
        "counting_since": iso(counting_since),
    }


def detail_json(
    detail: TypeDetail, counting: CountingConfig, counting_since: datetime | None = None
) -> dict[str, Any]:
    """`stats_json` plus, with buckets on, `buckets` and `percentiles`, and with dimensions
    declared, `folded`."""
    body = stats_json(detail.totals, counting_since)
    buckets = counting.buckets
    if buckets.enabled:
        counts = cumulative(detail.buckets, buckets.bounds, detail.totals.count)
        body["buckets"] = [
            {"le": text, "count": count} for text, count in zip(buckets.texts, counts, strict=True)
        ]
        estimates: dict[str, Any] = {"estimated_from_buckets": True}
        for name, q in PERCENTILES:
            estimates[name] = _estimate_json(estimate_quantile(q, buckets.bounds, counts))
        body["percentiles"] = estimates
    if counting.dimensions:
        body["folded"] = {
            "dimensions": dict(detail.folded),
            "combinations": detail.folded_combinations,
        }
    return body


def _estimate_json(estimate: Estimate | None) -> dict[str, float | None] | None:
    if estimate is None:
        return None
    return {"value": estimate.value, "lower": estimate.lower, "upper": estimate.upper}


__all__ = ["detail_json", "iso", "stats_json"]
