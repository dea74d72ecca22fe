"""One suite, every Store: the same guarantees hold in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import pytest
import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store import ApplyResult, Store
from exporter.store.keys import shard_of
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from exporter.store.series import MinuteTotals, SeriesPolicy
from tests.servers import wait_until

WHEN = datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC)


class StoreFactory(Protocol):
    def __call__(
        self,
        *,
        dedupe_window_seconds: int = 3600,
        max_types: int = 1000,
        series: SeriesPolicy | None = None,
    ) -> Store: ...


# The cluster runs with one shard (every key on one slot, as on one node) and with 16 (each
# batch spread over 16 hash tags on 3 masters).
CLUSTER_SHARDS = {"cluster-1": 1, "cluster-16": 16}


@pytest.fixture(name="make_store", params=["memory", "redis", *CLUSTER_SHARDS])
async def fixture_make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Builds stores of one kind: in memory, on the session's real Redis (flushed per test), or on
    the session's 3-master Redis Cluster (under a prefix of the test's own)."""
    kind: str = request.param
    stores: list[RedisStore] = []
    client: aioredis.Redis | None = None
    url = ""
    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    if kind == "redis":
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_server").url)
        await client.flushall()
    elif kind in CLUSTER_SHARDS:
        url = request.getfixturevalue("redis_cluster").url()

    def make(
        *,
        dedupe_window_seconds: int = 3600,
        max_types: int = 1000,
        series: SeriesPolicy | None = None,
    ) -> Store:
        if kind == "memory":
            return MemoryStore(
                dedupe_window_seconds=dedupe_window_seconds, max_types=max_types, series=series
            )
        if client is not None:
            return RedisStore(
                client,
                dedupe_window_seconds=dedupe_window_seconds,
                max_types=max_types,
                series=series,
            )
        store = RedisStore.from_url(
            url,
            prefix=prefix,
            shards=CLUSTER_SHARDS[kind],
            dedupe_window_seconds=dedupe_window_seconds,
            max_types=max_types,
            series=series,
        )
        stores.append(store)
        return store

    try:
        yield make
    finally:
        for store in stores:
            await store.close()
        if client is not None:
            await client.aclose()


def event(kind: str, value: str | int, event_id: str | None = None) -> Event:
    micros = int(Decimal(value) * 1_000_000)
    return Event(type=kind, value_micros=micros, occurred_at=WHEN, id=event_id)


_ids = itertools.count()


def same_shard_pair(base: str) -> tuple[str, str]:
    """Two identities on one shard for every shard count the suite uses (1 and 16)."""
    first = f"{base}:a"
    return first, next(
        f"{base}:b{n}" for n in itertools.count() if shard_of(f"{base}:b{n}", 16) ==
        shard_of(first, 16)
    )  # fmt: skip


def batch_of(*events: Event) -> list[tuple[str, Event]]:
    return [(f"msg:{next(_ids)}", e) for e in events]


async def test_apply_adds_count_and_sum_per_type(make_store: StoreFactory) -> None:
    """Applied events add one to the count and their value to the sum of their own type."""
    store = make_store()
    result = await store.apply(
        batch_of(event("purchase", "12.5"), event("purchase", "7.25"), event("page_view", 1))
    )
    assert result.outcomes == ("applied", "applied", "applied")
    snapshot = await store.snapshot()
    assert [(t.type, t.count, t.sum) for t in snapshot.types] == [
        ("page_view", 1, 1.0),
        ("purchase", 2, 19.75),
    ]
    purchase = snapshot.get("purchase")
    assert purchase is not None
    assert purchase.mean == pytest.approx(9.875)
    assert purchase.last_applied is not None
    assert snapshot.get("never") is None


async def test_redelivered_identity_is_counted_once(make_store: StoreFactory) -> None:
    """The same identity in a later batch is a duplicate and changes nothing."""
    store = make_store()
    first = [("msg:a", event("purchase", 10)), ("msg:b", event("purchase", 5))]
    await store.apply(first)
    again = await store.apply([("msg:a", event("purchase", 10)), ("msg:c", event("purchase", 1))])
    assert again.outcomes == ("duplicate", "applied")
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    assert (totals.count, totals.sum) == (3, 16.0)


async def test_identity_repeated_inside_one_batch_counts_once(make_store: StoreFactory) -> None:
    """Two messages with one identity in the same batch: the second is a duplicate."""
    store = make_store()
    result = await store.apply([("id:x", event("a", 2)), ("id:x", event("a", 2))])
    assert result.outcomes == ("applied", "duplicate")
    assert result.outcomes.count("duplicate") == 1
    totals = (await store.snapshot()).get("a")
    assert totals is not None
    assert totals.count == 1


