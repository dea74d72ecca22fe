"""Breakdowns and detail of a store that keeps per-type totals only: the Redis store until issue
27/28 part 2 teaches it dimensions and value buckets (then this module goes).

Every event is then outside the joint table and in no stored bucket, which is what a reader
shows for events counted before a configuration began: breakdowns hold only the unattributed
remainder, and every cumulative bucket but `+Inf` is zero, a lower bound as decision 0021 says.
"""

from __future__ import annotations

from exporter.store import Snapshot, Store
from exporter.store.detail import Breakdown, CountingConfig, Detail, Tally, TypeDetail


class TotalsOnly:
    """`DetailReads` over a store's snapshot."""

    def __init__(self, store: Store, counting: CountingConfig) -> None:
        self._store = store
        self._counting = counting
        self._last: tuple[Snapshot, Detail] | None = None

    @property
    def counting(self) -> CountingConfig:
        """The reader's configuration."""
        return self._counting

    async def breakdown(self, event_type: str, dimension: str) -> Breakdown | None:
        """Everything the type counted, unattributed; None for a type never applied."""
        totals = (await self._store.snapshot()).get(event_type)
        if totals is None:
            return None
        return Breakdown(event_type, dimension, None, (), Tally(totals.count, totals.sum_micros))

    async def detail(self) -> Detail:
        """Every type's totals, with no bucket, combination or fold."""
        snapshot = await self._store.snapshot()
        # The same snapshot object (the Redis store hands it back while nothing changed) gives
        # the same detail object, so the API's rendered bodies stay cached.
        if self._last is not None and self._last[0] is snapshot:
            return self._last[1]
        folded = tuple((name, 0) for name in self._counting.dimensions)
        detail = Detail(
            tuple(TypeDetail(t, folded=folded) for t in snapshot.types), snapshot.counting_since
        )
        self._last = (snapshot, detail)
        return detail


__all__ = ["TotalsOnly"]
