"""Concurrent readers share store reads without ever being served stale totals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from exporter.store import Snapshot, Store, StoreUnavailable

T = TypeVar("T")


class SharedReads(Generic[T]):
    """Requests that arrive while a store read is in flight wait for the *next* read and share it.

    A read that began before a request arrived may predate a write the client has already seen
    acknowledged, so it is never handed to that request: every caller gets totals read after it
    called. Under load one read then serves every request that queued behind the previous one,
    and the store sees one read per round trip instead of one per request.
    """

    def __init__(self, read: Callable[[], Awaitable[T]], timeout_seconds: float) -> None:
        self._read_once = read
        self._timeout = timeout_seconds
        self._running: asyncio.Future[T] | None = None
        self._next: asyncio.Future[T] | None = None
        self._task: asyncio.Task[None] | None = None  # keeps the running read from being collected

    async def get(self) -> T:
        """A read begun after this call began; StoreUnavailable if the store fails or is slow."""
        if self._running is None:
            self._running = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._read(self._running))
            waiter = self._running
        else:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            waiter = self._next
        # shield: a client that disconnects must not cancel a read others are waiting for.
        return await asyncio.shield(waiter)

    async def _read(self, result: asyncio.Future[T]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                snapshot = await self._read_once()
        except TimeoutError:
            result.set_exception(StoreUnavailable("the store did not answer in time"))
        except Exception as exc:  # handed to every waiter, who re-raises it
            result.set_exception(exc)
        else:
            result.set_result(snapshot)
        # Nobody may be left holding a failed future unretrieved (asyncio would warn).
        if result.exception() is not None and not result.cancelled():
            result.exception()
        self._running = None
        queued, self._next = self._next, None
        if queued is not None:
            self._running = queued
            self._task = asyncio.create_task(self._read(queued))


class SharedSnapshots(SharedReads[Snapshot]):
    """Shared reads of a store's totals."""

    def __init__(self, store: Store, timeout_seconds: float) -> None:
        super().__init__(store.snapshot, timeout_seconds)
