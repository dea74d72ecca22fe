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
from typing import Any, Final, Generic, TypeVar

from exporter.retry import Retry, first_of
from exporter.settings import ConfigurationError
from exporter.sqs.messages import SourceUnavailable
from exporter.store import (
    ReplicasMissing,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
    StoreUnfit,
    StoreUntrusted,
)
from exporter.web.errors import refusal_problem

log = logging.getLogger("exporter.startup")

STARTUP_RETRY: Final = Retry(None, base_seconds=0.2, cap_seconds=2.0)


class NeverReached(Exception):
    """A dependency did not answer within the start-up deadline; the message names it and why."""


Refusal = TypeVar("Refusal", bound=Exception)


def _as_it_is(exc: Exception) -> Exception:
    return exc


def _nothing_special(_exc: Exception, _timeout_seconds: float) -> Exception | None:
    return None


@dataclass(frozen=True, slots=True)
class Dependency(Generic[Refusal]):
    """What start-up waits for, and how its one line of failure reads.

    `outage` is the failure waited out until the deadline. `refused` is the failure of a
    dependency that answered no, which may clear while running but at start-up is a mistake to
    show: `refusal` turns it into the error that ends the command at once. Any other error (the
    fatal ones: `exporter.faults.Fatal`) ends it too, as it is.
    `at_deadline` may turn the last failure into the error the deadline ends the command with
    (None: NeverReached, exit 1); `answered` tells a failure of a dependency that did answer
    (too few replicas) from one that did not, for the warning while waiting.
    """

    name: str
    shown: str
    fix: str
    outage: type[Exception]
    refused: tuple[type[Refusal], ...] = ()
    refusal: Callable[[Refusal], Exception] = _as_it_is
    at_deadline: Callable[[Exception, float], Exception | None] = _nothing_special
    answered: type[Exception] | None = None


def redis_dependency(shown: str) -> Dependency[StoreRefused]:
    """Redis at `shown` (its URL, redacted): a refusal of this configuration exits 2, and so
    does StoreMisconfigured (another shard count), which names the setting and both values."""

    def refusal(exc: StoreRefused) -> Exception:
        return ConfigurationError(refusal_line(shown, exc))

    def at_deadline(exc: Exception, timeout_seconds: float) -> Exception | None:
        # Redis answered all along, but the replicas a batch must wait for never came: the
        # setting does not fit this Redis (exit 2), it is not an absence (exit 1).
        if isinstance(exc, ReplicasMissing):
            return ConfigurationError(
                f"Redis at {shown} answers, but for {timeout_seconds:g} s of start-up "
                f"(EXPORTER_STARTUP_TIMEOUT_SECONDS) {exc}"
            )
        return None

    return Dependency(
        "Redis",
        shown,
        "check the host and port in REDIS_URL",
        StoreUnavailable,
        (StoreRefused,),
        refusal,
        at_deadline,
        answered=ReplicasMissing,
    )


def refusal_line(store: str, exc: StoreRefused | StoreMisconfigured) -> str:
    """The one line a refusal at start-up ends the command with: what to change, never a
    password (`store` is shown redacted)."""
    if isinstance(exc, StoreUntrusted | StoreUnfit):
        # The exporter refused the server (its certificate, or how it is set up to evict), or
        # the server our handshake: the message says what and what to set, not "Redis said".
        return f"Redis at {store}: {exc}"
    return f"Redis at {store} refuses this configuration: {refusal_problem(exc)}"


def sqs_dependency(shown: str, fix: str) -> Dependency[Exception]:
    """SQS at the endpoint `shown`: SourceMisconfigured (refused keys, no such queue) is not an
    outage, so it ends the command at once."""
    return Dependency("SQS", shown, fix, SourceUnavailable)


async def first_contact(
    check: Callable[[], Awaitable[None]],
    dependency: Dependency[Any],
    *,
    timeout_seconds: float,
    stop: asyncio.Event,
) -> bool:
    """Return True once `check` passes, False if `stop` is set first.

    Raises what `dependency.refusal` makes of a refusal (exit 2), NeverReached when the deadline
    passes first (exit 1) unless `dependency.at_deadline` names the last failure otherwise;
    `timeout_seconds` 0 waits for ever.

    The one retry layer of a first contact (decision 0022): `check` (finding the queues, the
    store's write probe) makes one attempt, tried again here until the deadline.
    """
    deadline = time.monotonic() + timeout_seconds if timeout_seconds > 0 else None
    last: Exception | None = None  # the last failure, for a deadline that strikes mid-try
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
                raise _at_deadline(dependency, timeout_seconds, last, timed_out=True) from None
            continue
        except dependency.refused as exc:
            raise dependency.refusal(exc) from None
        except dependency.outage as exc:
            last = exc
            if attempt.last:
                raise _at_deadline(dependency, timeout_seconds, exc) from None
            if not warned:
                warned = True
                _warn(dependency, exc, timeout_seconds)
            continue
        log.info("%s answers", dependency.name, extra={"at": dependency.shown})
        return True
    if stop.is_set():
        return False
    # The deadline passed between a failed try and the next.
    raise _at_deadline(dependency, timeout_seconds, last)


def _at_deadline(
    dependency: Dependency[Any],
    timeout_seconds: float,
    last: Exception | None,
    *,
    timed_out: bool = False,
) -> Exception:
    """The error the deadline ends the command with: the dependency's own reading of the last
    failure (too few replicas: exit 2), else NeverReached (exit 1) saying what failed."""
    if last is not None and (special := dependency.at_deadline(last, timeout_seconds)):
        return special
    if timed_out:
        cause = "no answer in time" + (f" (before that: {last})" if last else "")
    else:
        cause = str(last) if last is not None else "no answer in time"
    return NeverReached(_never(dependency, timeout_seconds, cause))


def _warn(dependency: Dependency[Any], exc: Exception, timeout_seconds: float) -> None:
    """Say once that start-up waits, and why: absent, or answering but not as it must."""
    extra = {
        "dependency": dependency.name,
        "at": dependency.shown,
        "detail": str(exc),
        "gives_up_after_seconds": timeout_seconds or None,
    }
    if dependency.answered is not None and isinstance(exc, dependency.answered):
        # Redis answers, but too few replicas acknowledge its writes.
        log.warning("%s answers, but %s; waiting", dependency.name, exc, extra=extra)
    else:
        log.warning("%s is not reachable yet; retrying", dependency.name, extra=extra)


def _never(dependency: Dependency[Any], timeout_seconds: float, cause: str) -> str:
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
