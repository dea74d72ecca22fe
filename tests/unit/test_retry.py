"""The one way to wait and try again: backoff, the stop-aware sleep, the first of several waits,
and a retry policy's tries (a fake clock where the logic is pure)."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from exporter.retry import Attempt, Backoff, Retry, first_of, sleep_unless


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_its_ceiling_up_to_the_cap_with_a_tenth_as_floor() -> None:
    """Each delay lies within a tenth of its ceiling and the ceiling; ceilings double from the
    base to the cap, and a reset starts from the base again."""
    random.seed(7)
    backoff = Backoff(base_seconds=0.1, cap_seconds=0.5)
    ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]
    for ceiling in ceilings:
        assert ceiling / 10 <= backoff.next_delay() <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_an_attempt_is_last_at_the_limit_or_past_the_deadline() -> None:
    """`last` says no further try follows a failure: the limit reached, or the deadline passed
    (read from the clock when asked)."""
    clock = FakeClock()
    assert Attempt(3, 3, None, clock).last
    assert not Attempt(2, 3, None, clock).last
    open_ended = Attempt(9, None, clock.now + 5, clock)
    assert not open_ended.last
    clock.now += 5
    assert open_ended.last


async def test_a_failing_call_is_tried_exactly_the_limit_times() -> None:
    """Every try failing: the call is tried `attempts` times, then the last failure is raised."""
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"try {calls}")

    with pytest.raises(ConnectionError, match="try 4"):
        await Retry(4, 0.0, 0.0).call(fails, on=ConnectionError)
    assert calls == 4


async def test_only_the_named_failures_are_tried_again() -> None:
    """A failure of another kind is raised at its first try; a success ends the tries."""
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        await Retry(5, 0.0, 0.0).call(refused, on=ConnectionError)
    assert calls == 1

    async def second_time_lucky() -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("once")
        return "answer"

    assert await Retry(5, 0.0, 0.0).call(second_time_lucky, on=ConnectionError) == "answer"
    assert calls == 3


async def test_a_stop_during_a_pause_ends_the_tries_without_another() -> None:
    """`stop` set while the layer waits out its backoff: the loop ends at once, no further try."""
    stop = asyncio.Event()
    numbers = []
    async for attempt in Retry(None, 30.0, 30.0).tries(stop=stop):
        numbers.append(attempt.number)
        asyncio.get_running_loop().call_soon(stop.set)
    assert numbers == [1]


async def test_the_pause_before_a_try_is_cut_at_the_deadline() -> None:
    """A backoff longer than what is left of the deadline is cut to it: the next try comes at
    the deadline, not after the whole backoff, and once the deadline has passed no try follows."""
    clock = FakeClock()
    deadline = clock.now + 60
    numbers = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    async for attempt in Retry(None, 60.0, 60.0).tries(deadline=deadline, clock=clock):
        numbers.append(attempt.number)
        # 10 ms left after the first try; none after the second.
        clock.now = deadline - 0.01 if attempt.number == 1 else deadline
    assert numbers == [1, 2]
    assert loop.time() - started < 30


def test_blocking_tries_stop_when_the_event_is_set() -> None:
    """The thread variant pauses on the event: set, it ends the tries."""
    stop = threading.Event()
    numbers = []
    for attempt in Retry(10, 0.0, 0.0).blocking_tries(stop):
        numbers.append(attempt.number)
        if attempt.number == 3:
            stop.set()
    assert numbers == [1, 2, 3]


async def test_the_stop_aware_sleep_ends_when_stop_is_set() -> None:
    """The sleep says whether it was stopped: at once when `stop` is set (before or during it),
    after the time otherwise."""
    stop = asyncio.Event()
    assert await sleep_unless(stop, 0.0) is False
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await sleep_unless(stop, 60.0) is True
    assert await sleep_unless(stop, 60.0) is True


async def test_first_of_returns_the_first_to_end_and_cancels_the_rest() -> None:
    """The index of the wait that ended first; the other waits are cancelled by the time it
    returns; what the first raised is raised."""
    first, second = asyncio.Event(), asyncio.Event()
    never = asyncio.ensure_future(asyncio.Event().wait())
    asyncio.get_running_loop().call_soon(second.set)
    assert await first_of(first.wait(), second.wait(), never) == 1
    assert never.cancelled()

    async def fails() -> None:
        raise LookupError("the first to end")

    with pytest.raises(LookupError):
        await first_of(asyncio.Event().wait(), fails())


async def test_first_of_prefers_the_earlier_of_waits_that_end_together() -> None:
    """Two waits already ended: the first of them in the call counts."""
    done = asyncio.Event()
    done.set()
    assert await first_of(done.wait(), done.wait()) == 0


async def test_first_of_cancelled_cancels_every_wait() -> None:
    """A caller's deadline cancels first_of: no wait of it runs on."""
    never = asyncio.ensure_future(asyncio.Event().wait())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await first_of(never, asyncio.Event().wait())
    await asyncio.sleep(0)
    assert never.cancelled()
