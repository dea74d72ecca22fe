"""Store faults: pause polling when the store fails, resume once a write goes through again.

Two kinds of fault pause the pollers alike. An outage (connection lost, a timeout) heals by
itself and is logged as a warning. A refusal (READONLY, OOM, NOAUTH, a script error, CLUSTERDOWN)
needs someone to act: it is logged as an error with Redis's own words and shown on /ready. Either
way nothing is received while paused, so SQS redeliveries do not spend receive counts, and a
background probe (a script that writes, not only PING) resumes polling when it succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from exporter.metrics import ProcessorMetrics
from exporter.retry import Backoff
from exporter.store import Store, StoreRefused, StoreUnavailable

log = logging.getLogger(__name__)


class StoreRecovery:
    """Whether the store works now, why not, and the task that finds out when it works again."""

    def __init__(
        self,
        store: Store,
        metrics: ProcessorMetrics,
        stopping: asyncio.Event,
        *,
        on_change: Callable[[], None],
        backoff: Backoff,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._stopping = stopping
        self._on_change = on_change
        self._backoff = backoff
        self.ok = asyncio.Event()
        self.ok.set()
        self.cause: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def problem(self) -> str | None:
        """Why polling is paused, for /ready; None while the store works."""
        if self.ok.is_set():
            return None
        return f"paused: {self.cause}"

    def failed(self, exc: StoreUnavailable, operation: str) -> None:
        """Pause polling for `exc` and start probing for the store's return."""
        self._metrics.dependency_errors.labels(dependency="redis", operation=operation).inc()
        self._note(exc)
        if self.ok.is_set():
            self.ok.clear()
            self._on_change()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._recover(), name="store-recovery")

    def _note(self, exc: StoreUnavailable) -> None:
        """Log a cause once, when it first appears: a flapping log hides what is wrong."""
        cause = str(exc)
        if cause == self.cause and not self.ok.is_set():
            return
        self.cause = cause
        if isinstance(exc, StoreRefused):
            log.error("Redis refuses the store's calls; not receiving until this clears: %s", cause)
        else:
            log.warning("Redis is unavailable; pausing polling and deleting: %s", cause)

    async def wait(self) -> None:
        """Return once the store works again or the processor is stopping."""
        waiter = asyncio.create_task(self.ok.wait())
        stopper = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()

    async def _recover(self) -> None:
        self._backoff.reset()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._backoff.next_delay())
            try:
                await self._store.probe_write()
            except StoreUnavailable as exc:
                self._metrics.dependency_errors.labels(dependency="redis", operation="probe").inc()
                self._note(exc)
                continue
            log.info("Redis is back: resuming (it was: %s)", self.cause)
            self.cause = None
            self.ok.set()
            self._on_change()
            return

    async def close(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


__all__ = ["StoreRecovery"]
