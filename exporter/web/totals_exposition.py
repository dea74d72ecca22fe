"""The store's totals in Prometheus's text formats, written here rather than by the client
library: with dimensions a type has up to the combination cap of series, each with a bucket per
bound, and the library's per-sample checks and escaping cost 40 µs a sample on a loaded machine,
6.7 s for 10,000 series (decision 0020; docs/benchmarks.md). Here a series' labels are written
once and its samples are plain lines.

Without dimensions, one series per type. With them, one per combination of the joint table of the
reader's configuration, every dimension a label, plus one per type with every dimension
`__unattributed__` for the events outside it: `sum by (type)` is the type's exact total.
"""

from __future__ import annotations

from typing import Final

from exporter.metrics import le_text
from exporter.store.detail import CombinationTotals, CountingConfig, Detail, Tally, TypeDetail
from exporter.store.histograms import cumulative
from exporter.web.telemetry import EVENTS_HELP, VALUE_HELP

_ESCAPES: Final = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def _quoted(value: str) -> str:
    """A label value escaped as both text formats need (type names and dimension values never
    hold these characters, by the event contract; the check is one scan)."""
    return value.translate(_ESCAPES) if ("\\" in value or '"' in value or "\n" in value) else value


class TotalsExposition:
    """Writes `exporter_stats_events_total` and the `exporter_stats_value` histogram family."""

    def __init__(self, counting: CountingConfig) -> None:
        self._dimensions = counting.dimensions
        self._bounds = counting.buckets.bounds
        self._le = [*(le_text(b) for b in self._bounds), "+Inf"]

    def render(self, detail: Detail | None, *, openmetrics: bool) -> bytes:
        """Both families (no samples without a detail), in OpenMetrics or the 0.0.4 text format."""
        events_name = "exporter_stats_events" if openmetrics else "exporter_stats_events_total"
        events = [
            f"# HELP {events_name} {EVENTS_HELP}\n# TYPE {events_name} counter\n",
        ]
        values = [
            f"# HELP exporter_stats_value {VALUE_HELP}\n# TYPE exporter_stats_value histogram\n"
        ]
        # Labels sorted by name, as the client library writes them; `le` among them.
        names = sorted(["type", *self._dimensions])
        order = [names.index("type"), *(names.index(d) for d in self._dimensions)]
        before_le = sum(1 for name in names if name < "le")
        le = self._le
        for kind in detail.types if detail is not None else ():
            for row in self._rows(kind):
                given = (kind.totals.type, *row.values)
                values_in_order = [""] * len(names)
                for position, value in zip(order, given, strict=True):
                    values_in_order[position] = _quoted(value)
                pairs = [f'{n}="{v}"' for n, v in zip(names, values_in_order, strict=True)]
                labels = ",".join(pairs)
                head = "".join(p + "," for p in pairs[:before_le])
                tail = "".join("," + p for p in pairs[before_le:])
                count = row.tally.count
                events.append(f"exporter_stats_events_total{{{labels}}} {count}.0\n")
                counts = cumulative(row.buckets, self._bounds, count)
                values.extend(
                    f'exporter_stats_value_bucket{{{head}le="{bound}"{tail}}} {n}.0\n'
                    for bound, n in zip(le, counts, strict=True)
                )
                values.append(f"exporter_stats_value_count{{{labels}}} {count}.0\n")
                values.append(f"exporter_stats_value_sum{{{labels}}} {row.tally.sum!r}\n")
        return "".join(events + values).encode()

    def _rows(self, kind: TypeDetail) -> list[CombinationTotals]:
        if not self._dimensions:
            tally = Tally(kind.totals.count, kind.totals.sum_micros)
            return [CombinationTotals((), tally, kind.buckets)]
        return [*kind.combinations, kind.unattributed(len(self._dimensions))]


__all__ = ["TotalsExposition"]
