"""The production store: totals and remembered identities in Redis, shared by every replica."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from exporter.events import MICROS_PER_UNIT, Event
from exporter.store import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    DEFAULT_MAX_TYPES,
    ApplyResult,
    Outcome,
    Snapshot,
    StoreUnavailable,
    TypeTotals,
)
from exporter.store.coalesce import ApplyCoalescer
from exporter.store.redis_series import bucket_marks, read_buckets, unbucketed_positions
from exporter.store.series import MinuteTotals, SeriesPolicy

# Lua adds a chunk's whole units in doubles; 1000 events of at most 1e12 stay below 2^53.
MAX_EVENTS_PER_SCRIPT: Final = 1000
_OUTCOMES: Final[dict[int, Outcome]] = {
    0: "duplicate",
    1: "applied",
    2: "too_many_types",
    3: "sum_overflow",
}


def _load_script(name: str = "apply") -> str:
    return resources.files("exporter.store").joinpath(f"lua/{name}.lua").read_text()


class RedisStore:
    """Totals in one hash, known types in one set, one expiring key per remembered identity.

    Every key carries the hash tag `{prefix}`, so one call only ever touches one cluster slot.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "exporter",
        dedupe_window_seconds: int = DEFAULT_DEDUPE_WINDOW_SECONDS,
        max_types: int = DEFAULT_MAX_TYPES,
        series: SeriesPolicy | None = None,
    ) -> None:
        self._client = client
        self._tag = "{" + prefix + "}"
        self._totals_key = f"{self._tag}:totals"
        self._types_key = f"{self._tag}:types"
        self._seen_prefix = f"{self._tag}:seen:".encode()
        self._window = dedupe_window_seconds
        self._max_types = max_types
        self._script = client.register_script(_load_script())
        self._reset_script = client.register_script(_load_script("reset"))
        self._rejected_key = f"{self._tag}:rejected"
        self._series = series or SeriesPolicy()
        self._series_index_key = f"{self._tag}:series-index"
        # Batches from several pollers that arrive while a call is in flight share the next one
        # (decision 0004): fewer round trips and much less client CPU per event under load.
        self._coalescer = ApplyCoalescer(self._apply_now, limit=MAX_EVENTS_PER_SCRIPT)
        self._last_read: tuple[dict[bytes, bytes], Snapshot] = ({}, Snapshot(()))

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "exporter",
        dedupe_window_seconds: int = DEFAULT_DEDUPE_WINDOW_SECONDS,
        max_types: int = DEFAULT_MAX_TYPES,
        series: SeriesPolicy | None = None,
        timeout_seconds: float = 5.0,
    ) -> RedisStore:
        """Connect lazily to the Redis at `url` (redis://, rediss:// or unix://)."""
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
        )
        return cls(
            client,
            prefix=prefix,
            dedupe_window_seconds=dedupe_window_seconds,
            max_types=max_types,
            series=series,
        )

    def seen_key(self, identity: str) -> str:
        """The key that remembers one identity for the window."""
        return f"{self._tag}:seen:{identity}"

    @property
    def script_calls(self) -> int:
        """Merged apply calls sent so far (each one round trip); for tests and benchmarks."""
        return self._coalescer.calls

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Apply the batch atomically, merged with others waiting at the same moment."""
        if not batch:
            return ApplyResult(())
        return await self._coalescer.apply(batch)

    async def _apply_now(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        """Apply the batch in one round trip: one script call per chunk, pipelined."""
        now_s = time.time()
        now_ms = str(int(now_s * 1000))
        minutes = self._minutes(batch, now_s)
        chunks = [
            batch[start : start + MAX_EVENTS_PER_SCRIPT]
            for start in range(0, len(batch), MAX_EVENTS_PER_SCRIPT)
        ]
        try:
            if len(chunks) == 1:
                replies = [await self._run_script(chunks[0], minutes, now_ms, None)]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for number, chunk in enumerate(chunks):
                        start = number * MAX_EVENTS_PER_SCRIPT
                        part = minutes[start : start + len(chunk)] if minutes else None
                        await self._run_script(chunk, part, now_ms, pipe)
                    replies = await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(f"Redis apply failed: {exc}") from exc
        outcomes = tuple(_OUTCOMES[int(code)] for reply in replies for code in reply)
        unbucketed = unbucketed_positions(outcomes, minutes) if minutes is not None else ()
        return ApplyResult(outcomes, unbucketed)

    # -- event-time buckets (decision 0008) ------------------------------------------------------

    def _minutes(self, batch: Sequence[tuple[str, Event]], now_s: float) -> list[int | None] | None:
        """Each event's UTC minute (None: too old or too new for a bucket); None when disabled."""
        if not self._series.enabled:
            return None
        minute_of = self._series.minute_of
        return [minute_of(event.occurred_at.timestamp(), now_s) for _, event in batch]

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        """One type's buckets of [first, end), reading only hours that may still exist."""
        oldest, newest = self._series.readable_minutes(time.time())
        first, end = max(first_minute, oldest), min(end_minute, newest)
        if first >= end:
            return {}
        minutes = await read_buckets(self._client, [self._tag], event_type, first, end)
        return {m: t for m, t in minutes.items() if first <= m < end}

    # -- rejected counts ---------------------------------------------------------------------------

    async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
        """HINCRBY per reason in one round trip; a retried call counts again (at least once)."""
        if not by_reason:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for reason, count in by_reason.items():
                    pipe.hincrby(self._rejected_key, reason, count)
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(f"Redis write failed: {exc}") from exc

    async def rejected(self) -> Mapping[str, int]:
        """Rejected events by reason since the last reset."""
        try:
            raw: dict[bytes, bytes] = await self._client.hgetall(self._rejected_key)  # type: ignore[assignment]
        except RedisError as exc:
            raise StoreUnavailable(f"Redis read failed: {exc}") from exc
        return {reason.decode(): int(count) for reason, count in sorted(raw.items())}

    async def _run_script(
        self,
        chunk: Sequence[tuple[str, Event]],
        minutes: Sequence[int | None] | None,
        now_ms: str,
        pipe: aioredis.client.Pipeline | None,
    ) -> list[int]:
        # redis-py encodes and frames every argument in Python, which was most of an apply's
        # client CPU (docs/benchmarks.md): the keys go as ready bytes (each must stay a declared
        # key, decision 0001), and all events' parts travel as one argument, a line per event.
        keys: list[str | bytes] = [self._totals_key, self._types_key]
        seen = self._seen_prefix
        lines = []
        marks, bucket_keys, expiries = bucket_marks(
            self._tag, self._series, self._series_index_key, chunk, minutes
        )
        for (identity, event), mark in zip(chunk, marks, strict=True):
            keys.append(seen + identity.encode())
            units, frac = divmod(event.value_micros, MICROS_PER_UNIT)
            lines.append(f"{units} {frac} {mark} {event.type}")
        keys.extend(bucket_keys)
        args: list[str | int] = [
            self._window,
            self._max_types,
            now_ms,
            "\n".join(lines),
            expiries,
        ]
        reply: list[int] = await self._script(keys=keys, args=args, client=pipe)
        return reply

    async def snapshot(self) -> Snapshot:
        """All totals, read in one atomic HGETALL."""
        try:
            raw: dict[bytes, bytes] = await self._client.hgetall(self._totals_key)  # type: ignore[assignment]
        except RedisError as exc:
            raise StoreUnavailable(f"Redis read failed: {exc}") from exc
        # Decoding is most of a read's CPU (docs/benchmarks.md); when the hash is byte for byte
        # what the last read returned, its (immutable) snapshot is the exact answer again.
        last_raw, last_snapshot = self._last_read
        if raw == last_raw:
            return last_snapshot
        snapshot = _decode_totals(raw)
        self._last_read = (raw, snapshot)
        return snapshot

    async def reset(self) -> None:
        """Delete the totals, the type set, rejected counts and every bucket in one script."""
        keys = [self._totals_key, self._types_key, self._rejected_key, self._series_index_key]
        try:
            await self._reset_script(keys=keys, args=[])
        except RedisError as exc:
            raise StoreUnavailable(f"Redis reset failed: {exc}") from exc

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers PING."""
        try:
            await self._client.ping()
        except RedisError as exc:
            raise StoreUnavailable(f"Redis is not reachable: {exc}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"Redis is not reachable: {exc}") from exc

    async def close(self) -> None:
        """Finish an apply in flight, then close the connection pool."""
        await self._coalescer.wait_idle()
        await self._client.aclose()


_FIELD_KINDS: Final = (b"count", b"units", b"frac", b"last")


def _decode_totals(raw: dict[bytes, bytes]) -> Snapshot:
    # One pass sorting fields by kind, then one TypeTotals per type: /stats and /metrics decode
    # the whole hash on every request, so this stays lean (docs/benchmarks.md).
    by_kind: dict[bytes, dict[bytes, bytes]] = {kind: {} for kind in _FIELD_KINDS}
    for key, value in raw.items():
        kind, _, name = key.partition(b":")
        fields = by_kind.get(kind)
        if fields is not None:
            fields[name] = value
    counts, units, fracs, lasts = (by_kind[kind] for kind in _FIELD_KINDS)
    types = []
    for name in sorted(counts.keys() | units.keys() | fracs.keys()):
        last = lasts.get(name)
        types.append(
            TypeTotals(
                type=name.decode(),
                count=int(counts.get(name, b"0")),
                sum_micros=int(units.get(name, b"0")) * 1_000_000 + int(fracs.get(name, b"0")),
                last_applied=datetime.fromtimestamp(int(last) / 1000, UTC) if last else None,
            )
        )
    return Snapshot(tuple(types))
