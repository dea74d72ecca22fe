"""Waiting in tests: poll a condition against a deadline, never sleep and hope.

One helper in two forms, `wait_until` for a test's thread and `eventually` for its event loop
(where a blocking sleep would stop the very tasks being waited for). Both stretch the deadline by
EXPORTER_TEST_TIMEOUT_SCALE, end before the running test's own timeout, and say what they
waited for and the last value (or error) they saw.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final


def _timeout_scale() -> float:
    raw = os.environ.get("EXPORTER_TEST_TIMEOUT_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"EXPORTER_TEST_TIMEOUT_SCALE must be a number, got {raw!r}") from None
    if not scale >= 1:
        raise ValueError(f"EXPORTER_TEST_TIMEOUT_SCALE must be 1 or more, got {raw!r}")
    return scale


# The one knob for a slow or shared machine: every wait and pytest's per-test timeout are
# multiplied by it (a loaded CI machine took 45 s to start the API that starts in 1 s idle).
TIMEOUT_SCALE: Final = _timeout_scale()
# When the running test's own timeout would strike; waits end before it so their message shows.
_test_deadline: float | None = None
# Left between a wait that ran out of the test's time and pytest-timeout's kill.
_DEADLINE_MARGIN_SECONDS: Final = 10.0


def scaled(seconds: float) -> float:
    """`seconds` stretched for this machine (EXPORTER_TEST_TIMEOUT_SCALE)."""
    return seconds * TIMEOUT_SCALE


def set_test_deadline(at: float | None) -> None:
    """Record when the running test times out (time.monotonic()), or None between tests."""
    global _test_deadline  # noqa: PLW0603 - one test runs at a time; conftest sets it per test
    _test_deadline = at


def wait_limit(timeout: float) -> float:
    """How long a wait asking for `timeout` seconds may take: scaled, and ending before the
    running test's own timeout, so a wait that runs out says what it waited for."""
    limit = scaled(timeout)
    if _test_deadline is not None:
        limit = min(limit, max(0.0, _test_deadline - _DEADLINE_MARGIN_SECONDS - time.monotonic()))
    return limit


class _Poll:
    """One wait's deadline and what it last saw; both forms of the helper share it."""

    def __init__(self, timeout: float, message: str, until: Callable[[Any], object]) -> None:
        self.limit = wait_limit(timeout)
        self.deadline = time.monotonic() + self.limit
        self.message = message
        self.until = until
        self.seen = "nothing yet"

    def holds(self, value: object) -> bool:
        """Whether the condition holds for `value`, which is remembered if it does not."""
        if self.until(value):
            return True
        self.seen = repr(value)
        return False

    def failed(self, error: BaseException) -> None:
        """An error of a kind the wait ignores: remembered as what it saw."""
        self.seen = f"{type(error).__name__}: {error}"

    def check_deadline(self) -> None:
        """Raise TimeoutError, naming what was awaited and the last thing seen, once it is past."""
        if time.monotonic() > self.deadline:
            raise TimeoutError(
                f"timed out after {self.limit:.1f}s waiting for {self.message} "
                f"(last seen: {self.seen})"
            )


def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
    until: Callable[[Any], object] = bool,
    ignoring: tuple[type[BaseException], ...] = (Exception,),
) -> None:
    """Poll `condition` until `until` holds for what it returns (until it is truthy by default);
    after `timeout` seconds (scaled) raise TimeoutError naming `message` and the last value seen.
    Errors of the `ignoring` kinds count as not yet: a server that is still starting may refuse
    or reset."""
    poll = _Poll(timeout, message, until)
    while True:
        try:
            if poll.holds(condition()):
                return
        except ignoring as error:
            poll.failed(error)
        poll.check_deadline()
        time.sleep(interval)


async def eventually(
    condition: Callable[[], Awaitable[object] | object],
    *,
    # A deadline of its own, not asyncio.timeout: running out names the last value seen.
    timeout: float = 15.0,  # noqa: ASYNC109
    interval: float = 0.05,
    message: str = "condition",
    until: Callable[[Any], object] = bool,
    ignoring: tuple[type[BaseException], ...] = (),
) -> None:
    """`wait_until` for a test's event loop: `condition` may be sync or async, and the loop runs
    other tasks between polls (`interval=0` yields one turn). Errors end the wait at once unless
    of the `ignoring` kinds: in-process code under test should not raise while being waited on."""
    poll = _Poll(timeout, message, until)
    while True:
        try:
            value = condition()
            if poll.holds(await value if inspect.isawaitable(value) else value):
                return
        except ignoring as error:
            poll.failed(error)
        poll.check_deadline()
        await asyncio.sleep(interval)