async def test_sums_are_exact_over_a_million_tenths(make_store: StoreFactory) -> None:
    """A million events of 0.1 read back as exactly 100000.0 (no float drift)."""
    store = make_store()
    tenth = event("tick", "0.1")
    for chunk in range(100):
        await store.apply([(f"msg:{chunk}-{i}", tenth) for i in range(10_000)])
    totals = (await store.snapshot()).get("tick")
    assert totals is not None
    assert totals.count == 1_000_000
    assert totals.sum_decimal == Decimal("100000.000000")
    assert repr(totals.sum) == "100000.0"


async def test_price_sums_show_no_drift(make_store: StoreFactory) -> None:
    """Prices with cents, negatives and six-decimal values sum to the exact decimal total."""
    store = make_store()
    values = ["19.99", "0.01", "650.000001", "-3.333333", "99.5", "0.000001"] * 500
    await store.apply(batch_of(*(event("purchase", v) for v in values)))
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    assert totals.sum_decimal == sum(Decimal(v) for v in values)
    assert repr(totals.sum) == repr(float(sum(Decimal(v) for v in values)))


async def test_largest_values_add_exactly(make_store: StoreFactory) -> None:
    """Values at the contract's bound (1e12, six decimals) add without losing a millionth."""
    store = make_store()
    big = "999999999999.999999"
    await store.apply(batch_of(*(event("huge", big) for _ in range(1500))))
    totals = (await store.snapshot()).get("huge")
    assert totals is not None
    assert totals.sum_decimal == Decimal(big) * 1500


async def test_new_types_past_the_cap_are_refused(make_store: StoreFactory) -> None:
    """Past `max_types` distinct types, events of a new type are refused; known ones still count."""
    store = make_store(max_types=2)
    first = await store.apply(batch_of(event("a", 1), event("b", 1), event("c", 1)))
    assert first.outcomes == ("applied", "applied", "too_many_types")
    later = await store.apply(batch_of(event("d", 1), event("a", 1)))
    assert later.outcomes == ("too_many_types", "applied")
    snapshot = await store.snapshot()
    assert [t.type for t in snapshot.types] == ["a", "b"]


async def test_refused_event_is_not_remembered(make_store: StoreFactory) -> None:
    """A refused event is not remembered: after a reset frees the cap, its retry applies."""
    store = make_store(max_types=1)
    await store.apply([("msg:1", event("a", 1))])
    refused = await store.apply([("msg:2", event("b", 1))])
    assert refused.outcomes == ("too_many_types",)
    await store.reset()
    retried = await store.apply([("msg:2", event("b", 1))])
    assert retried.outcomes == ("applied",)


async def test_reset_forgets_totals_but_not_identities(make_store: StoreFactory) -> None:
    """After reset the totals are empty; a redelivery of an applied message stays a duplicate."""
    store = make_store()
    await store.apply([("msg:1", event("a", 3))])
    await store.reset()
    assert (await store.snapshot()).types == ()
    again = await store.apply([("msg:1", event("a", 3)), ("msg:2", event("a", 4))])
    assert again.outcomes == ("duplicate", "applied")
    totals = (await store.snapshot()).get("a")
    assert totals is not None
    assert (totals.count, totals.sum) == (1, 4.0)


async def test_reset_is_atomic_with_concurrent_applies(make_store: StoreFactory) -> None:
    """Every batch holds one 'a' and one 'b'; no snapshot ever sees them differ (no half state).

    A batch is atomic per shard (a sharded store applies its shards' parts concurrently), so the
    pair's identities are chosen on one shard: what is checked is that a reset is one point.
    """
    store = make_store()
    snapshots = []

    async def writer(worker: int) -> None:
        for i in range(200):
            first, second = same_shard_pair(f"w{worker}:{i}")
            await store.apply([(first, event("a", 1)), (second, event("b", 2))])

    async def resetter() -> None:
        for _ in range(20):
            await store.reset()
            snapshots.append(await store.snapshot())
            await asyncio.sleep(0)

    await asyncio.gather(writer(1), writer(2), resetter())
    snapshots.append(await store.snapshot())
    for snapshot in snapshots:
        a, b = snapshot.get("a"), snapshot.get("b")
        counts = (a.count if a else 0, b.count if b else 0)
        assert counts[0] == counts[1]
        if b is not None:
            assert b.sum == 2.0 * b.count


