"""Shared store reads: concurrent requests share one read, and nobody gets a read older than
their own request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from exporter.store import Snapshot, StoreUnavailable, TypeTotals
from exporter.web.snapshots import SharedSnapshots
from tests.polling import eventually


@dataclass
class GatedStore:
    """A store whose reads finish only when the test opens the gate; counts its reads."""

    reads: int = 0
    version: int = 0
    fail: bool = False
    gates: list[asyncio.Event] = field(default_factory=list)

    async def snapshot(self) -> Snapshot:
        self.reads += 1
        seen = self.version  # the state when the read began
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail:
            raise StoreUnavailable("down")
        return Snapshot((TypeTotals("v", seen, 0),))

    def open_next(self) -> None:
        next(g for g in self.gates if not g.is_set()).set()


async def _until(condition: Callable[[], object]) -> None:
    await eventually(condition, timeout=5, interval=0, message="the reads to start")


async def test_callers_during_a_read_share_the_next_one() -> None:
    """Ten requests arriving during a read cause exactly one more read, which they all share."""
    store = GatedStore()
    shared = SharedSnapshots(store, timeout_seconds=5)  # type: ignore[arg-type]
    first = asyncio.create_task(shared.get())
    await _until(lambda: store.reads == 1)
    store.version = 1  # a write the later callers have already seen acknowledged
    later = [asyncio.create_task(shared.get()) for _ in range(10)]
    await asyncio.sleep(0)
    store.open_next()
    assert (await first).types[0].count == 0
    await _until(lambda: store.reads == 2)
    store.open_next()
    results = await asyncio.gather(*later)
    assert store.reads == 2
    # Every later caller sees the write made before it called: no stale totals.
    assert {r.types[0].count for r in results} == {1}


async def test_a_lone_caller_starts_its_own_read() -> None:
    """Without concurrency every call is one read of the store."""
    store = GatedStore()
    shared = SharedSnapshots(store, timeout_seconds=5)  # type: ignore[arg-type]
    for expected in (1, 2, 3):
        task = asyncio.create_task(shared.get())
        await _until(lambda: store.reads == expected)  # noqa: B023 - awaited in this turn
        store.open_next()
        await task
    assert store.reads == 3


async def test_a_failed_read_fails_every_waiter_and_the_next_read_recovers() -> None:
    """A store error reaches each caller sharing the read; later calls read again."""
    store = GatedStore(fail=True)
    shared = SharedSnapshots(store, timeout_seconds=5)  # type: ignore[arg-type]
    callers = [asyncio.create_task(shared.get()) for _ in range(3)]
    await _until(lambda: store.reads == 1)
    store.open_next()
    await _until(lambda: store.reads == 2)
    store.open_next()
    for caller in callers:
        with pytest.raises(StoreUnavailable):
            await caller
    store.fail = False
    task = asyncio.create_task(shared.get())
    await _until(lambda: store.reads == 3)
    store.open_next()
    assert (await task).types[0].type == "v"


async def test_a_slow_read_times_out_as_store_unavailable() -> None:
    """A read that outlasts the timeout is reported as the store being unavailable."""
    shared = SharedSnapshots(GatedStore(), timeout_seconds=0.05)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable, match="in time"):
        await shared.get()


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_read() -> None:
    """Cancelling one waiting request leaves the shared read running for the others."""
    store = GatedStore()
    shared = SharedSnapshots(store, timeout_seconds=5)  # type: ignore[arg-type]
    first = asyncio.create_task(shared.get())
    await _until(lambda: store.reads == 1)
    leaving = asyncio.create_task(shared.get())
    staying = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    store.open_next()
    await first
    await _until(lambda: store.reads == 2)
    leaving.cancel()
    store.open_next()
    assert (await staying).types[0].type == "v"
    assert leaving.cancelled()
