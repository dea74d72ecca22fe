"""The production store: totals and remembered identities in Redis, shared by every replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from exporter.events import MICROS_PER_UNIT, Event
from exporter.store import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    DEFAULT_MAX_TYPES,
    ApplyResult,
    Outcome,
    ReplicasMissing,
    Snapshot,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
    StoreUnfit,
    TypeTotals,
)
from exporter.store.coalesce import ApplyCoalescer
from exporter.store.connection import Client, Generation, RedisConnection
from exporter.store.errors import classify, is_redis_failure
from exporter.store.keys import ShardKeys, StoreKeys, shard_of
from exporter.store.memory_guard import (
    MemoryGuard,
    NodeMemory,
    evicting_policy,
    eviction_problem,
    memory_words,
)
from exporter.store.observer import StoreObserver
from exporter.store.redis_probe import (
    ProbeCall,
    global_probe,
    marker_of,
    read_memory,
    shard_probe,
)
from exporter.store.redis_series import bucket_marks, read_buckets, unbucketed_positions
from exporter.store.series import MinuteTotals, SeriesPolicy
from exporter.store.tls import TlsFiles
from exporter.store.totals_marker import LossWatch, Marker, TotalsLost, counting_since

# Lua adds a chunk's whole units in doubles; 1000 events of at most 1e12 stay below 2^53.
MAX_EVENTS_PER_SCRIPT: Final = 1000
_OUTCOMES: Final[dict[int, Outcome]] = {
    0: "duplicate",
    1: "applied",
    2: "too_many_types",
    3: "sum_overflow",
}

Item = tuple[str, Event]
T = TypeVar("T")
log = logging.getLogger(__name__)
# An out-of-memory refusal names the figures; reading them may take no longer than this.
MEMORY_READ_SECONDS: Final = 1.0
# Longest one call may take on top of the socket timeouts' worth of tries: a call that neither
# answers nor fails (a lock or state inside the client that never clears) must not hold a batch,
# and with it its messages' visibility, for ever.
_SOCKET_TIMEOUTS_PER_CALL: Final = 3
# Closing waits this long for an apply in flight to finish.
CLOSE_DRAIN_SECONDS: Final = 5.0


def _lua(name: str) -> str:
    return resources.files("exporter.store").joinpath(f"lua/{name}.lua").read_text()


class _Scripts:
    """The store's Lua scripts, registered with the client they run on."""

    def __init__(self, client: Client) -> None:
        self.apply: AsyncScript = client.register_script(_lua("apply"))
        self.register: AsyncScript = client.register_script(_lua("register"))
        self.reset: AsyncScript = client.register_script(_lua("reset"))
        self.clear: AsyncScript = client.register_script(_lua("clear"))
        self.layout: AsyncScript = client.register_script(_lua("layout"))
        self.probe: AsyncScript = client.register_script(_lua("probe"))


