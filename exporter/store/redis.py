"""The production store: totals and remembered identities in Redis, shared by every replica."""

from __future__ import annotations

import time
from collections.abc import Sequence
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

# Lua adds a chunk's whole units in doubles; 1000 events of at most 1e12 stay below 2^53.
MAX_EVENTS_PER_SCRIPT: Final = 1000
_OUTCOMES: Final[dict[int, Outcome]] = {
    0: "duplicate",
    1: "applied",
    2: "too_many_types",
    3: "sum_overflow",
}


def _load_script() -> str:
    return resources.files("exporter.store").joinpath("lua/apply.lua").read_text()


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
    ) -> None:
        self._client = client
        self._tag = "{" + prefix + "}"
        self._totals_key = f"{self._tag}:totals"
        self._types_key = f"{self._tag}:types"
        self._seen_prefix = f"{self._tag}:seen:".encode()
        self._window = dedupe_window_seconds
        self._max_types = max_types
        self._script = client.register_script(_load_script())
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
        now_ms = str(int(time.time() * 1000))
        chunks = [
            batch[start : start + MAX_EVENTS_PER_SCRIPT]
            for start in range(0, len(batch), MAX_EVENTS_PER_SCRIPT)
        ]
        try:
            if len(chunks) == 1:
                replies = [await self._run_script(chunks[0], now_ms, None)]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for chunk in chunks:
                        await self._run_script(chunk, now_ms, pipe)
                    replies = await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(f"Redis apply failed: {exc}") from exc
        return ApplyResult(tuple(_OUTCOMES[int(code)] for reply in replies for code in reply))

    async def _run_script(
        self,
        chunk: Sequence[tuple[str, Event]],
        now_ms: str,
        pipe: aioredis.client.Pipeline | None,
    ) -> list[int]:
        # redis-py encodes and frames every argument in Python, which was most of an apply's
        # client CPU (docs/benchmarks.md): the keys go as ready bytes (each must stay a declared
        # key, decision 0001), and all events' parts travel as one argument, a line per event.
        keys: list[str | bytes] = [self._totals_key, self._types_key]
        seen = self._seen_prefix
        lines = []
        for identity, event in chunk:
            keys.append(seen + identity.encode())
            units, frac = divmod(event.value_micros, MICROS_PER_UNIT)
            lines.append(f"{units} {frac} {event.type}")
        args: list[str | int] = [self._window, self._max_types, now_ms, "\n".join(lines)]
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
        """Delete the totals and the type set in one transaction."""
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(self._totals_key, self._types_key)
                await pipe.execute()
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
