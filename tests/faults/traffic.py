"""Traffic for the fault suite: valid events, producer retries and malformed bodies, with the totals
that must come out at the end computed independently of the exporter's own code."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.faults.malformed import MALFORMED


@dataclass
class Traffic:
    """Bodies in send order, and what the totals and dead-letter queue must hold afterwards."""

    bodies: list[str] = field(default_factory=list)
    expected: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    malformed: list[tuple[str, str]] = field(default_factory=list)  # (body, reason), with repeats

    @property
    def valid_events(self) -> int:
        """How many distinct valid events were sent (retries counted once)."""
        return sum(count for count, _ in self.expected.values())


def make_traffic(
    events: int, *, seed: int, retry_ratio: float = 0.05, malformed_ratio: float = 0.05
) -> Traffic:
    """`events` distinct valid events (half with ids), some resent as a producer retry would,
    and malformed bodies from the corpus mixed in."""
    rng = random.Random(seed)
    traffic = Traffic()
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, Decimal] = defaultdict(Decimal)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:12]
    corpus = list(MALFORMED.items())
    for i in range(events):
        kind = rng.choice(("pageview", "added-to-basket", "purchase"))
        value = {
            "pageview": Decimal(1),
            "added-to-basket": Decimal(rng.randint(1, 5)),
            "purchase": Decimal(rng.randint(0, 10_000)) / 100,
        }[kind]
        event: dict[str, Any] = {
            "type": kind,
            "value": value,
            "occurred_at": "2026-11-26 10:00:00",
        }
        if i % 2 == 0:
            event["id"] = f"{run}-{i}"
        body = json.dumps(event, default=_decimal_text)
        counts[kind] += 1
        sums[kind] += value
        traffic.bodies.append(body)
        if "id" in event and rng.random() < retry_ratio:
            traffic.bodies.append(body)  # a producer retry: a new message, the same event id
        if rng.random() < malformed_ratio:
            _, (bad_body, reason) = corpus[rng.randrange(len(corpus))]
            traffic.bodies.append(bad_body)
            traffic.malformed.append((bad_body, reason))
    traffic.expected = {k: (counts[k], sums[k]) for k in counts}
    return traffic


def _decimal_text(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(type(value))