async def test_identity_applies_again_after_the_window(make_store: StoreFactory) -> None:
    """Identities are remembered for the window only, so memory is bounded by the window."""
    store = make_store(dedupe_window_seconds=1)
    await store.apply([("msg:late", event("a", 1))])
    outcomes: list[str] = []

    def reapplied() -> bool:
        result = asyncio.run_coroutine_threadsafe(
            store.apply([("msg:late", event("a", 1))]), loop
        ).result()
        outcomes.append(result.outcomes[0])
        return result.outcomes[0] == "applied"

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(wait_until, reapplied, timeout=10, interval=0.1, message="expiry")
    assert outcomes[0] == "duplicate"


async def test_concurrent_replicas_count_each_identity_once(make_store: StoreFactory) -> None:
    """Two stores on the same data applying overlapping batches concurrently never double count."""
    first = make_store()
    second = first if isinstance(first, MemoryStore) else make_store()
    batches = [[(f"msg:{i}", event("a", "0.5")) for i in range(start, start + 50)] for start in
               range(0, 1000, 25)]  # fmt: skip

    async def replica(store: Store) -> int:
        applied = 0
        for batch in batches:
            applied += (await store.apply(batch)).outcomes.count("applied")
        return applied

    applied = await asyncio.gather(replica(first), replica(second))
    assert sum(applied) == 1025
    totals = (await first.snapshot()).get("a")
    assert totals is not None
    assert (totals.count, totals.sum) == (1025, 512.5)


async def test_ping_answers(make_store: StoreFactory) -> None:
    """A reachable store answers ping without raising."""
    await make_store().ping()


# -- event-time buckets and rejected counts (decision 0008) ----------------------------------------

