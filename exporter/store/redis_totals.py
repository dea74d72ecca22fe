"""The totals hashes read back: every shard's partial totals summed into one Snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from exporter.events import MICROS_PER_UNIT
from exporter.store import Snapshot, TypeTotals


def decode_totals(parts: Sequence[dict[bytes, bytes]], since: datetime | None = None) -> Snapshot:
    """The exact sum of the partial totals hashes `parts` (HGETALL replies), by type."""
    # One pass sorting fields by kind, then one TypeTotals per type: /stats and /metrics decode
    # every partial on every read, so this stays lean (docs/benchmarks.md).
    counts: dict[bytes, int] = {}
    micros: dict[bytes, int] = {}
    lasts: dict[bytes, int] = {}
    for raw in parts:
        for key, value in raw.items():
            kind, _, name = key.partition(b":")
            if kind == b"count":
                counts[name] = counts.get(name, 0) + int(value)
            elif kind == b"units":
                micros[name] = micros.get(name, 0) + int(value) * MICROS_PER_UNIT
            elif kind == b"frac":
                micros[name] = micros.get(name, 0) + int(value)
            elif kind == b"last":
                lasts[name] = max(lasts.get(name, 0), int(value))
    types = []
    for name in sorted(counts.keys() | micros.keys()):
        last = lasts.get(name)
        types.append(
            TypeTotals(
                type=name.decode(),
                count=counts.get(name, 0),
                sum_micros=micros.get(name, 0),
                last_applied=datetime.fromtimestamp(last / 1000, UTC) if last else None,
            )
        )
    return Snapshot(tuple(types), since)


__all__ = ["decode_totals"]