class RedisStore:
    """Totals kept in Redis: by one node or by a Redis Cluster, in one shard or spread over K.

    Each shard keeps its own remembered identities and partial totals under its own hash tag;
    an identity always lands on the same shard, so it is applied at most once. With one shard
    the keys are those of earlier versions (decision 0005 describes the layout).
    """

    def __init__(
        self,
        client: Client | RedisConnection,
        *,
        prefix: str = "exporter",
        dedupe_window_seconds: int = DEFAULT_DEDUPE_WINDOW_SECONDS,
        max_types: int = DEFAULT_MAX_TYPES,
        series: SeriesPolicy | None = None,
        shards: int = 1,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
        timeout_seconds: float = 5.0,
        allow_eviction: bool = False,
        observer: StoreObserver | None = None,
    ) -> None:
        """A store on `client`: a RedisConnection (which rebuilds its client when it gets stuck),
        or a client made elsewhere, used as it is (tests).

        `allow_eviction` lets the write probe pass on a Redis whose maxmemory-policy evicts
        (with a warning); `observer` hears of lost totals and of an evicting policy.
        """
        if not isinstance(client, RedisConnection):
            client = RedisConnection("redis://this-redis", client=client)
        self._connection = client
        self._keys = StoreKeys.build(prefix, shards)
        self._window = dedupe_window_seconds
        self._max_types = max_types
        self._series = series or SeriesPolicy()
        self._min_replicas = min_replicas
        self._replica_timeout_ms = replica_timeout_ms
        self._deadline = _SOCKET_TIMEOUTS_PER_CALL * timeout_seconds + replica_timeout_ms / 1000
        # The client generation whose layout was checked, with the scripts registered on it.
        self._prepared: tuple[int, _Scripts] | None = None
        self._preparing = asyncio.Lock()
        # Batches from several pollers that arrive while a call is in flight share the next one
        # (decision 0004): fewer round trips and much less client CPU per event under load.
        self._coalescer = ApplyCoalescer(self._apply_now, limit=MAX_EVENTS_PER_SCRIPT)
        self._last_read: tuple[list[dict[bytes, bytes]], Snapshot] = ([], Snapshot(()))
        self._allow_eviction = allow_eviction
        self._observer = observer or StoreObserver()
        self._guard = MemoryGuard()
        self._losses = LossWatch()
        self._evicting: str | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "exporter",
        dedupe_window_seconds: int = DEFAULT_DEDUPE_WINDOW_SECONDS,
        max_types: int = DEFAULT_MAX_TYPES,
        series: SeriesPolicy | None = None,
        shards: int = 1,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
        timeout_seconds: float = 5.0,
        tls: TlsFiles | None = None,
        allow_eviction: bool = False,
        observer: StoreObserver | None = None,
    ) -> RedisStore:
        """Connect lazily to the Redis at `url` (redis://, rediss:// or unix://; several nodes of
        a cluster separated by commas); raises BadRedisUrl (a ValueError) for a URL that cannot
        name a Redis.

        When the node answers that it belongs to a Redis Cluster, the store uses redis-py's
        cluster client, with the same URL and `tls` files (so TLS and the password carry over).
        """
        return cls(
            RedisConnection(url, timeout_seconds=timeout_seconds, tls=tls),
            prefix=prefix,
            dedupe_window_seconds=dedupe_window_seconds,
            max_types=max_types,
            series=series,
            shards=shards,
            min_replicas=min_replicas,
            replica_timeout_ms=replica_timeout_ms,
            timeout_seconds=timeout_seconds,
            allow_eviction=allow_eviction,
            observer=observer,
        )

    def watch(self, observer: StoreObserver) -> None:
        """Report lost totals and an evicting policy to `observer` from now on (the metrics of
        the process, built after the store)."""
        self._observer = observer
        observer.evicting(self._evicting)

    @property
    def connection(self) -> RedisConnection:
        """The connection the store's calls go through (rebuilds are counted there)."""
        return self._connection

    @property
    def script_calls(self) -> int:
        """Merged apply calls sent so far (each one round trip); for tests and benchmarks."""
        return self._coalescer.calls

    # -- calling Redis ---------------------------------------------------------------------------

    async def _call(self, doing: str, work: Callable[[Client, _Scripts], Awaitable[T]]) -> T:
        """Run `work` on the current client; every failure of Redis becomes the store's error.

        The one place where the store's calls meet redis-py: errors are classified once
        (exporter.store.errors), and a failure a new client could clear is reported to the
        connection, which rebuilds the client when the servers answer again.
        """
        try:
            async with asyncio.timeout(self._deadline), self._connection.lease() as generation:
                scripts = await self._prepare(generation)
                result = await work(generation.client, scripts)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not is_redis_failure(exc):
                raise  # a bug of ours stays a bug, with its trace
            fault = classify(exc)
            await self._connection.failed(fault)
            if fault.reconnect:
                # The next call reconnects: it checks the layout and the policy again.
                self._prepared = None
            error = fault.error(doing)
            if fault.out_of_memory:
                error = await self._out_of_memory(doing, error)
            raise error from exc
        self._connection.succeeded()
        return result

    async def _out_of_memory(self, doing: str, error: StoreUnavailable) -> StoreUnavailable:
        """Writes now wait for headroom (decision 0017); the refusal names the figures, in
        place of Redis's words, which name the script and not the memory (and /ready shows
        200 characters)."""
        self._guard.trip()
        try:
            async with asyncio.timeout(MEMORY_READ_SECONDS), self._connection.lease() as lease:
                nodes = await read_memory(lease.client)
        except Exception as exc:  # the refusal stands on its own; the figures are a bonus
            if not is_redis_failure(exc) and not isinstance(exc, TimeoutError):
                raise
            return error
        return StoreRefused(f"{doing}: OOM, Redis is out of memory: {memory_words(nodes)}")

    async def _prepare(self, generation: Generation) -> _Scripts:
        """The scripts of this client, after checking (once per client) the recorded K."""
        prepared = self._prepared
        if prepared is not None and prepared[0] == generation.number:
            return prepared[1]
        async with self._preparing:
            prepared = self._prepared
            if prepared is not None and prepared[0] == generation.number:
                return prepared[1]
            scripts = _Scripts(generation.client)
            recorded = await scripts.layout(
                keys=[self._keys.shard_count, self._keys.legacy_totals],
                args=[len(self._keys.shards)],
                client=generation.client,
            )
            recorded_count = int(recorded)
            if recorded_count != len(self._keys.shards):
                raise StoreMisconfigured(
                    f"EXPORTER_REDIS_SHARDS is {len(self._keys.shards)} but the data at "
                    f"{self._connection.shown} was written with {recorded_count} shards; start "
                    f"with EXPORTER_REDIS_SHARDS={recorded_count} (docs/operations.md)"
                )
            # At start and after every reconnect: Redis may have come back set up otherwise.
            self._check_policy(await read_memory(generation.client))
            self._prepared = (generation.number, scripts)
            return scripts

    # -- writing -------------------------------------------------------------------------------

    async def apply(self, batch: Sequence[Item]) -> ApplyResult:
        """Apply the batch, merged with others waiting at the same moment."""
        if not batch:
            return ApplyResult(())
        return await self._coalescer.apply(batch)

    async def _apply_now(self, batch: Sequence[Item]) -> ApplyResult:
        """One script call per shard touched (per 1000 events), the shards' calls concurrent."""
        now_s = time.time()
        now_ms = str(int(now_s * 1000))
        minutes = self._minutes(batch, now_s)

        losses: list[TotalsLost] = []

        async def work(client: Client, scripts: _Scripts) -> tuple[Outcome, ...]:
            if len(self._keys.shards) == 1:
                shard = self._keys.shards[0]
                codes = await self._apply_shard(
                    client,
                    scripts,
                    shard,
                    batch,
                    minutes=minutes,
                    generation=0,
                    now_ms=now_ms,
                    losses=losses,
                )
                return tuple(_OUTCOMES[code] for code in codes)
            return await self._apply_sharded(client, scripts, batch, minutes, now_ms, losses=losses)

        try:
            outcomes = await self._call("Redis apply failed", work)
        finally:
            # Said even when another shard's part failed: the watch has moved on from it.
            for loss in losses:
                self._report_loss(loss)
        unbucketed = unbucketed_positions(outcomes, minutes) if minutes is not None else ()
        return ApplyResult(outcomes, unbucketed)

    def _minutes(self, batch: Sequence[Item], now_s: float) -> list[int | None] | None:
        """Each event's UTC minute (None: too old or too new for a bucket); None when disabled."""
        if not self._series.enabled:
            return None
        minute_of = self._series.minute_of
        return [minute_of(event.occurred_at.timestamp(), now_s) for _, event in batch]

    async def _apply_sharded(
        self,
        client: Client,
        scripts: _Scripts,
        batch: Sequence[Item],
        minutes: Sequence[int | None] | None,
        now_ms: str,
        *,
        losses: list[TotalsLost],
    ) -> tuple[Outcome, ...]:
        keys = self._keys
        distinct = list(dict.fromkeys(event.type for _, event in batch))
        reply = await scripts.register(
            keys=[keys.types, keys.generation], args=[self._max_types, *distinct], client=client
        )
        generation = int(reply[0])
        admitted = {name for name, ok in zip(distinct, reply[1:], strict=True) if int(ok)}
        outcomes: list[Outcome] = ["too_many_types"] * len(batch)
        positions: dict[int, list[int]] = {}
        for index, (identity, event) in enumerate(batch):
            if event.type in admitted:
                positions.setdefault(shard_of(identity, len(keys.shards)), []).append(index)
        shard_order = list(positions)
        results = await asyncio.gather(
            *(
                self._apply_shard(
                    client,
                    scripts,
                    keys.shards[shard],
                    [batch[i] for i in positions[shard]],
                    minutes=None if minutes is None else [minutes[i] for i in positions[shard]],
                    generation=generation,
                    now_ms=now_ms,
                    losses=losses,
                )
                for shard in shard_order
            ),
            return_exceptions=True,
        )
        if losses and await self._generation(client) != generation:
            # A reset moved readers on while this batch wrote into the generation it retired
            # (and cleared): that hash began again because of the reset, not a loss.
            losses.clear()
        for shard, codes in zip(shard_order, results, strict=True):
            # Shards that succeeded stay applied: their identities are remembered, so the
            # redelivery SQS makes of the whole batch counts them as duplicates.
            if isinstance(codes, BaseException):
                raise codes
            for index, code in zip(positions[shard], codes, strict=True):
                outcomes[index] = _OUTCOMES[code]
        return tuple(outcomes)

    async def _apply_shard(
        self,
        client: Client,
        scripts: _Scripts,
        shard: ShardKeys,
        items: Sequence[Item],
        *,
        minutes: Sequence[int | None] | None,
        generation: int,
        now_ms: str,
        losses: list[TotalsLost],
    ) -> list[int]:
        """Apply one shard's part in order, then wait for replicas when asked to."""
        totals = shard.totals(generation)
        chunks = [
            (
                items[start : start + MAX_EVENTS_PER_SCRIPT],
                None if minutes is None else minutes[start : start + MAX_EVENTS_PER_SCRIPT],
            )
            for start in range(0, len(items), MAX_EVENTS_PER_SCRIPT)
        ]
        codes: list[int] = []
        if len(chunks) == 1 and not self._min_replicas:
            chunk, chunk_minutes = chunks[0]
            reply = await self._run_script(
                client,
                scripts,
                shard,
                chunk,
                minutes=chunk_minutes,
                generation=generation,
                now_ms=now_ms,
            )
            return self._codes(totals, reply, losses)
        if isinstance(client, RedisCluster):
            # A cluster pipeline cannot load scripts; chunks go one after the other instead.
            for chunk, chunk_minutes in chunks:
                reply = await self._run_script(
                    client,
                    scripts,
                    shard,
                    chunk,
                    minutes=chunk_minutes,
                    generation=generation,
                    now_ms=now_ms,
                )
                codes += self._codes(totals, reply, losses)
            await self._wait_for_replicas(client, shard)
            return codes
        async with client.pipeline(transaction=False) as pipe:
            for chunk, chunk_minutes in chunks:
                await self._run_script(
                    pipe,
                    scripts,
                    shard,
                    chunk,
                    minutes=chunk_minutes,
                    generation=generation,
                    now_ms=now_ms,
                )
            if self._min_replicas:
                # WAIT counts the writes of its own connection: it rides the script's pipeline.
                pipe.execute_command("WAIT", self._min_replicas, self._replica_timeout_ms)
            replies = await pipe.execute()
        if self._min_replicas:
            self._check_replicas(int(replies.pop()))
        return [code for reply in replies for code in self._codes(totals, reply, losses)]

    def _codes(self, totals: str, reply: list[Any], losses: list[TotalsLost]) -> list[int]:
        """The events' codes of one apply.lua reply; its trailing marker goes to the watch."""
        writes, since, reset = reply[-3:]
        marker = Marker(int(since), int(writes), None if reset is None else int(reset))
        loss = self._losses.after_write(totals, marker)
        if loss is not None:
            losses.append(loss)
        return [int(code) for code in reply[:-3]]

    def _report_loss(self, loss: TotalsLost) -> None:
        """Say once, loudly, that totals were lost; the layout record is written again."""
        log.error(
            "%s",
            loss.describe(),
            extra={"shard": loss.shard, "store": self._connection.shown},
        )
        # The record of K went with the data: check (and write) it again on the next call.
        self._prepared = None
        self._observer.totals_lost(loss)

    async def _wait_for_replicas(self, client: Client, shard: ShardKeys) -> None:
        """WAIT until `min_replicas` replicas of the shard's master hold every write made so far.

        WAIT counts the writes made on its own connection, so it goes in one pipeline with a small
        write of the same slot, on the connection to the master of that slot; replication is one
        ordered stream per master, so that write acknowledged means every earlier one is too. The
        write is a key set and deleted at once: nothing is left behind.
        """
        if not self._min_replicas:
            return
        ack = f"{shard.tag}:ack"
        wait = ("WAIT", self._min_replicas, self._replica_timeout_ms)
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(shard.tag)
            async with client.pipeline() as cluster_pipe:
                cluster_pipe.execute_command("SET", ack, "1", "PX", 60000)
                cluster_pipe.execute_command("DEL", ack)
                cluster_pipe.execute_command(*wait, target_nodes=node)
                replies = await cluster_pipe.execute()
        else:
            async with client.pipeline(transaction=False) as pipe:
                pipe.execute_command("SET", ack, "1", "PX", 60000)
                pipe.execute_command("DEL", ack)
                pipe.execute_command(*wait)
                replies = await pipe.execute()
        self._check_replicas(int(replies[-1]))

    def _check_replicas(self, acknowledged: int) -> None:
        if acknowledged < self._min_replicas:
            raise ReplicasMissing(
                f"{acknowledged} of {self._min_replicas} replicas acknowledged the write within "
                f"{self._replica_timeout_ms} ms; lower EXPORTER_REDIS_MIN_REPLICAS or add a "
                "replica",
                acknowledged=acknowledged,
                required=self._min_replicas,
            )

    async def _run_script(
        self,
        client: Client | aioredis.client.Pipeline,
        scripts: _Scripts,
        shard: ShardKeys,
        chunk: Sequence[Item],
        *,
        minutes: Sequence[int | None] | None,
        generation: int,
        now_ms: str,
    ) -> list[Any]:
        # redis-py encodes and frames every argument in Python, which was most of an apply's
        # client CPU (docs/benchmarks.md): the keys go as ready bytes (each must stay a declared
        # key, decision 0001), and all events' parts travel as one argument, a line per event.
        global_cap = len(self._keys.shards) > 1
        keys: list[str | bytes] = [shard.totals(generation)]
        if not global_cap:
            keys.append(self._keys.types)
        seen = shard.seen_prefix
        lines = []
        marks, bucket_keys, expiries = bucket_marks(
            shard, generation=generation, policy=self._series, chunk=chunk, minutes=minutes
        )
        for (identity, event), mark in zip(chunk, marks, strict=True):
            keys.append(seen + identity.encode())
            units, frac = divmod(event.value_micros, MICROS_PER_UNIT)
            lines.append(f"{units} {frac} {mark} {event.type}")
        keys.extend(bucket_keys)
        cap: str | int = "global" if global_cap else self._max_types
        args: list[str | int] = [self._window, cap, now_ms, "\n".join(lines), expiries]
        reply: list[Any] = await scripts.apply(keys=keys, args=args, client=client)
        return reply

    # -- reading and resetting -----------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """The exact sum of every shard's partial totals, all of one reset generation."""

        async def work(client: Client, _: _Scripts) -> tuple[list[str], list[dict[bytes, bytes]]]:
            if len(self._keys.shards) == 1:
                totals = self._keys.shards[0].totals(0)
                return [totals], [cast("dict[bytes, bytes]", await client.hgetall(totals))]
            generation = await self._generation(client)
            keys = [shard.totals(generation) for shard in self._keys.shards]
            parts = await asyncio.gather(*(client.hgetall(key) for key in keys))
            return keys, cast("list[dict[bytes, bytes]]", parts)

        keys, raws = await self._call("Redis read failed", work)
        return self._decoded(keys, raws)

    def _decoded(self, keys: list[str], raws: list[dict[bytes, bytes]]) -> Snapshot:
        # Decoding is most of a read's CPU (docs/benchmarks.md, measured again for decision 0005):
        # when every partial is byte for byte what the last read returned, its (immutable)
        # snapshot is the exact answer again, and the API reuses the body it rendered for it.
        last_raws, last_snapshot = self._last_read
        if raws == last_raws:
            return last_snapshot
        markers = [Marker.from_fields(raw) for raw in raws]
        for key, marker in zip(keys, markers, strict=True):
            loss = self._losses.after_read(key, marker)
            if loss is not None:
                self._report_loss(loss)
        snapshot = _decode_totals(raws, counting_since(markers))
        self._last_read = (raws, snapshot)
        return snapshot

    async def _generation(self, client: Client) -> int:
        """The reset generation readers look at: always 0 with one shard."""
        if len(self._keys.shards) == 1:
            return 0
        return int(await client.get(self._keys.generation) or 0)

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        """One type's buckets of [first, end), summed over shards, of hours that may still exist."""
        oldest, newest = self._series.readable_minutes(time.time())
        first, end = max(first_minute, oldest), min(end_minute, newest)
        if first >= end:
            return {}

        async def work(client: Client, _: _Scripts) -> Mapping[int, MinuteTotals]:
            return await read_buckets(
                client,
                self._keys.shards,
                generation=await self._generation(client),
                event_type=event_type,
                first=first,
                end=end,
            )

        minutes = await self._call("Redis read failed", work)
        return {m: t for m, t in minutes.items() if first <= m < end}

    async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
        """HINCRBY per reason in one round trip; a retried call counts again (at least once)."""
        if not by_reason:
            return

        async def work(client: Client, _: _Scripts) -> None:
            # One key of the global slot: a cluster pipeline of it is one round trip too.
            async with client.pipeline(transaction=False) as pipe:
                for reason, count in by_reason.items():
                    pipe.hincrby(self._keys.rejected, reason, count)
                await pipe.execute()

        await self._call("Redis write failed", work)

    async def rejected(self) -> Mapping[str, int]:
        """Rejected events by reason since the last reset."""

        async def work(client: Client, _: _Scripts) -> dict[bytes, bytes]:
            return cast("dict[bytes, bytes]", await client.hgetall(self._keys.rejected))

        raw = await self._call("Redis read failed", work)
        return {reason.decode(): int(count) for reason, count in sorted(raw.items())}

    async def reset(self) -> None:
        """Forget every total, bucket and rejected count at one point.

        With one shard one script deletes them all (they share the global tag). With K shards one
        script on the global slot empties the types and rejected counts and starts a new
        generation, which readers then read; the old generation is cleaned shard by shard after.
        """
        keys = self._keys

        async def work(client: Client, scripts: _Scripts) -> None:
            if len(keys.shards) == 1:
                shard = keys.shards[0]
                # The totals hash keeps its marker, begun again now, as a reset (decision 0017).
                await scripts.clear(
                    keys=[shard.bucket_index(0), shard.totals(0), keys.types, keys.rejected],
                    args=[int(time.time() * 1000)],
                    client=client,
                )
                return
            generation = int(
                await scripts.reset(
                    keys=[keys.types, keys.generation, keys.rejected], client=client
                )
            )
            # Readers already moved on to the new generation; the old partials and buckets are
            # only memory (buckets would expire by themselves; totals would not).
            old = generation - 1
            await asyncio.gather(
                *(
                    scripts.clear(keys=[shard.bucket_index(old), shard.totals(old)], client=client)
                    for shard in keys.shards
                )
            )

        await self._call("Redis reset failed", work)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers PING."""

        async def work(client: Client, _: _Scripts) -> None:
            await client.ping()

        await self._call("Redis is not reachable", work)

    async def probe_write(self) -> None:
        """Raise unless a batch's writes would go through now, changing nothing (decision 0017).

        On every master: its maxmemory-policy must not evict (unless allowed), and after an
        out-of-memory refusal its used memory must be below the low-water mark. On the slot of
        every shard (and the global one): probe.lua writes and undoes keys of the patterns a
        batch writes, so READONLY, OOM and NOPERM show as a batch would meet them; then the
        replicas asked for must acknowledge. The totals' markers it reads are watched for loss.
        """
        nodes = await self._call("Redis memory check failed", _read_memory)
        self._check_policy(nodes)
        short = self._guard.short(nodes)
        if short is not None:
            raise StoreRefused(short)
        keys = self._keys
        now_ms = int(time.time() * 1000)

        async def work(client: Client, scripts: _Scripts) -> list[tuple[str, Marker | None]]:
            generation = 0
            if len(keys.shards) > 1:
                reply = await _probe(scripts, client, global_probe(keys), now_ms)
                generation = int(reply[0] or 0)
            calls = [shard_probe(keys, shard, generation) for shard in keys.shards]
            replies = await asyncio.gather(*(_probe(scripts, client, c, now_ms) for c in calls))
            # With replicas required, writing is not enough: each shard's master must have them.
            await asyncio.gather(*(self._wait_for_replicas(client, s) for s in keys.shards))
            return [(str(c.totals), marker_of(r)) for c, r in zip(calls, replies, strict=True)]

        for totals, marker in await self._call("Redis write probe failed", work):
            loss = self._losses.after_probe(totals, marker)
            if loss is not None:
                self._report_loss(loss)

    def _check_policy(self, nodes: Sequence[NodeMemory]) -> None:
        """Refuse an evicting maxmemory-policy unless allowed; then warn once and report it."""
        policy = evicting_policy(nodes)
        problem = eviction_problem(nodes)
        if problem is not None and not self._allow_eviction:
            raise StoreUnfit(problem)
        if policy != self._evicting:
            self._evicting = policy
            if problem is not None:
                log.warning(
                    "running on a Redis that may evict the exporter's keys: %s",
                    problem,
                    extra={"store": self._connection.shown, "policy": policy},
                )
            self._observer.evicting(policy)

    async def memory(self) -> list[NodeMemory]:
        """`INFO memory` of every master (the API warns of an evicting policy with it)."""
        return await self._call("Redis memory check failed", _read_memory)

    async def close(self) -> None:
        """Let an apply in flight finish (for a few seconds at most), then close every client.

        Never raises: a shutdown must end cleanly whatever state the connection is in.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_DRAIN_SECONDS):
                await self._coalescer.wait_idle()
        await self._connection.close()


