"""The production store: totals and remembered identities in Redis, shared by every replica.

What a batch writes where is planned in `exporter.store.plan`; this module only runs the plans
and the store's other calls, through the one place where they meet redis-py (`_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

from redis.asyncio.cluster import RedisCluster

from exporter.events import Event
from exporter.store import (
    STORE_ERRORS,
    ApplyResult,
    Snapshot,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
    StoreUnfit,
)
from exporter.store.coalesce import ApplyCoalescer
from exporter.store.connection import Client, Generation, RedisConnection
from exporter.store.detail import Breakdown, CountingConfig, Detail, TypeDetail
from exporter.store.errors import classify, is_redis_failure
from exporter.store.keys import ShardKeys, StoreKeys
from exporter.store.memory_guard import (
    MemoryGuard,
    NodeMemory,
    evicting_policy,
    eviction_problem,
    memory_words,
)
from exporter.store.observer import StoreObserver
from exporter.store.options import StoreOptions
from exporter.store.plan import (
    MAX_EVENTS_PER_SCRIPT,
    ONE_SHARD,
    PartReply,
    ScriptCall,
    ShardWrite,
    WritePlanner,
    read_reply,
)
from exporter.store.redis_detail import Raw, decode_breakdown, decode_type_detail, pairs
from exporter.store.redis_probe import (
    ProbeCall,
    global_probe,
    marker_of,
    read_memory,
    shard_probe,
)
from exporter.store.redis_series import read_buckets
from exporter.store.redis_totals import decode_totals
from exporter.store.replicas import Replicas
from exporter.store.scripts import Scripts
from exporter.store.series import MinuteTotals
from exporter.store.totals_marker import LossWatch, Marker, TotalsLost, counting_since

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


class RedisStore:
    """Totals kept in Redis: by one node or by a Redis Cluster, in one shard or spread over K.

    Each shard keeps its own remembered identities and partial totals under its own hash tag;
    an identity always lands on the same shard, so it is applied at most once. With one shard
    the keys are those of earlier versions (decision 0005 describes the layout).
    """

    def __init__(self, connection: RedisConnection, options: StoreOptions) -> None:
        """A store on `connection` (REDIS_URL's Redis, one node or a cluster found out on first
        use, rebuilt when it gets stuck), deciding with `options`; nothing connects yet.

        Raises ValueError for a shard count below 1.
        """
        self._connection = connection
        self._options = options
        self._keys = StoreKeys.build(options.prefix, options.shards)
        self._planner = WritePlanner(
            self._keys,
            options.dedupe_window_seconds,
            options.max_types,
            options.series,
            options.counting,
        )
        self._replicas = Replicas(options.min_replicas, options.replica_timeout_ms)
        self._deadline = (
            _SOCKET_TIMEOUTS_PER_CALL * connection.timeout_seconds
            + options.replica_timeout_ms / 1000
        )
        # The client generation whose layout was checked, with the scripts registered on it.
        self._prepared: tuple[int, Scripts] | None = None
        self._preparing = asyncio.Lock()
        # Batches from several pollers that arrive while a call is in flight share the next one
        # (decision 0004): fewer round trips and much less client CPU per event under load.
        self._coalescer = ApplyCoalescer(self._apply_now, limit=MAX_EVENTS_PER_SCRIPT)
        self._last_read: tuple[list[dict[bytes, bytes]], Snapshot] = ([], Snapshot(()))
        self._last_detail: tuple[list[Any], Detail] | None = None
        self._observer = StoreObserver()
        self._guard = MemoryGuard()
        self._losses = LossWatch()
        self._evicting: str | None = None

    def watch(self, observer: StoreObserver) -> None:
        """Report lost totals and an evicting policy to `observer` from now on (the metrics of
        the process, built after the store)."""
        self._observer = observer
        if self._evicting is not None:  # already found: the observer starts from it
            observer.evicting(self._evicting)

    @property
    def counting(self) -> CountingConfig:
        """The configuration this store writes and reads with (decisions 0020, 0021)."""
        return self._options.counting

    @property
    def connection(self) -> RedisConnection:
        """The connection the store's calls go through (rebuilds are counted there)."""
        return self._connection

    # -- calling Redis ---------------------------------------------------------------------------

    async def _call(self, doing: str, work: Callable[[Client, Scripts], Awaitable[T]]) -> T:
        """Run `work` on the current client; every failure of Redis becomes the store's error.

        The one place where the store's calls meet redis-py: errors are classified once
        (exporter.store.errors), and a failure a new client could clear is reported to the
        connection, which rebuilds the client when the servers answer again.
        """
        try:
            async with asyncio.timeout(self._deadline), self._connection.lease() as generation:
                scripts = await self._prepare(generation)
                result = await work(generation.client, scripts)
        except STORE_ERRORS:
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

    async def _out_of_memory(
        self, doing: str, error: StoreUnavailable | StoreRefused
    ) -> StoreUnavailable | StoreRefused:
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

    async def _prepare(self, generation: Generation) -> Scripts:
        """The scripts of this client, after checking (once per client) the recorded K."""
        prepared = self._prepared
        if prepared is not None and prepared[0] == generation.number:
            return prepared[1]
        async with self._preparing:
            prepared = self._prepared
            if prepared is not None and prepared[0] == generation.number:
                return prepared[1]
            scripts = Scripts(generation.client)
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
        # Before joining others' batches: a wiring mistake fails this caller's batch alone.
        self._planner.check(batch)
        return await self._coalescer.apply(batch)

    async def _apply_now(self, batch: Sequence[Item]) -> ApplyResult:
        """Run the batch's plan (exporter.store.plan): with K shards the registration on the
        global slot first, then the shards' calls, concurrently."""
        now_s = time.time()
        planner = self._planner
        losses: list[TotalsLost] = []

        async def work(client: Client, scripts: Scripts) -> ApplyResult:
            registration = planner.registration(batch)
            if registration is None:
                plan = planner.plan(batch, ONE_SHARD, now_s)
                return plan.result([await self._write(client, scripts, plan.shards[0], losses)])
            reply = await scripts.register(
                keys=registration.keys, args=registration.args, client=client
            )
            plan = planner.plan(batch, registration.admission(reply), now_s)
            results = await asyncio.gather(
                *(self._write(client, scripts, part, losses) for part in plan.shards),
                return_exceptions=True,
            )
            if losses and await self._generation(client) != plan.generation:
                # A reset moved readers on while this batch wrote into the generation it retired
                # (and cleared): that hash began again because of the reset, not a loss.
                losses.clear()
            codes: list[PartReply] = []
            for result in results:
                # Shards that succeeded stay applied: their identities are remembered, so the
                # redelivery SQS makes of the whole batch counts them as duplicates.
                if isinstance(result, BaseException):
                    raise result
                codes.append(result)
            return plan.result(codes)

        try:
            return await self._call("Redis apply failed", work)
        finally:
            # Said even when another shard's part failed: the watch has moved on from it.
            for loss in losses:
                self._report_loss(loss)

    async def _write(
        self, client: Client, scripts: Scripts, part: ShardWrite, losses: list[TotalsLost]
    ) -> PartReply:
        """One shard's calls in order, then WAIT for its replicas when asked to: one call alone
        as it is; on one node every call and the WAIT in one pipeline; on a cluster (whose
        pipelines cannot load scripts) one call after the other, then the WAIT."""
        calls = part.calls
        replicas = self._replicas
        if len(calls) == 1 and not replicas.required:
            (call,) = calls
            reply = await scripts.apply(keys=call.keys, args=call.args, client=client)
            return self._codes(part.totals, reply, call, losses)
        codes: list[int] = []
        folds: list[str] = []
        if isinstance(client, RedisCluster):
            for call in calls:
                reply = await scripts.apply(keys=call.keys, args=call.args, client=client)
                call_codes, call_folds = self._codes(part.totals, reply, call, losses)
                codes += call_codes
                folds += call_folds
            await replicas.wait(client, part.shard)
            return codes, folds
        async with client.pipeline(transaction=False) as pipe:
            for call in calls:
                await scripts.apply(keys=call.keys, args=call.args, client=pipe)
            if replicas.required:
                # WAIT counts the writes of its own connection: it rides the script's pipeline.
                pipe.execute_command(*replicas.command)
            replies = await pipe.execute()
        if replicas.required:
            replicas.check(int(replies.pop()))
        for call, reply in zip(calls, replies, strict=True):
            call_codes, call_folds = self._codes(part.totals, reply, call, losses)
            codes += call_codes
            folds += call_folds
        return codes, folds

    def _codes(
        self, totals: str, reply: list[Any], call: ScriptCall, losses: list[TotalsLost]
    ) -> PartReply:
        """The events' codes and fold texts of one apply.lua reply; its trailing marker goes to
        the watch."""
        codes, folds, marker = read_reply(reply, call)
        loss = self._losses.after_write(totals, marker)
        if loss is not None:
            losses.append(loss)
        return codes, folds

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

    # -- reading and resetting -----------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """The exact sum of every shard's partial totals, all of one reset generation."""

        async def work(client: Client, _: Scripts) -> tuple[list[str], list[dict[bytes, bytes]]]:
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
        snapshot = decode_totals(raws, counting_since(markers))
        self._last_read = (raws, snapshot)
        return snapshot

    async def breakdown(self, event_type: str, dimension: str) -> Breakdown | None:
        """One type's totals by the values of `dimension`; None for a type never applied.

        Each shard's totals and detail hash are read by one script, at one moment, so that the
        values add up to the shard's total for the type.
        """

        async def work(client: Client, scripts: Scripts) -> tuple[list[str], list[list[Raw]]]:
            generation = await self._generation(client)
            keys = [
                [shard.totals(generation), shard.detail(generation, event_type)]
                for shard in self._keys.shards
            ]
            replies = await asyncio.gather(*(self._read(scripts, client, ks) for ks in keys))
            return [ks[0] for ks in keys], replies

        totals_keys, replies = await self._call("Redis read failed", work)
        snapshot = self._decoded(totals_keys, [reply[0] for reply in replies])
        totals = snapshot.get(event_type)
        if totals is None:
            return None
        return decode_breakdown(totals, dimension, (reply[1] for reply in replies))

    async def detail(self) -> Detail:
        """Every type's totals, value buckets and this configuration's joint table.

        The types come from a snapshot; then each shard's totals, detail and joint hashes are
        read by one script, at one moment (a type that appears in between shows no detail until
        the next read). While every hash reads as last time, the same Detail object is returned,
        so the API's rendered bodies stay cached.
        """
        counting = self._options.counting
        if not counting.buckets.enabled and not counting.dimensions:
            snapshot = await self.snapshot()
            return self._same_detail([snapshot], lambda: _totals_detail(snapshot, counting))
        names = [t.type for t in (await self.snapshot()).types]
        configuration = counting.configuration_id
        dimensions = bool(counting.dimensions)

        def keys_of(shard: ShardKeys, generation: int) -> list[str]:
            keys = [shard.totals(generation)]
            keys += [shard.detail(generation, name) for name in names]
            if dimensions:
                keys += [shard.joint(generation, name, configuration) for name in names]
            return keys

        async def work(client: Client, scripts: Scripts) -> tuple[list[str], list[list[Raw]]]:
            generation = await self._generation(client)
            keys = [keys_of(shard, generation) for shard in self._keys.shards]
            replies = await asyncio.gather(*(self._read(scripts, client, ks) for ks in keys))
            return [ks[0] for ks in keys], replies

        totals_keys, replies = await self._call("Redis read failed", work)

        def build() -> Detail:
            snapshot = self._decoded(totals_keys, [reply[0] for reply in replies])
            count = len(names)
            details = {name: [reply[1 + i] for reply in replies] for i, name in enumerate(names)}
            joints = {
                name: [reply[1 + count + i] for reply in replies] if dimensions else []
                for i, name in enumerate(names)
            }
            return Detail(
                tuple(
                    decode_type_detail(
                        totals, counting, details.get(totals.type, []), joints.get(totals.type, [])
                    )
                    for totals in snapshot.types
                ),
                snapshot.counting_since,
            )

        return self._same_detail([names, replies], build)

    def _same_detail(self, raws: list[Any], build: Callable[[], Detail]) -> Detail:
        """The last Detail again while what it was built from reads the same, else a new one."""
        last = self._last_detail
        if last is not None and last[0] == raws:
            return last[1]
        detail = build()
        self._last_detail = (raws, detail)
        return detail

    @staticmethod
    async def _read(scripts: Scripts, client: Client, keys: list[str]) -> list[Raw]:
        """The hashes `keys` (one slot) read by read.lua at one moment."""
        reply = await scripts.read(keys=keys, client=client)
        return [pairs(flat) for flat in reply]

    async def _generation(self, client: Client) -> int:
        """The reset generation readers look at: always 0 with one shard."""
        if len(self._keys.shards) == 1:
            return 0
        return int(await client.get(self._keys.generation) or 0)

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        """One type's buckets of [first, end), summed over shards, of hours that may still exist."""
        oldest, newest = self._options.series.readable_minutes(time.time())
        first, end = max(first_minute, oldest), min(end_minute, newest)
        if first >= end:
            return {}

        async def work(client: Client, _: Scripts) -> Mapping[int, MinuteTotals]:
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

        async def work(client: Client, _: Scripts) -> None:
            # One key of the global slot: a cluster pipeline of it is one round trip too.
            async with client.pipeline(transaction=False) as pipe:
                for reason, count in by_reason.items():
                    pipe.hincrby(self._keys.rejected, reason, count)
                await pipe.execute()

        await self._call("Redis write failed", work)

    async def rejected(self) -> Mapping[str, int]:
        """Rejected events by reason since the last reset."""

        async def work(client: Client, _: Scripts) -> dict[bytes, bytes]:
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

        async def work(client: Client, scripts: Scripts) -> None:
            if len(keys.shards) == 1:
                shard = keys.shards[0]
                # The totals hash keeps its marker, begun again now, as a reset (decision 0017).
                await scripts.clear(
                    keys=[
                        shard.bucket_index(0),
                        shard.detail_index(0),
                        keys.admissions,
                        shard.totals(0),
                        keys.types,
                        keys.rejected,
                    ],
                    args=[int(time.time() * 1000), 2],
                    client=client,
                )
                return
            generation = int(
                await scripts.reset(
                    keys=[keys.types, keys.generation, keys.rejected, keys.admissions],
                    client=client,
                )
            )
            # Readers already moved on to the new generation; the old partials, buckets and
            # detail are only memory (buckets would expire by themselves; the rest would not).
            old = generation - 1
            await asyncio.gather(
                *(
                    scripts.clear(
                        keys=[shard.bucket_index(old), shard.detail_index(old), shard.totals(old)],
                        args=["", 1],
                        client=client,
                    )
                    for shard in keys.shards
                )
            )

        await self._call("Redis reset failed", work)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers PING."""

        async def work(client: Client, _: Scripts) -> None:
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

        async def work(client: Client, scripts: Scripts) -> list[tuple[str, Marker | None]]:
            generation = 0
            if len(keys.shards) > 1:
                reply = await _probe(scripts, client, global_probe(keys), now_ms)
                generation = int(reply[0] or 0)
            calls = [shard_probe(keys, shard, generation) for shard in keys.shards]
            replies = await asyncio.gather(*(_probe(scripts, client, c, now_ms) for c in calls))
            # With replicas required, writing is not enough: each shard's master must have them.
            await asyncio.gather(*(self._replicas.wait(client, s) for s in keys.shards))
            return [(str(c.totals), marker_of(r)) for c, r in zip(calls, replies, strict=True)]

        for totals, marker in await self._call("Redis write probe failed", work):
            loss = self._losses.after_probe(totals, marker)
            if loss is not None:
                self._report_loss(loss)

    def _check_policy(self, nodes: Sequence[NodeMemory]) -> None:
        """Refuse an evicting maxmemory-policy unless allowed; then warn once and report it."""
        policy = evicting_policy(nodes)
        problem = eviction_problem(nodes)
        if problem is not None and not self._options.allow_eviction:
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


def _totals_detail(snapshot: Snapshot, counting: CountingConfig) -> Detail:
    """The detail of a store that counts nothing beyond totals: every type's totals alone."""
    del counting
    return Detail(tuple(TypeDetail(t) for t in snapshot.types), snapshot.counting_since)


async def _read_memory(client: Client, _: Scripts) -> list[NodeMemory]:
    return await read_memory(client)


async def _probe(scripts: Scripts, client: Client, call: ProbeCall, now_ms: int) -> list[Any]:
    reply: list[Any] = await scripts.probe(
        keys=list(call.keys), args=[now_ms, *call.kinds], client=client
    )
    return reply


__all__ = ["RedisStore"]
