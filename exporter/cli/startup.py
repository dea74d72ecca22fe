"""The first contact with Redis or SQS at start-up: a mistake exits at once, an absence after a
deadline.

Once a process has reached a dependency, losing it is an outage it waits out (pausing, reporting
not ready). Before that, waiting hides mistakes: a refused password, a database or a queue that
does not exist, or a certificate that does not verify looks like an outage for ever, and so does
a typo'd port, host or region. So at start-up a refusal exits 2 with one line, and a dependency
never reached within EXPORTER_STARTUP_TIMEOUT_SECONDS exits 1 with one line saying what was last
tried and how it failed. One loop serves every dependency: what differs is described by a
`Dependency`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from exporter.retry import Retry, first_of
from exporter.settings import ConfigurationError
from exporter.sqs.messages import SourceUnavailable
from exporter.store import StoreMisconfigured, StoreRefused, StoreUnavailable, StoreUntrusted
from exporter.web.errors import refusal_problem

log = logging.getLogger("exporter.startup")

STARTUP_RETRY: Final = Retry(None, base_seconds=0.2, cap_seconds=2.0)


class NeverReached(Exception):
    """A dependency did not answer within the start-up deadline; the message names it and why."""


def _no_refusal(_exc: Exception) -> Exception | None:
    return None


@dataclass(frozen=True, slots=True)
class Dependency:
    """What start-up waits for, and how its one line of failure reads.

    `outage` is the failure waited out until the deadline; `refusal` turns one of those into the
    error that ends the command at once instead (None: wait on). Any other error ends it too.
    """

    name: str
    shown: str
    fix: str
    outage: type[Exception]
    refusal: Callable[[Exception], Exception | None] = _no_refusal


def redis_dependency(shown: str) -> Dependency:
    """Redis at `shown` (its URL, redacted): a refusal of this configuration exits 2."""

    def refusal(exc: Exception) -> Exception | None:
        if isinstance(exc, StoreMisconfigured):
            return exc  # it names the setting and both values already
        if isinstance(exc, StoreRefused):
            return ConfigurationError(refusal_line(shown, exc))
        return None

    return Dependency(
        "Redis", shown, "check the host and port in REDIS_URL", StoreUnavailable, refusal
    )


def refusal_line(store: str, exc: StoreRefused) -> str:
    """The one line a refusal at start-up ends the command with: what to change, never a
    password (`store` is shown redacted)."""
    if isinstance(exc, StoreUntrusted):  # the exporter refused the server, or it our handshake
        return f"Redis at {store}: {exc}"
    return f"Redis at {store} refuses this configuration: {refusal_problem(exc)}"


def sqs_dependency(shown: str, fix: str) -> Dependency:
    """SQS at the endpoint `shown`: SourceMisconfigured (refused keys, no such queue) is not an
    outage, so it ends the command at once."""
    return Dependency("SQS", shown, fix, SourceUnavailable)


async def first_contact(
    check: Callable[[], Awaitable[None]],
    dependency: Dependency,
    *,
    timeout_seconds: float,
    stop: asyncio.Event,
) -> bool:
    """Return True once `check` passes, False if `stop` is set first.

    Raises what `dependency.refusal` makes of a refusal (exit 2), NeverReached when the deadline
    passes first (exit 1); `timeout_seconds` 0 waits for ever.

    The one retry layer of a first contact (decision 0022): `check` (finding the queues, the
    store's write probe) makes one attempt, tried again here until the deadline.
    """
    deadline = time.monotonic() + timeout_seconds if timeout_seconds > 0 else None
    last: str | None = None  # the last failure, for a deadline that strikes mid-try
    warned = False
    async for attempt in STARTUP_RETRY.tries(stop=stop, deadline=deadline):
        if stop.is_set():
            break
        try:
            # A call that neither answers nor fails must not carry the wait past its deadline;
            # SIGTERM during a hanging check ends the command at once (the check is cancelled).
            limit = None if deadline is None else max(deadline - time.monotonic(), 1.0)
            async with asyncio.timeout(limit):
                if await first_of(check(), stop.wait()) == 1:
                    return False
        except TimeoutError:
            if attempt.last:
                cause = "no answer in time" + (f" (before that: {last})" if last else "")
                raise NeverReached(_never(dependency, timeout_seconds, cause)) from None
            continue
        except dependency.outage as exc:
            refusal = dependency.refusal(exc)
            if refusal is not None:
                raise refusal from None
            last = str(exc)
            if attempt.last:
                raise NeverReached(_never(dependency, timeout_seconds, last)) from None
            if not warned:
                warned = True
                log.warning(
                    "%s is not reachable yet; retrying",
                    dependency.name,
                    extra={
                        "dependency": dependency.name,
                        "at": dependency.shown,
                        "detail": str(exc),
                        "gives_up_after_seconds": timeout_seconds or None,
                    },
                )
            continue
        log.info("%s answers", dependency.name, extra={"at": dependency.shown})
        return True
    if stop.is_set():
        return False
    # The deadline passed between a failed try and the next.
    raise NeverReached(_never(dependency, timeout_seconds, last or "no answer in time"))


def _never(dependency: Dependency, timeout_seconds: float, cause: str) -> str:
    return (
        f"{dependency.name} at {dependency.shown} did not answer within {timeout_seconds:g} s of "
        f"start-up (EXPORTER_STARTUP_TIMEOUT_SECONDS): {cause}; {dependency.fix}"
    )


__all__ = [
    "Dependency",
    "NeverReached",
    "first_contact",
    "redis_dependency",
    "refusal_line",
    "sqs_dependency",
]