async def _read_memory(client: Client, _: _Scripts) -> list[NodeMemory]:
    return await read_memory(client)


async def _probe(scripts: _Scripts, client: Client, call: ProbeCall, now_ms: int) -> list[Any]:
    reply: list[Any] = await scripts.probe(
        keys=list(call.keys), args=[now_ms, *call.kinds], client=client
    )
    return reply


def _decode_totals(parts: Sequence[dict[bytes, bytes]], since: datetime | None = None) -> Snapshot:
    # One pass sorting fields by kind, then one TypeTotals per type: /stats and /metrics decode
    # every partial on every read, so this stays lean (docs/benchmarks.md).
    counts: dict[bytes, int] = {}
    micros: dict[bytes, int] = {}
    lasts: dict[bytes, int] = {}
    for raw in parts:
        for key, value in raw.items():
            kind, _, name = key.partition(b":")
            if kind == b"count":
                counts[name] = counts.get(name, 0) + int(value)
            elif kind == b"units":
                micros[name] = micros.get(name, 0) + int(value) * MICROS_PER_UNIT
            elif kind == b"frac":
                micros[name] = micros.get(name, 0) + int(value)
            elif kind == b"last":
                lasts[name] = max(lasts.get(name, 0), int(value))
    types = []
    for name in sorted(counts.keys() | micros.keys()):
        last = lasts.get(name)
        types.append(
            TypeTotals(
                type=name.decode(),
                count=counts.get(name, 0),
                sum_micros=micros.get(name, 0),
                last_applied=datetime.fromtimestamp(last / 1000, UTC) if last else None,
            )
        )
    return Snapshot(tuple(types), since)


__all__ = ["MAX_EVENTS_PER_SCRIPT", "RedisStore"]
