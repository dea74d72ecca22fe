"""Keeping a slow batch hidden: extend its visibility only once it runs long."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine


class VisibilityGuard:
    """Starts `extend` only if the batch is still working after `delay` seconds.

    Almost every batch ends long before half the visibility timeout: a timer costs far less
    than a task per batch (docs/benchmarks.md); the task starts only when the batch runs long.
    """

    __slots__ = ("_extend", "_extender", "_timer")

    def __init__(self, delay: float, extend: Callable[[], Coroutine[object, object, None]]) -> None:
        self._extend = extend
        self._extender: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._extender = asyncio.create_task(self._extend())

    async def stop(self) -> None:
        """Cancel the timer, and the extending task if it started."""
        self._timer.cancel()
        if self._extender is not None:
            self._extender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._extender


__all__ = ["VisibilityGuard"]
