"""Store faults: pause polling when the store fails, resume once a write goes through again.

Two kinds of fault pause the pollers alike. An outage (connection lost, a timeout) heals by
itself and is logged as a warning. A refusal (READONLY, OOM, NOAUTH, a script error, CLUSTERDOWN)
needs someone to act: it is logged as an error with Redis's own words and shown on /ready. Either
way nothing is received while paused, so SQS redeliveries do not spend receive counts, and a
background probe (a script that writes what a batch writes, decision 0017) resumes polling when it
succeeds. A store that refuses again soon after a resume must not make polling flap (each flap
spends a receive of every message in flight): the next resume then waits until probes have passed
for a while, twice as long after each quick relapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Final

from exporter.metrics import ProcessorMetrics
from exporter.retry import Backoff, first_of, sleep_unless
from exporter.store import Store, StoreMisconfigured, StoreRefused, StoreUnavailable

log = logging.getLogger(__name__)

# A probe that neither succeeds nor fails within this long counts as failed.
PROBE_TIMEOUT_SECONDS: Final = 30.0
# While paused, the cause is logged again after a minute, then every five minutes.
FIRST_REMINDER_SECONDS: Final = 60.0
REMINDER_SECONDS: Final = 300.0
# A refusal this soon after a resume is a relapse: the next resume waits for probes to pass for
# a hold, 2 s after the first relapse, doubling after each further one up to 2 minutes; a resume
# that lasts past the window starts afresh (decision 0017).
RELAPSE_WINDOW_SECONDS: Final = 60.0
HOLD_BASE_SECONDS: Final = 2.0
HOLD_CAP_SECONDS: Final = 120.0
# Figures in a cause (memory used, replicas counted) change from probe to probe; the cause is
# logged again only when its words change.
_FIGURES: Final = re.compile(r"\d+(?:\.\d+)?")


class StoreRecovery:
    """Whether the store works now, why not, and the task that finds out when it works again.

    The probing task must never end before the store works again or the processor stops: if it
    did, the pollers would wait for ever (seen: an error raised inside redis-py ended it after a
    cluster node restarted). So it survives any error of a probe, bounds each probe in time, and
    probes at least every `backoff.cap_seconds`, so that polling resumes within about that long
    of the store taking writes again.
    """

    def __init__(
        self,
        store: Store,
        metrics: ProcessorMetrics,
        stopping: asyncio.Event,
        *,
        on_change: Callable[[], None],
        on_fatal: Callable[[StoreMisconfigured], None],
        backoff: Backoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._stopping = stopping
        self._on_change = on_change
        self._on_fatal = on_fatal
        self._backoff = backoff
        self._clock = clock
        self.ok = asyncio.Event()
        self.ok.set()
        self.cause: str | None = None
        self._refused = False
        self._paused_at = 0.0
        self._next_reminder = 0.0
        self._task: asyncio.Task[None] | None = None
        self._resumed_at: float | None = None
        self._hold = 0.0
        self._passing_since: float | None = None

    @property
    def problem(self) -> str | None:
        """Why polling is paused, for /ready; None while the store works."""
        if self.ok.is_set():
            return None
        if self._passing_since is not None:
            return (
                f"paused: {self.cause}; probes pass again, resuming once they have passed for "
                f"{self._hold:g} s (Redis refused again soon after the last resume)"
            )
        return f"paused: {self.cause}"

    @property
    def refused(self) -> bool:
        """Whether polling is paused because Redis refuses (it answered), not for an outage."""
        return self._refused and not self.ok.is_set()

    @property
    def hold_seconds(self) -> float:
        """How long probes must pass before the next resume (0: at the first that passes)."""
        return self._hold

    def failed(self, exc: StoreUnavailable | StoreRefused, operation: str) -> None:
        """Pause polling for `exc` and start probing for the store's return."""
        self._metrics.dependency_errors.labels(dependency="redis", operation=operation).inc()
        self._note(exc)
        if self.ok.is_set():
            self.ok.clear()
            self._paused_at = self._clock()
            self._next_reminder = self._paused_at + FIRST_REMINDER_SECONDS
            self._lengthen_hold()
            self._on_change()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._recover(), name="store-recovery")

    def _lengthen_hold(self) -> None:
        """A pause right after a resume doubles the next hold; a lasting resume clears it."""
        resumed_at = self._resumed_at
        if resumed_at is None or self._paused_at - resumed_at >= RELAPSE_WINDOW_SECONDS:
            self._hold = 0.0
            return
        self._hold = min(max(self._hold * 2, HOLD_BASE_SECONDS), HOLD_CAP_SECONDS)
        log.warning(
            "Redis refused again %.1f s after polling resumed; the next resume waits until "
            "probes have passed for %g s",
            self._paused_at - resumed_at,
            self._hold,
        )

    def _note(self, exc: StoreUnavailable | StoreRefused) -> None:
        """Log a cause once, when it first appears: a flapping log hides what is wrong."""
        cause = str(exc)
        if _words(cause) == _words(self.cause) and not self.ok.is_set():
            self.cause = cause  # the latest figures, for /ready
            self._remind()
            return
        self.cause = cause
        self._refused = isinstance(exc, StoreRefused)
        if self._refused:
            log.error("Redis refuses the store's calls; not receiving until this clears: %s", cause)
        else:
            log.warning("Redis is unavailable; pausing polling and deleting: %s", cause)

    def _remind(self) -> None:
        """Say again, now and then, that polling is still paused: one line at the start of a long
        outage is easy to miss, and an operator should not have to infer it from silence."""
        now = self._clock()
        if now < self._next_reminder:
            return
        self._next_reminder = now + REMINDER_SECONDS
        level = logging.ERROR if self._refused else logging.WARNING
        log.log(
            level,
            "still not receiving: Redis has failed every probe for %.0f s: %s",
            now - self._paused_at,
            self.cause,
        )

    async def wait(self) -> None:
        """Return once the store works again or the processor is stopping."""
        await first_of(self.ok.wait(), self._stopping.wait())

    async def _recover(self) -> None:
        # The write probe's one retry layer (decision 0022): a probe is one call, tried again
        # here after the backoff until it passes or the processor stops.
        self._backoff.reset()
        self._passing_since = None
        while not self._stopping.is_set():
            if await sleep_unless(self._stopping, self._backoff.next_delay()):
                return
            if not await self._probe():
                self._passing_since = None
                continue
            now = self._clock()
            if self._passing_since is None:
                self._passing_since = now
            if now - self._passing_since < self._hold:
                continue  # a relapse before: the store must prove itself for the whole hold
            log.info("Redis is back: resuming (it was: %s)", self.cause)
            self.cause = None
            self._passing_since = None
            self._resumed_at = now
            self.ok.set()
            self._on_change()
            return

    async def _probe(self) -> bool:
        """One write probe; False (and the cause noted) for any failure, never an exception."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await self._store.probe_write()
        except StoreMisconfigured as exc:
            # The layout changed under a running processor (another shard count written after
            # a reconnect): no probe will ever pass, so the processor stops.
            self._metrics.dependency_errors.labels(dependency="redis", operation="probe").inc()
            self._on_fatal(exc)
            return False
        except (StoreUnavailable, StoreRefused) as exc:
            self._metrics.dependency_errors.labels(dependency="redis", operation="probe").inc()
            self._note(exc)
            return False
        except TimeoutError:
            self._metrics.dependency_errors.labels(dependency="redis", operation="probe").inc()
            self._note(
                StoreUnavailable(f"no answer to the write probe in {PROBE_TIMEOUT_SECONDS}s")
            )
            return False
        except Exception as exc:  # a bug must not end the probing, or nothing resumes polling
            self._metrics.dependency_errors.labels(dependency="redis", operation="probe").inc()
            if str(exc) != self.cause:
                log.exception("the write probe failed unexpectedly; probing goes on")
            self.cause = str(exc) or type(exc).__name__
            return False
        return True

    async def close(self) -> None:
        """Stop probing; never raises (a shutdown must end cleanly in every state)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _words(cause: str | None) -> str | None:
    return None if cause is None else _FIGURES.sub("#", cause)


__all__ = ["StoreRecovery"]
