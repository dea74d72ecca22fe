"""Exponential backoff with full jitter, so replicas that failed together do not retry together."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """Delays of `uniform(ceiling / 10, ceiling)`, ceiling `min(cap, base * 2**attempt)`; `reset()`
    after a success."""

    base_seconds: float = 0.1
    cap_seconds: float = 10.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next try; each call doubles the ceiling up to the cap."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** min(self.attempt, 32))
        self.attempt += 1
        # Near-full jitter (not +-10 %) spreads a herd of pollers over the whole interval; the
        # tenth kept as a floor means a retry never comes back at once.
        return random.uniform(ceiling / 10, ceiling)  # noqa: S311 - jitter, not cryptography

    def reset(self) -> None:
        """Start again from the base delay."""
        self.attempt = 0
