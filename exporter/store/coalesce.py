"""Group commit for `apply`: batches that arrive while a call is in flight go out together.

Under load several pollers hand the store a batch of 10 events each; every script call costs a
round trip and a fixed share of client CPU that dwarfs the per-event work (docs/benchmarks.md).
Merging whatever is waiting into one call of up to `limit` events keeps the number of calls in
flight bounded and amortises that cost; with one caller and no load nothing waits for anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from exporter.events import Event
from exporter.store import STORE_ERRORS, ApplyResult, StoreUnavailable

Batch = Sequence[tuple[str, Event]]
ApplyNow = Callable[[Batch], Awaitable[ApplyResult]]


class ApplyCoalescer:
    """Runs `apply_now` on merged batches, at most one call at a time, in arrival order.

    Merging keeps each caller's exactness: the merged call is as atomic as any single one, events
    are applied in arrival order (an identity sent by two callers is applied once, then reported
    as a duplicate), and each caller receives exactly its own slice of the outcomes.
    """

    def __init__(self, apply_now: ApplyNow, *, limit: int) -> None:
        self._apply_now = apply_now
        self._limit = limit
        self._waiting: deque[tuple[Batch, asyncio.Future[ApplyResult]]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def apply(self, batch: Batch) -> ApplyResult:
        """Apply `batch`, possibly together with others waiting; raise what the call raised."""
        future: asyncio.Future[ApplyResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((batch, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="store-apply")
        return await future

    async def wait_idle(self) -> None:
        """Return once nothing is waiting or in flight (before closing the connection)."""
        while self._drainer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._drainer)

    def _take(self) -> list[tuple[Batch, asyncio.Future[ApplyResult]]]:
        taken: list[tuple[Batch, asyncio.Future[ApplyResult]]] = []
        size = 0
        while self._waiting:
            batch, future = self._waiting[0]
            if taken and size + len(batch) > self._limit:
                break
            self._waiting.popleft()
            if future.done():  # the caller was cancelled before its turn: apply nothing for it
                continue
            taken.append((batch, future))
            size += len(batch)
        return taken

    async def _drain(self) -> None:
        try:
            while self._waiting:
                taken = self._take()
                if taken:
                    await self._run(taken)
        finally:
            self._drainer = None
            # Cancelled mid-way (loop shutting down): no caller may wait forever.
            while self._waiting:
                _, future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(StoreUnavailable("the store is shutting down"))

    async def _run(self, taken: list[tuple[Batch, asyncio.Future[ApplyResult]]]) -> None:
        merged = [item for batch, _ in taken for item in batch]
        try:
            result = await self._apply_now(merged)
        except asyncio.CancelledError:
            for _, future in taken:
                if not future.done():
                    future.set_exception(StoreUnavailable("the store call was cancelled"))
            raise
        except STORE_ERRORS as exc:
            for _, future in taken:
                if not future.done():
                    # One exception object per caller (each re-raise adds its own traceback),
                    # of the same class and with every field (advice, replica counts): the
                    # processor tells outages from refusals by them. The store's errors copy
                    # from their fields, whatever their constructors take (exporter.faults).
                    error = copy.copy(exc)
                    error.__traceback__ = None
                    error.__cause__ = exc.__cause__
                    future.set_exception(error)
            return
        except Exception as exc:  # a bug: every caller must see it, none may hang
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for batch, future in taken:
            end = start + len(batch)
            if not future.done():
                future.set_result(result.part(start, end))
            start = end


__all__ = ["ApplyCoalescer"]
