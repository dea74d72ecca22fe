"""The start-up wait for a dependency: outages waited out until the deadline, then one line
saying what failed last; refusals at once."""

from __future__ import annotations

import asyncio

import pytest

from exporter.cli.startup import Dependency, NeverReached, first_contact
from exporter.settings import ConfigurationError
from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable
from exporter.store import StoreRefused, StoreUnavailable

SQS: Dependency[Exception] = Dependency(
    "SQS", "http://127.0.0.1:9", "check AWS_ENDPOINT_URL", SourceUnavailable
)


async def test_the_deadline_names_the_dependency_the_last_failure_and_the_fix() -> None:
    """A check that keeps failing ends after the deadline with every part of the line."""
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise SourceUnavailable(f"SQS GetQueueUrl failed: try {calls}")

    with pytest.raises(NeverReached) as raised:
        await first_contact(fails, SQS, timeout_seconds=0.3, stop=asyncio.Event())
    assert str(raised.value) == (
        "SQS at http://127.0.0.1:9 did not answer within 0.3 s of start-up "
        f"(EXPORTER_STARTUP_TIMEOUT_SECONDS): SQS GetQueueUrl failed: try {calls}; "
        "check AWS_ENDPOINT_URL"
    )
    assert calls > 1


async def test_a_try_cut_by_the_deadline_still_names_the_failure_before_it() -> None:
    """When the deadline strikes mid-try, the line says so and what failed the try before."""
    calls = 0

    async def fails_then_hangs() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise SourceUnavailable("cannot connect to 127.0.0.1:9")
        await asyncio.Event().wait()

    with pytest.raises(NeverReached, match=r"no answer in time \(before that: cannot connect"):
        await first_contact(fails_then_hangs, SQS, timeout_seconds=0.5, stop=asyncio.Event())


async def test_refusals_end_the_wait_at_once() -> None:
    """What is no outage ends it without a retry; a dependency may turn a refusal into an error
    of its own (Redis's refused password: a configuration error)."""

    async def misconfigured() -> None:
        raise SourceMisconfigured("no such queue")

    with pytest.raises(SourceMisconfigured):
        await first_contact(misconfigured, SQS, timeout_seconds=0, stop=asyncio.Event())
    refusing: Dependency[StoreRefused] = Dependency(
        "Redis",
        "x",
        "y",
        StoreUnavailable,
        (StoreRefused,),
        lambda exc: ConfigurationError(f"refused: {exc}"),
    )

    async def refused() -> None:
        raise StoreRefused("WRONGPASS invalid username-password pair")

    with pytest.raises(ConfigurationError, match="refused: WRONGPASS"):
        await first_contact(refused, refusing, timeout_seconds=0, stop=asyncio.Event())
