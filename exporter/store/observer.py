"""What the Redis store tells its owner besides the answers to its calls.

The store finds these things out (a loss of totals, an evicting policy Redis runs with) and logs
them; counting them is the owner's, whose metrics registry the store never sees (habit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.store.totals_marker import TotalsLost


def _ignore(_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class StoreObserver:
    """Callbacks the store calls; each must be quick and must not raise."""

    totals_lost: Callable[[TotalsLost], None] = _ignore
    """Redis was found to have lost the totals of one shard (decision 0017)."""
    evicting: Callable[[str | None], None] = _ignore
    """The evicting maxmemory-policy found on a master (allowed by the operator), or None."""


__all__ = ["StoreObserver"]
