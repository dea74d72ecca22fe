"""The store recovery cannot get stuck: whatever a probe raises, probing goes on until a write
goes through or the processor stops, and closing it never raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.recovery import StoreRecovery
from exporter.retry import Backoff
from exporter.store import StoreMisconfigured, StoreRefused, StoreUnavailable


@dataclass
class ScriptedProbe:
    """A store whose write probe raises each of `failures` in turn, then succeeds."""

    failures: Sequence[BaseException]
    calls: int = 0
    hang: bool = False
    called: asyncio.Event = field(default_factory=asyncio.Event)

    async def probe_write(self) -> None:
        self.calls += 1
        self.called.set()
        if self.hang:
            await asyncio.Event().wait()
        if self.calls <= len(self.failures):
            raise self.failures[self.calls - 1]


def _recovery(store: ScriptedProbe, stopping: asyncio.Event) -> StoreRecovery:
    return StoreRecovery(
        # Only probe_write is called: the rest of the Store protocol is not needed here.
        store,  # type: ignore[arg-type]
        build_metrics(CollectorRegistry()),
        stopping,
        on_change=lambda: None,
        on_fatal=lambda exc: stopping.set(),
        backoff=Backoff(0.001, 0.01),
    )


async def test_probing_survives_errors_that_are_not_the_stores() -> None:
    """A probe raising an AttributeError (redis-py's broken state, seen in a cluster restart) or
    a bug of ours no longer ends the probing: polling resumes once a probe passes."""
    store = ScriptedProbe(
        [
            StoreUnavailable("Redis write probe failed: Error 111"),
            AttributeError("'NoneType' object has no attribute 'writelines'"),
            RuntimeError("a bug"),
            StoreRefused("Redis write probe failed: READONLY"),
        ]
    )
    stopping = asyncio.Event()
    recovery = _recovery(store, stopping)
    recovery.failed(StoreUnavailable("Redis apply failed: Error 111"), "apply")
    assert recovery.problem is not None
    await asyncio.wait_for(recovery.ok.wait(), timeout=10)
    assert store.calls == 5
    assert recovery.problem is None
    await recovery.close()


async def test_a_layout_found_changed_while_paused_stops_instead_of_probing_for_ever() -> None:
    """A probe that meets StoreMisconfigured (another shard count, found after a reconnect) hands
    it to the processor's fatal stop at once: no probe can ever pass, so it is not a pause."""
    misconfigured = StoreMisconfigured("EXPORTER_REDIS_SHARDS is 1 but the data ... 3 shards")
    store = ScriptedProbe([misconfigured])
    stopping = asyncio.Event()
    fatal: list[StoreMisconfigured] = []

    def stop(exc: StoreMisconfigured) -> None:
        fatal.append(exc)
        stopping.set()

    recovery = StoreRecovery(
        store,  # type: ignore[arg-type]
        build_metrics(CollectorRegistry()),
        stopping,
        on_change=lambda: None,
        on_fatal=stop,
        backoff=Backoff(0.001, 0.01),
    )
    recovery.failed(StoreUnavailable("Redis apply failed: Error 111"), "apply")
    await asyncio.wait_for(stopping.wait(), timeout=10)
    assert fatal == [misconfigured]
    assert store.calls == 1
    assert not recovery.ok.is_set()
    await recovery.close()


async def test_closing_while_a_probe_hangs_or_failed_never_raises() -> None:
    """Stopping in any state, a probe hanging in the middle of a call included, returns cleanly."""
    store = ScriptedProbe([], hang=True)
    stopping = asyncio.Event()
    recovery = _recovery(store, stopping)
    recovery.failed(StoreUnavailable("Redis apply failed: timeout"), "apply")
    await asyncio.wait_for(store.called.wait(), timeout=5)
    stopping.set()
    await asyncio.wait_for(recovery.close(), timeout=5)
    assert not recovery.ok.is_set()


@dataclass
class FakeClock:
    """Monotonic time that moves only when told, and a little at every read."""

    now: float = 0.0
    step: float = 0.25

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_a_refusal_soon_after_a_resume_holds_the_next_resume() -> None:
    """Resume, refused again within the relapse window: the next resume waits until probes have
    passed for 2 s, then 4 s after a second relapse; a resume that lasted past the window starts
    afresh (resuming at the first probe that passes)."""
    store = ScriptedProbe([])
    stopping = asyncio.Event()
    clock = FakeClock()
    recovery = StoreRecovery(
        store,  # type: ignore[arg-type]
        build_metrics(CollectorRegistry()),
        stopping,
        on_change=lambda: None,
        on_fatal=lambda exc: stopping.set(),
        backoff=Backoff(0.001, 0.01),
        clock=clock,
    )
    refused = StoreRefused("Redis apply failed: OOM command not allowed")

    async def episode() -> tuple[float, int]:
        calls = store.calls
        recovery.failed(refused, "apply")
        await asyncio.wait_for(recovery.ok.wait(), timeout=10)
        return recovery.hold_seconds, store.calls - calls

    assert await episode() == (0.0, 1)
    hold, probes = await episode()
    assert hold == 2.0
    assert probes >= 2.0 / clock.step  # each probe reads the clock once or more
    assert (await episode())[0] == 4.0
    clock.now += 61  # a resume that lasted
    assert await episode() == (0.0, 1)
    await recovery.close()


async def test_causes_that_differ_only_in_their_figures_are_logged_once() -> None:
    """Memory figures change from probe to probe: the cause is not logged again for them."""
    store = ScriptedProbe(
        [
            StoreRefused("memory: used 3.1 MB of maxmemory 3.0 MB"),
            StoreRefused("memory: used 3.2 MB of maxmemory 3.0 MB"),
            StoreRefused("memory: used 3.3 MB of maxmemory 3.0 MB"),
        ]
    )
    stopping = asyncio.Event()
    recovery = _recovery(store, stopping)
    logged: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    handler = Catch(logging.ERROR)
    logger = logging.getLogger("exporter.processing.recovery")
    logger.addHandler(handler)
    try:
        recovery.failed(StoreRefused("memory: used 3.0 MB of maxmemory 3.0 MB"), "apply")
        await asyncio.wait_for(recovery.ok.wait(), timeout=10)
    finally:
        logger.removeHandler(handler)
        await recovery.close()
    assert len([line for line in logged if "refuses" in line]) == 1, logged
