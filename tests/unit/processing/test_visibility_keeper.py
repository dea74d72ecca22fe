"""The visibility keeper: a batch's extension starts when it is due and only if it still works,
in the batch's own context, with one timer for every batch, none left once all are released."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Coroutine

from exporter.processing.visibility import VisibilityKeeper
from tests.polling import wait_limit

BATCH: contextvars.ContextVar[str] = contextvars.ContextVar("batch", default="none")


class Extensions:
    """Records which batch's extension started, when, and in which context."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, float]] = []
        self.cancelled: list[str] = []
        self.changed = asyncio.Event()

    def extend(self, name: str) -> Coroutine[object, object, None]:
        async def run() -> None:
            self.started.append((name, BATCH.get(), time.monotonic()))
            self.changed.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(name)
                raise

        return run()

    async def wait_for(self, count: int) -> None:
        while len(self.started) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=wait_limit(5))


def timer_pending(keeper: VisibilityKeeper) -> bool:
    """Whether the keeper holds a timer: read from its state, as nothing else shows one."""
    return keeper._timer is not None


async def test_a_batch_released_in_time_is_never_extended_and_leaves_no_timer() -> None:
    """Batches that end before they are due start nothing; the last release cancels the timer."""
    keeper = VisibilityKeeper()
    extensions = Extensions()
    watches = [keeper.watch(0.2, functools.partial(extensions.extend, f"b{n}")) for n in range(3)]
    for watch in watches:
        await keeper.release(watch)
    assert not timer_pending(keeper)  # no timer may outlive the batches
    await asyncio.sleep(0.3)  # past every deadline: nothing may start late
    assert extensions.started == []


async def test_a_batch_still_at_work_when_due_is_extended_in_its_own_context() -> None:
    """Only the batch past its deadline is extended, from then on, with its own context; its
    release cancels the extension. A later batch due sooner moves the one timer earlier."""
    keeper = VisibilityKeeper()
    extensions = Extensions()
    started = time.monotonic()
    BATCH.set("slow")
    slow = keeper.watch(0.6, lambda: extensions.extend("slow"))
    BATCH.set("quick")
    quick = keeper.watch(5.0, lambda: extensions.extend("quick"))
    BATCH.set("sooner")
    sooner = keeper.watch(0.1, lambda: extensions.extend("sooner"))
    BATCH.set("none")
    await extensions.wait_for(1)
    assert [name for name, _, _ in extensions.started] == ["sooner"]
    await keeper.release(sooner)
    assert extensions.cancelled == ["sooner"]
    await extensions.wait_for(2)
    (_, context_a, at_a), (name, context, at) = extensions.started
    assert (context_a, name, context) == ("sooner", "slow", "slow")
    assert at_a - started >= 0.1
    assert at - started >= 0.6
    await keeper.release(slow)
    await keeper.release(quick)
    assert extensions.cancelled == ["sooner", "slow"]
    assert not timer_pending(keeper)
