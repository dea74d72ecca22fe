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
from exporter.store import StoreRefused, StoreUnavailable
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

    Raises ConfigurationError when Redis refuses the call (exit 2), StoreNeverReached when the
    deadline passes first (exit 1); `timeout_seconds` 0 waits for ever.
    """
    deadline = time.monotonic() + timeout_seconds if timeout_seconds > 0 else None
    backoff = Backoff(RETRY_BASE_SECONDS, RETRY_CAP_SECONDS)
    warned = False
    while not stop.is_set():
        try:
            # A call that neither answers nor fails must not carry the wait past its deadline.
            limit = None if deadline is None else max(deadline - time.monotonic(), 1.0)
            async with asyncio.timeout(limit):
                await check()
        except TimeoutError:
            exc_text = "no answer in time"
            if deadline is not None and time.monotonic() >= deadline:
                raise StoreNeverReached(_never(store, timeout_seconds, exc_text)) from None
            continue
        except StoreRefused as exc:
            raise ConfigurationError(
                f"Redis at {store} refuses this configuration: {refusal_problem(exc)}"
            ) from None
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
            delay = backoff.next_delay()
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        log.info("store answers", extra={"store": store})
        return True
    return False


def _never(store: str, timeout_seconds: float, cause: str) -> str:
    return (
        f"Redis at {store} did not answer within {timeout_seconds:g} s of start-up "
        f"(EXPORTER_STARTUP_TIMEOUT_SECONDS): {cause}; check the host and port in REDIS_URL"
    )


__all__ = ["StoreNeverReached", "first_contact"]
