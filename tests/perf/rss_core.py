"""The real `Processor.run` at full speed on a synthetic queue, for the RSS-under-load figure.

Run: `python -m tests.perf.rss_core REDIS_URL EVENTS`. moto cannot deliver more than a few hundred
messages a second, so this process replaces only the queue: its `receive` makes 10 messages on
demand (fresh MessageIds, realistic bodies) and its deletes succeed at once; pollers, parsing, the
Redis store, metrics and the visibility guard are the real ones. Prints `ready` once set up, then
one JSON line with the events applied and the rate.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.sqs.messages import Message
from tests.perf.bench_pipeline import AckingSource
from tests.perf.bodies import make_bodies
from tests.store_support import redis_store


@dataclass
class SyntheticSource(AckingSource):
    """Hands out `remaining` messages, 10 at a time, then nothing."""

    remaining: int = 0
    bodies: itertools.cycle[bytes] = field(default_factory=lambda: itertools.cycle([b"{}"]))

    async def receive(self, max_messages: int) -> Sequence[Message]:
        count = min(max_messages, self.remaining)
        if count == 0:
            await asyncio.sleep(0.01)  # an empty long poll, shortened
            return []
        self.remaining -= count
        ids = [str(uuid.uuid4()) for _ in range(count)]
        return [Message(i, f"rh-{i}", next(self.bodies)) for i in ids]


async def run(redis_url: str, events: int) -> dict[str, float | int]:
    """Drive the processor until `events` messages were deleted."""
    store = redis_store(redis_url, prefix=f"bench-rss-core-{uuid.uuid4().hex[:8]}")
    source = SyntheticSource(remaining=events, bodies=itertools.cycle(make_bodies(1000)))
    processor = Processor(store, source, build_metrics(CollectorRegistry()), ProcessorConfig())
    stop = asyncio.Event()
    print("ready", flush=True)
    started = time.perf_counter()
    task = asyncio.create_task(processor.run(stop))
    while source.deleted < events:  # noqa: ASYNC110 - the processor offers no event for it
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await store.reset()
    await store.close()
    return {"events": source.deleted, "events_per_s": round(source.deleted / elapsed)}


def main() -> None:
    """Parse the arguments, run, print the JSON result."""
    print(json.dumps(asyncio.run(run(sys.argv[1], int(sys.argv[2])))), flush=True)


if __name__ == "__main__":
    main()