# A whole minute a while ago: inside any retention, and far from the current minute's edge.
RECENT_MINUTE = int(time.time() // 60) - 30


def at_minute(kind: str, value: str | int, minute: int, second: int = 0) -> Event:
    micros = int(Decimal(value) * 1_000_000)
    moment = datetime.fromtimestamp(minute * 60 + second, UTC)
    return Event(type=kind, value_micros=micros, occurred_at=moment)


async def all_minutes(store: Store, kind: str) -> dict[int, MinuteTotals]:
    return dict(await store.series(kind, RECENT_MINUTE - 120, RECENT_MINUTE + 120))


async def test_applied_events_land_in_the_minute_they_occurred(make_store: StoreFactory) -> None:
    """Each applied event adds to its type's bucket for the UTC minute of occurred_at, exactly."""
    store = make_store()
    m = RECENT_MINUTE
    result = await store.apply(
        batch_of(
            at_minute("purchase", "19.99", m, 1),
            at_minute("purchase", "0.01", m, 59),
            at_minute("purchase", "-3.333333", m + 1, 0),
            at_minute("pageview", 1, m - 61, 30),  # another hour: another bucket hash
        )
    )
    assert result.outcomes == ("applied",) * 4
    assert result.unbucketed == ()
    assert await all_minutes(store, "purchase") == {
        m: MinuteTotals(2, 20_000_000),
        m + 1: MinuteTotals(1, -3_333_333),
    }
    assert await all_minutes(store, "pageview") == {m - 61: MinuteTotals(1, 1_000_000)}
    assert await store.series("purchase", m + 1, m + 2) == {m + 1: MinuteTotals(1, -3_333_333)}
    assert await store.series("never", m - 10, m + 10) == {}


async def test_bucket_sums_stay_exact_across_batches(make_store: StoreFactory) -> None:
    """Thousands of 0.1 in one minute over many batches read back as an exact decimal."""
    store = make_store()
    for chunk in range(5):
        tenths = [at_minute("tick", "0.1", RECENT_MINUTE, i % 60) for i in range(1500)]
        await store.apply([(f"tenth:{chunk}:{i}", e) for i, e in enumerate(tenths)])
    assert await all_minutes(store, "tick") == {RECENT_MINUTE: MinuteTotals(7500, 750_000_000)}


async def test_bucket_sums_of_the_largest_values_stay_exact(make_store: StoreFactory) -> None:
    """Values at the contract's bound, thousands in one minute, sum exactly in their bucket."""
    store = make_store()
    big = event("huge", "999999999999.999999").value_micros
    huge = at_minute("huge", "999999999999.999999", RECENT_MINUTE)
    for chunk in range(4):
        await store.apply([(f"big:{chunk}:{i}", huge) for i in range(1500)])
    assert await all_minutes(store, "huge") == {RECENT_MINUTE: MinuteTotals(6000, big * 6000)}


async def test_a_bucket_sum_past_64_bits_of_millionths_stays_exact(
    make_store: StoreFactory,
) -> None:
    """A minute's sum past 9.2e12 units, reached in many moderate calls, still reads exactly."""
    store = make_store()
    value = at_minute("big", 999_999_999, RECENT_MINUTE)
    for call in range(1100):  # 9 events a call keep each call's sum just under 9e9 units
        await store.apply([(f"b:{call}:{i}", value) for i in range(9)])
    expected = MinuteTotals(9900, value.value_micros * 9900)
    assert await all_minutes(store, "big") == {RECENT_MINUTE: expected}


async def test_duplicates_and_refused_events_never_reach_a_bucket(
    make_store: StoreFactory,
) -> None:
    """A redelivered identity is in its bucket once; an event refused by the type cap never."""
    store = make_store(max_types=1)
    m = RECENT_MINUTE
    first = await store.apply([("msg:a", at_minute("a", 5, m)), ("msg:b", at_minute("b", 7, m))])
    assert first.outcomes == ("applied", "too_many_types")
    again = await store.apply([("msg:a", at_minute("a", 5, m)), ("msg:a", at_minute("a", 5, m))])
    assert again.outcomes == ("duplicate", "duplicate")
    assert await all_minutes(store, "a") == {m: MinuteTotals(1, 5_000_000)}
    assert await all_minutes(store, "b") == {}


async def test_too_old_or_too_new_events_count_in_totals_but_no_bucket(
    make_store: StoreFactory,
) -> None:
    """Past retention or beyond the future tolerance: in the totals, in no bucket, reported."""
    store = make_store(series=SeriesPolicy(retention_seconds=3600, future_tolerance_seconds=120))
    now = datetime.now(UTC)
    events = [
        Event("a", 1_000_000, now - timedelta(minutes=5)),
        Event("a", 2_000_000, now - timedelta(hours=2)),
        Event("a", 4_000_000, now + timedelta(minutes=30)),
        Event("a", 8_000_000, now + timedelta(seconds=30)),
    ]
    result = await store.apply(batch_of(*events))
    assert result.outcomes == ("applied",) * 4
    assert result.unbucketed == (1, 2)
    totals = (await store.snapshot()).get("a")
    assert totals is not None
    assert (totals.count, totals.sum_micros) == (4, 15_000_000)
    minute = int(now.timestamp() // 60)
    buckets = await store.series("a", minute - 180, minute + 60)
    assert sum(t.count for t in buckets.values()) == 2
    assert sum(t.sum_micros for t in buckets.values()) == 9_000_000


async def test_buckets_can_be_turned_off(make_store: StoreFactory) -> None:
    """With the series disabled, totals count as before and no bucket or report is made."""
    store = make_store(series=SeriesPolicy(enabled=False))
    result = await store.apply(batch_of(at_minute("a", 1, RECENT_MINUTE)))
    assert result == ApplyResult(("applied",))
    assert await all_minutes(store, "a") == {}


async def test_reset_clears_buckets_and_rejected_counts_with_the_totals(
    make_store: StoreFactory,
) -> None:
    """After reset no bucket or rejected count remains; later events start the buckets afresh."""
    store = make_store()
    m = RECENT_MINUTE
    await store.apply(batch_of(at_minute("a", 1, m), at_minute("a", 2, m - 90)))
    await store.add_rejected({"bad_value": 2})
    await store.reset()
    assert await all_minutes(store, "a") == {}
    assert await store.rejected() == {}
    await store.apply(batch_of(at_minute("a", 3, m)))
    assert await all_minutes(store, "a") == {m: MinuteTotals(1, 3_000_000)}


async def test_buckets_reset_atomically_with_the_totals(make_store: StoreFactory) -> None:
    """Under concurrent applies and resets, the buckets always add up to the totals."""
    store = make_store()

    async def writer(worker: int) -> None:
        for i in range(100):
            await store.apply(
                [(f"w{worker}:{i}:{j}", at_minute("a", 1, RECENT_MINUTE - j)) for j in range(3)]
            )

    async def resetter() -> None:
        for _ in range(10):
            await store.reset()
            await asyncio.sleep(0)

    await asyncio.gather(writer(1), writer(2), resetter())
    totals = (await store.snapshot()).get("a")
    buckets = await all_minutes(store, "a")
    assert sum(t.count for t in buckets.values()) == (totals.count if totals else 0)


async def test_rejected_counts_add_up_by_reason(make_store: StoreFactory) -> None:
    """Rejected counts add per reason across calls and replicas' calls."""
    store = make_store()
    assert await store.rejected() == {}
    await store.add_rejected({"bad_value": 2, "not_json": 1})
    await store.add_rejected({"bad_value": 3})
    await store.add_rejected({})
    assert await store.rejected() == {"bad_value": 5, "not_json": 1}
