"""A real processor whose store pauses for good after its first applied batch, having written
MARKER; run as `python -m tests.integration.processing.pausing_processor MARKER`.

The test SIGKILLs it then, exactly between "stored" and "deleted". With a second argument, GATE,
the store instead writes MARKER when a batch reaches it and applies it only once the file GATE
exists: the test stops the processor with a batch in hand, then lets the batch go on. The pause
wraps the store from outside; production code knows nothing of it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from exporter.cli.parts import redis_store
from exporter.cli.processor import SETTINGS as PROCESSOR_SETTINGS
from exporter.cli.signals import stop_on_signals
from exporter.cli.wiring import run_processor
from exporter.events import Event
from exporter.logs import configure_logging
from exporter.settings import load_settings
from exporter.store import ApplyResult, Snapshot, Store
from exporter.store.detail import Breakdown, CountingConfig, Detail
from exporter.store.series import MinuteTotals


class PausingStore:
    """A store that applies one batch, writes `marker`, and never answers again."""

    def __init__(self, inner: Store, marker: Path) -> None:
        self._inner = inner
        self._marker = marker

    async def apply(self, events: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Apply for real, then hang until killed."""
        await self._inner.apply(events)
        await asyncio.to_thread(self._marker.write_text, str(len(events)))
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover

    async def snapshot(self) -> Snapshot:
        """The inner store's snapshot."""
        return await self._inner.snapshot()

    async def reset(self) -> None:
        """The inner store's reset."""
        await self._inner.reset()

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        """The inner store's buckets."""
        return await self._inner.series(event_type, first_minute, end_minute)

    async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
        """The inner store's rejected counts."""
        await self._inner.add_rejected(by_reason)

    async def rejected(self) -> Mapping[str, int]:
        """The inner store's rejected counts."""
        return await self._inner.rejected()

    async def ping(self) -> None:
        """The inner store's ping."""
        await self._inner.ping()

    async def probe_write(self) -> None:
        """The inner store's write probe."""
        await self._inner.probe_write()

    @property
    def counting(self) -> CountingConfig:
        """The inner store's configuration."""
        return self._inner.counting

    async def breakdown(self, event_type: str, dimension: str) -> Breakdown | None:
        """The inner store's breakdown."""
        return await self._inner.breakdown(event_type, dimension)

    async def detail(self) -> Detail:
        """The inner store's detail."""
        return await self._inner.detail()

    async def close(self) -> None:
        """Close the inner store."""
        await self._inner.close()


class GatedStore(PausingStore):
    """A store that writes `marker` when a batch arrives and applies it once `gate` exists."""

    def __init__(self, inner: Store, marker: Path, gate: Path) -> None:
        super().__init__(inner, marker)
        self._gate = gate

    async def apply(self, events: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Hold the batch until the gate opens, then apply it for real."""
        await asyncio.to_thread(self._marker.write_text, str(len(events)))
        # The test's signal is a file, which nothing can await: polled, with no deadline of
        # ours (the test's own waits have theirs).
        while not self._gate.exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return await self._inner.apply(events)


async def _main(marker: Path, gate: Path | None) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)  # as `exporter processor` does
    inner = redis_store(settings, PROCESSOR_SETTINGS)
    stop = asyncio.Event()
    stop_on_signals(stop)
    store = PausingStore(inner, marker) if gate is None else GatedStore(inner, marker, gate)
    try:
        await run_processor(settings, store, stop)
    finally:
        await inner.close()


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
