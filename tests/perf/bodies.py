"""Realistic message bodies for benchmarks, shaped like the producer's synthetic traffic."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

COUNTRIES = ("NL", "DE", "FR", "BE", "US", "GB", "ES", "IT")
CHANNELS = ("web", "app", "kiosk")


def make_bodies(
    count: int, *, seed: int = 7, with_ids: bool = False, dimensions: bool = False
) -> list[bytes]:
    """`count` valid bodies: page views, basket adds and purchases with cents, up to an hour old;
    with `dimensions`, each with a `channel` and a `country` field too."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    bodies = []
    for i in range(count):
        kind = rng.choice(("pageview", "pageview", "added-to-basket", "purchase"))
        value: float | int
        if kind == "pageview":
            value = 1
        elif kind == "added-to-basket":
            value = rng.randint(1, 5)
        else:
            value = round(rng.uniform(0, 100), 2)
        moment = now - timedelta(seconds=rng.randint(0, 3600))
        event: dict[str, object] = {
            "type": kind,
            "value": value,
            "occurred_at": moment.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if with_ids:
            event["id"] = f"evt-{seed}-{i}"
        if dimensions:
            event["channel"] = rng.choice(CHANNELS)
            event["country"] = rng.choice(COUNTRIES)
        bodies.append(json.dumps(event).encode())
    return bodies
