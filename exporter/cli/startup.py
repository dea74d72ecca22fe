"""The first contact with Redis at start-up: a mistake exits at once, an absence after a deadline.

Once a process has reached its store, losing it is an outage it waits out (pausing, reporting not
ready). Before that, waiting hides mistakes: a refused password or a database that does not exist
looks like an outage for ever, and so does a typo'd port. So at start-up a refusal exits 2 with
one line, and a store never reached within EXPORTER_STARTUP_TIMEOUT_SECONDS exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from exporter.retry import Backoff
from exporter.settings import ConfigurationError
from exporter.store import (
    ReplicasMissing,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
    StoreUnfit,
)
from exporter.web.errors import refusal_problem

log = logging.getLogger("exporter.startup")

RETRY_BASE_SECONDS: Final = 0.2
RETRY_CAP_SECONDS: Final = 2.0


class StoreNeverReached(Exception):
    """The store did not answer within the start-up deadline; the message names it and why."""


async def first_contact(
    check: Callable[[], Awaitable[None]],
    *,
    store: str,
    timeout_seconds: float,
    stop: asyncio.Event,
) -> bool:
    """Return True once `check` passes, False if `stop` is set first.

    Raises ConfigurationError when Redis refuses the call or is set up so that totals could go
    wrong (exit 2), or answers but too few replicas acknowledge until the deadline (exit 2);
    StoreNeverReached when the deadline passes with no answer (exit 1); `timeout_seconds` 0
    waits for ever.
    """
    deadline = time.monotonic() + timeout_seconds if timeout_seconds > 0 else None
    backoff = Backoff(RETRY_BASE_SECONDS, RETRY_CAP_SECONDS)
    warned = False
    # Redis answered, but not enough replicas acknowledged: what the deadline then reports.
    replicas: ReplicasMissing | None = None
    while not stop.is_set():
        try:
            # A call that neither answers nor fails must not carry the wait past its deadline.
            limit = None if deadline is None else max(deadline - time.monotonic(), 1.0)
            async with asyncio.timeout(limit):
                if not await _unless_stopped(check(), stop):
                    return False
        except TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                if replicas is not None:
                    raise _too_few_replicas(store, timeout_seconds, replicas) from None
                raise StoreNeverReached(
                    _never(store, timeout_seconds, "no answer in time")
                ) from None
            continue
        except StoreMisconfigured:
            raise  # it names the setting and both values already
        except StoreUnfit as exc:  # Redis takes writes, but how it is set up would lose data
            raise ConfigurationError(f"Redis at {store}: {exc}") from None
        except StoreRefused as exc:
            raise ConfigurationError(
                f"Redis at {store} refuses this configuration: {refusal_problem(exc)}"
            ) from None
        except ReplicasMissing as exc:
            # Redis answered, and a replica may still be connecting: wait, saying what was
            # found; at the deadline the setting does not fit this Redis (exit 2).
            replicas = exc
            if deadline is not None and time.monotonic() >= deadline:
                raise _too_few_replicas(store, timeout_seconds, exc) from None
            if not warned:
                warned = True
                log.warning(
                    "Redis answers, but too few replicas acknowledge its writes; waiting",
                    extra={"store": store, "detail": str(exc)},
                )
            await _pause(backoff, deadline, stop)
            continue
        except StoreUnavailable as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise StoreNeverReached(_never(store, timeout_seconds, str(exc))) from None
            if not warned:
                warned = True
                log.warning(
                    "Redis is not reachable yet; retrying",
                    extra={
                        "store": store,
                        "detail": str(exc),
                        "gives_up_after_seconds": timeout_seconds or None,
                    },
                )
            await _pause(backoff, deadline, stop)
            continue
        log.info("store answers", extra={"store": store})
        return True
    return False


async def _pause(backoff: Backoff, deadline: float | None, stop: asyncio.Event) -> None:
    """The next backoff delay, cut at the deadline and by `stop`."""
    delay = backoff.next_delay()
    if deadline is not None:
        delay = max(0.0, min(delay, deadline - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


def _too_few_replicas(
    store: str, timeout_seconds: float, exc: ReplicasMissing
) -> ConfigurationError:
    return ConfigurationError(
        f"Redis at {store} answers, but for {timeout_seconds:g} s of start-up "
        f"(EXPORTER_STARTUP_TIMEOUT_SECONDS) {exc}"
    )


async def _unless_stopped(call: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await `call`, or cancel it when `stop` is set first (SIGTERM during a hanging check must
    end the command at once); True when the call finished."""
    task = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # our own deadline (or a cancellation): the call must not run on
        task.cancel()
        task.add_done_callback(_retrieve)
        raise
    finally:
        stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return False


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


def _never(store: str, timeout_seconds: float, cause: str) -> str:
    return (
        f"Redis at {store} did not answer within {timeout_seconds:g} s of start-up "
        f"(EXPORTER_STARTUP_TIMEOUT_SECONDS): {cause}; check the host and port in REDIS_URL"
    )


__all__ = ["StoreNeverReached", "first_contact"]
