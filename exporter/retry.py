"""One way to wait and to try again: a backoff with jitter, a sleep that a stop ends, the first of
several waits, and the retry policy of a call path (house habit 14, after stamina's `retry`).

Each call path has exactly one layer that tries again, and it says so in a comment where it does;
every layer below it makes one attempt. So the attempts a call makes are that layer's limit,
never the product of two limits under two stacked backoffs (decision 0022).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or until `stop` is set if that comes first; True when `stop` is set."""
    if not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await stop.wait()
    return stop.is_set()


async def first_of(*waits: Awaitable[object]) -> int:
    """Await `waits` together until one ends: the others are cancelled (and awaited, so nothing
    of theirs runs on), and the index of the one that ended is returned, or what it raised is
    raised. When several end together, the first of them in `waits` counts.

    Cancelled itself (a caller's deadline, a shutdown), it cancels every wait and re-raises at
    once, without waiting for a wait that is slow to end.
    """
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        for task in tasks:
            task.cancel()
            task.add_done_callback(_retrieve)
        raise
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    first = next(index for index, task in enumerate(tasks) if task in done)
    for task in tasks:
        if task is not tasks[first]:
            _retrieve(task)
    tasks[first].result()
    return first


def _retrieve(task: asyncio.Future[object]) -> None:
    """Mark a wait's outcome as seen: an error of a wait nobody awaits is no error of ours."""
    if task.done() and not task.cancelled():
        task.exception()


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a call: its number (from 1), and whether no other follows if it fails."""

    number: int
    limit: int | None
    deadline: float | None
    clock: Callable[[], float]

    @property
    def last(self) -> bool:
        """Whether this is the last try: the limit reached, or the deadline passed."""
        if self.limit is not None and self.number >= self.limit:
            return True
        return self.deadline is not None and self.clock() >= self.deadline


@dataclass(frozen=True, slots=True)
class Retry:
    """How a call path's one retry layer tries again: at most `attempts` tries (None: until a
    stop or a deadline ends them), with a jittered exponential backoff between two tries."""

    attempts: int | None
    base_seconds: float
    cap_seconds: float

    def tries(
        self,
        *,
        stop: asyncio.Event | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> AsyncIterator[Attempt]:
        """Each try in turn, the backoff slept before every one but the first (cut short at
        `deadline`, a `clock()` time). The caller leaves the loop on success, and raises or
        gives up when a failed try is `last`; the loop also ends when `stop` is set during a
        pause, or when the deadline passed after a try the caller went on from."""
        return _Tries(self, stop, deadline, clock)

    def blocking_tries(self, stop: threading.Event) -> Iterator[Attempt]:
        """`tries` for a thread (the producer's boto3 calls): the pauses are `stop.wait`s."""
        backoff: Backoff | None = None
        number = 1
        while True:
            yield Attempt(number, self.attempts, None, time.monotonic)
            if self.attempts is not None and number >= self.attempts:
                return
            backoff = backoff or Backoff(self.base_seconds, self.cap_seconds)
            if stop.wait(backoff.next_delay()):
                return
            number += 1

    async def call(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        on: type[Exception] | tuple[type[Exception], ...],
    ) -> T:
        """`call()`'s answer, tried again after a failure of a kind in `on` until the limit;
        the last failure is raised."""
        async for attempt in self.tries():
            try:
                return await call()
            except on:
                if attempt.last:
                    raise
        raise AssertionError("a retry without a limit needs a stop or a deadline")


class _Tries:
    """`Retry.tries`: an iterator object, not an async generator, because a generator left at
    its `yield` (every call that succeeds) is closed by a task the event loop makes for it, and
    a batch call runs for every batch."""

    __slots__ = ("_backoff", "_clock", "_deadline", "_number", "_retry", "_stop")

    def __init__(
        self,
        retry: Retry,
        stop: asyncio.Event | None,
        deadline: float | None,
        clock: Callable[[], float],
    ) -> None:
        self._retry = retry
        self._stop = stop
        self._deadline = deadline
        self._clock = clock
        self._number = 0
        self._backoff: Backoff | None = None  # made on the first failure: most calls have none

    def __aiter__(self) -> _Tries:
        return self

    async def __anext__(self) -> Attempt:
        retry = self._retry
        if self._number:
            if retry.attempts is not None and self._number >= retry.attempts:
                raise StopAsyncIteration
            self._backoff = self._backoff or Backoff(retry.base_seconds, retry.cap_seconds)
            delay = self._backoff.next_delay()
            if self._deadline is not None:
                delay = min(delay, self._deadline - self._clock())
                if delay <= 0:
                    raise StopAsyncIteration
            if self._stop is None:
                await asyncio.sleep(delay)
            elif await sleep_unless(self._stop, delay):
                raise StopAsyncIteration
        self._number += 1
        return Attempt(self._number, retry.attempts, self._deadline, self._clock)


__all__ = ["Attempt", "Backoff", "Retry", "first_of", "sleep_unless"]
