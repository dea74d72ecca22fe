"""Keeping a slow batch hidden: extend its visibility only once it runs long."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import Callable, Coroutine

Extend = Callable[[], Coroutine[object, object, None]]


class Watch:
    """One batch at work: when it is due, how to extend it, and the extending task once started."""

    __slots__ = ("context", "deadline", "extend", "task")

    def __init__(self, deadline: float, extend: Extend) -> None:
        self.deadline = deadline
        self.extend = extend
        # The batch's own context (its span, which the logs' trace id comes from), for its task.
        self.context = contextvars.copy_context()
        self.task: asyncio.Task[None] | None = None


class VisibilityKeeper:
    """Starts a batch's `extend` only if the batch is still at work when it is due.

    Almost every batch ends long before half the visibility timeout. One timer serves every batch
    in progress, set for the earliest that is due: a timer (or a task) per batch cost more than
    the rest of the batch's bookkeeping (docs/benchmarks.md), and under load batches start in
    order, so a new batch rarely moves the timer.
    """

    __slots__ = ("_timer", "_wake_at", "_watched")

    def __init__(self) -> None:
        self._watched: dict[Watch, None] = {}  # an ordered set of the batches at work
        self._timer: asyncio.TimerHandle | None = None
        self._wake_at = math.inf

    def watch(self, delay: float, extend: Extend) -> Watch:
        """Watch a batch that is due in `delay` seconds; `release` it when its work ends."""
        loop = asyncio.get_running_loop()
        watch = Watch(loop.time() + delay, extend)
        self._watched[watch] = None
        if watch.deadline < self._wake_at:
            self._wake_at_deadline(loop, watch.deadline)
        return watch

    async def release(self, watch: Watch) -> None:
        """Stop watching the batch, and cancel its extending task if it started."""
        del self._watched[watch]
        if not self._watched and self._timer is not None:
            # Nothing at work: no timer outlives the batches (and the processor).
            self._timer.cancel()
            self._timer = None
            self._wake_at = math.inf
        if watch.task is not None:
            watch.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch.task

    def _wake_at_deadline(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._wake_at = when
        self._timer = loop.call_at(when, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._wake_at = math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        nearest = math.inf
        for watch in self._watched:
            if watch.task is not None:
                continue
            if watch.deadline <= now:
                watch.task = loop.create_task(watch.extend(), context=watch.context)
            elif watch.deadline < nearest:
                nearest = watch.deadline
        if nearest < math.inf:
            self._wake_at_deadline(loop, nearest)


__all__ = ["VisibilityKeeper", "Watch"]
