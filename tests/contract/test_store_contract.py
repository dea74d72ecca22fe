"""One suite, every Store: the same guarantees hold in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import pytest
import redis.asyncio as aioredis

from exporter.events import ABSENT, OTHER, Event
from exporter.store import ApplyResult, Store
from exporter.store.detail import Breakdown, CountingConfig, Detail, Fold, Tally
from exporter.store.histograms import BucketBounds, cumulative
from exporter.store.keys import shard_of
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from exporter.store.series import MinuteTotals, SeriesPolicy
from tests.polling import wait_until
from tests.store_support import redis_store

WHEN = datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC)


class StoreFactory(Protocol):
    def __call__(
        self,
        *,
        dedupe_window_seconds: int = 3600,
        max_types: int = 1000,
        series: SeriesPolicy | None = None,
        counting: CountingConfig | None = None,
        sharing: Store | None = None,
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
    url = ""
    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    if kind == "redis":
        url = request.getfixturevalue("redis_server").url
        client = aioredis.Redis.from_url(url)
        await client.flushall()
        await client.aclose()
    elif kind in CLUSTER_SHARDS:
        url = request.getfixturevalue("redis_cluster").url()

    def make(
        *,
        dedupe_window_seconds: int = 3600,
        max_types: int = 1000,
        series: SeriesPolicy | None = None,
        counting: CountingConfig | None = None,
        sharing: Store | None = None,
    ) -> Store:
        """A store of this kind; with `sharing`, on the same data as that one (every Redis
        store of one test shares its data anyway)."""
        if kind == "memory":
            return MemoryStore(
                dedupe_window_seconds=dedupe_window_seconds,
                max_types=max_types,
                series=series,
                counting=counting,
                data=sharing.data if isinstance(sharing, MemoryStore) else None,
            )
        store = redis_store(
            url,
            prefix=prefix,
            shards=CLUSTER_SHARDS.get(kind, 1),
            dedupe_window_seconds=dedupe_window_seconds,
            max_types=max_types,
            series=series or SeriesPolicy(),
            counting=counting or CountingConfig(),
        )
        stores.append(store)
        return store

    try:
        yield make
    finally:
        for store in stores:
            await store.close()


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


# -- dimensions and value buckets (decisions 0020 and 0021) ----------------------------------------


class CountingStoreFactory(Protocol):
    def __call__(
        self,
        counting: CountingConfig,
        *,
        max_types: int = 1000,
        sharing: Store | None = None,
    ) -> Store: ...


@pytest.fixture(name="make_counting_store")
def fixture_make_counting_store(make_store: StoreFactory) -> CountingStoreFactory:
    """Stores of every kind that count dimensions and value buckets, with the given config."""

    def make(
        counting: CountingConfig, *, max_types: int = 1000, sharing: Store | None = None
    ) -> Store:
        return make_store(counting=counting, max_types=max_types, sharing=sharing)

    return make


COUNTRY = CountingConfig(("country",))
TWO = CountingConfig(("channel", "country"))


def with_dims(kind: str, value: str | int, *dimensions: str, event_id: str | None = None) -> Event:
    """An event whose dimension values (already read by the contract) are `dimensions`."""
    micros = int(Decimal(value) * 1_000_000)
    return Event(kind, micros, WHEN, event_id, tuple(dimensions))


def by_value(breakdown: Breakdown | None) -> dict[str, tuple[int, int]]:
    """A breakdown's values as value -> (count, micros)."""
    assert breakdown is not None
    return {v.value: (v.tally.count, v.tally.sum_micros) for v in breakdown.values}


def joint(detail: Detail, kind: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """A type's joint table as combination -> (count, micros)."""
    found = detail.get(kind)
    assert found is not None
    return {c.values: (c.tally.count, c.tally.sum_micros) for c in found.combinations}


async def test_each_value_of_a_dimension_counts_exactly(
    make_counting_store: CountingStoreFactory,
) -> None:
    """Per value: count and exact sum; absent and rule-breaking values are values like others,
    and a dimension's values add up to the type's total."""
    store = make_counting_store(COUNTRY)
    result = await store.apply(
        batch_of(
            with_dims("purchase", "19.99", "NL"),
            with_dims("purchase", "0.01", "NL"),
            with_dims("purchase", "5", "DE"),
            with_dims("purchase", "7.5", ABSENT),
            with_dims("purchase", "-2.25", OTHER),
        )
    )
    assert result.outcomes == ("applied",) * 5
    assert result.folds == (Fold(4, "country", "invalid"),)
    breakdown = await store.breakdown("purchase", "country")
    assert by_value(breakdown) == {
        "NL": (2, 20_000_000),
        "DE": (1, 5_000_000),
        ABSENT: (1, 7_500_000),
        OTHER: (1, -2_250_000),
    }
    assert breakdown is not None
    # Most events first, then by value ("DE" sorts before "__absent__").
    assert [v.value for v in breakdown.values] == ["NL", "DE", ABSENT, OTHER]
    assert breakdown.unattributed == Tally(0, 0)
    assert breakdown.since is not None
    totals = (await store.snapshot()).get("purchase")
    assert totals is not None
    assert sum(v.tally.count for v in breakdown.values) == totals.count
    assert sum(v.tally.sum_micros for v in breakdown.values) == totals.sum_micros


async def test_values_past_the_value_cap_count_under_other(
    make_counting_store: CountingStoreFactory,
) -> None:
    """Past the cap a new value is counted under `__other__` (folded: values); a value admitted
    before, even later in the same batch, keeps its own name for ever; absent and other never
    take a place under the cap."""
    store = make_counting_store(CountingConfig(("country",), max_values=1))
    first = await store.apply(
        batch_of(
            with_dims("purchase", 1, ABSENT),
            with_dims("purchase", 1, OTHER),
            with_dims("purchase", 1, "NL"),
            with_dims("purchase", 2, "FR"),
            with_dims("purchase", 4, "NL"),
        )
    )
    assert [f for f in first.folds if f.reason == "values"] == [Fold(3, "country", "values")]
    later = await store.apply(
        batch_of(with_dims("purchase", 8, "NL"), with_dims("purchase", 16, "BE"))
    )
    assert later.folds == (Fold(1, "country", "values"),)
    assert by_value(await store.breakdown("purchase", "country")) == {
        "NL": (3, 13_000_000),
        OTHER: (3, 19_000_000),
        ABSENT: (1, 1_000_000),
    }


async def test_the_value_cap_is_per_type_and_dimension(
    make_counting_store: CountingStoreFactory,
) -> None:
    """One type's full cap leaves another type's values, and another dimension's, admitted."""
    store = make_counting_store(CountingConfig(("channel", "country"), max_values=1))
    result = await store.apply(
        batch_of(
            with_dims("purchase", 1, "web", "NL"),
            with_dims("purchase", 1, "app", "DE"),
            with_dims("refund", 1, "app", "DE"),
        )
    )
    assert result.folds == (Fold(1, "channel", "values"), Fold(1, "country", "values"))
    assert by_value(await store.breakdown("refund", "country")) == {"DE": (1, 1_000_000)}
    assert by_value(await store.breakdown("refund", "channel")) == {"app": (1, 1_000_000)}


async def test_combinations_past_the_cap_count_under_all_other_in_the_joint_table_only(
    make_counting_store: CountingStoreFactory,
) -> None:
    """A new combination past the cap goes to the all-`__other__` combination (folded:
    combinations, dimension `*`), while each value stays exact in the dimension's breakdown."""
    store = make_counting_store(CountingConfig(("channel", "country"), max_combinations=2))
    result = await store.apply(
        batch_of(
            with_dims("purchase", 1, "web", "NL"),
            with_dims("purchase", 2, "app", "DE"),
            with_dims("purchase", 4, "app", "NL"),  # both values admitted, the pair is new
            with_dims("purchase", 8, OTHER, OTHER),  # all-other never takes a place
            with_dims("purchase", 16, "web", "NL"),
        )
    )
    assert result.folds == (
        Fold(2, "*", "combinations"),
        Fold(3, "channel", "invalid"),
        Fold(3, "country", "invalid"),
    )
    detail = await store.detail()
    assert joint(detail, "purchase") == {
        ("web", "NL"): (2, 17_000_000),
        ("app", "DE"): (1, 2_000_000),
        (OTHER, OTHER): (2, 12_000_000),
    }
    purchase = detail.get("purchase")
    assert purchase is not None
    assert purchase.folded_combinations == 1
    assert dict(purchase.folded) == {"channel": 1, "country": 1}
    assert purchase.since is not None
    assert by_value(await store.breakdown("purchase", "country")) == {
        "NL": (3, 21_000_000),
        "DE": (1, 2_000_000),
        OTHER: (1, 8_000_000),
    }


async def test_a_type_total_is_the_sum_over_its_combinations(
    make_counting_store: CountingStoreFactory,
) -> None:
    """Over many batches with folds of every kind, each type's count and exact sum equal its
    joint table's, and its buckets' too."""
    store = make_counting_store(
        CountingConfig(("channel", "country"), max_values=3, max_combinations=4)
    )
    channels = ["web", "app", ABSENT, OTHER, "kiosk", "mail"]
    countries = ["NL", "DE", "FR", "BE", ABSENT, OTHER]
    values = ["19.99", "0.01", "650.000001", "-3.333333", "99.5", "0.000001", "12000"]
    for call in range(20):
        await store.apply(
            batch_of(
                *(
                    with_dims(
                        ("purchase", "refund")[i % 2],
                        values[(call + i) % len(values)],
                        channels[(call * 7 + i) % len(channels)],
                        countries[(call + i * 5) % len(countries)],
                    )
                    for i in range(25)
                )
            )
        )
    detail = await store.detail()
    assert [t.totals.type for t in detail.types] == ["purchase", "refund"]
    for kind in detail.types:
        assert len([c for c in kind.combinations if OTHER not in c.values]) <= 4
        assert sum(c.tally.count for c in kind.combinations) == kind.totals.count
        assert sum(c.tally.sum_micros for c in kind.combinations) == kind.totals.sum_micros
        assert sum(n for _, n in kind.buckets) == kind.totals.count
        assert sum(n for c in kind.combinations for _, n in c.buckets) == kind.totals.count
        assert kind.unattributed(2).tally == Tally(0, 0)
        for dimension in ("channel", "country"):
            breakdown = await store.breakdown(kind.totals.type, dimension)
            assert breakdown is not None
            assert len([v for v in breakdown.values if v.value not in (ABSENT, OTHER)]) <= 3
            assert sum(v.tally.count for v in breakdown.values) == kind.totals.count
            assert sum(v.tally.sum_micros for v in breakdown.values) == kind.totals.sum_micros


async def test_duplicates_and_refused_events_fold_and_count_nothing(
    make_counting_store: CountingStoreFactory,
) -> None:
    """A redelivery folds nothing and adds to no value, combination or bucket; an event refused
    by the type cap neither."""
    store = make_counting_store(CountingConfig(("country",), max_values=1), max_types=1)
    first = await store.apply(
        [("id:1", with_dims("a", 5, "NL")), ("id:2", with_dims("a", 5, "DE"))]
    )
    assert first.folds == (Fold(1, "country", "values"),)
    again = await store.apply(
        [
            ("id:2", with_dims("a", 5, "DE")),
            ("id:2", with_dims("a", 5, "DE")),
            ("id:3", with_dims("b", 5, OTHER)),
        ]
    )
    assert again.outcomes == ("duplicate", "duplicate", "too_many_types")
    assert again.folds == ()
    assert by_value(await store.breakdown("a", "country")) == {
        "NL": (1, 5_000_000),
        OTHER: (1, 5_000_000),
    }
    assert joint(await store.detail(), "a") == {("NL",): (1, 5_000_000), (OTHER,): (1, 5_000_000)}
    assert await store.breakdown("b", "country") is None


async def test_a_breakdown_answers_for_known_types_only(
    make_counting_store: CountingStoreFactory,
) -> None:
    """An unknown type has no breakdown; a dimension this type never had leaves every event
    unattributed, with no `since`."""
    store = make_counting_store(COUNTRY)
    await store.apply(batch_of(with_dims("a", "2.5", "NL")))
    assert await store.breakdown("never", "country") is None
    breakdown = await store.breakdown("a", "channel")
    assert breakdown is not None
    assert (breakdown.values, breakdown.since) == ((), None)
    assert breakdown.unattributed == Tally(1, 2_500_000)


async def test_a_configuration_change_keeps_totals_and_the_shared_dimensions(
    make_counting_store: CountingStoreFactory,
) -> None:
    """Stores of two configurations on one backend (a rolling restart): per-type totals count
    every event; a dimension both declare keeps counting; one only the new declares counts from
    its first event, the rest unattributed; each joint table holds its own configuration's
    events, and the rest is the reader's unattributed remainder."""
    old = make_counting_store(COUNTRY)
    new = make_counting_store(TWO, sharing=old)
    await old.apply(batch_of(with_dims("p", 1, "NL"), with_dims("p", 2, "DE")))
    await new.apply(batch_of(with_dims("p", 4, "web", "NL"), with_dims("p", 8, "app", ABSENT)))
    await old.apply(batch_of(with_dims("p", 16, "NL")))
    totals = (await new.snapshot()).get("p")
    assert totals is not None
    assert (totals.count, totals.sum_micros) == (5, 31_000_000)
    assert by_value(await new.breakdown("p", "country")) == {
        "NL": (3, 21_000_000),
        "DE": (1, 2_000_000),
        ABSENT: (1, 8_000_000),
    }
    channel = await old.breakdown("p", "channel")
    assert by_value(channel) == {"web": (1, 4_000_000), "app": (1, 8_000_000)}
    assert channel is not None
    assert channel.unattributed == Tally(3, 19_000_000)
    new_detail = (await new.detail()).get("p")
    assert new_detail is not None
    assert {c.values: c.tally for c in new_detail.combinations} == {
        ("app", ABSENT): Tally(1, 8_000_000),
        ("web", "NL"): Tally(1, 4_000_000),
    }
    assert new_detail.unattributed(2).tally == Tally(3, 19_000_000)
    old_detail = (await old.detail()).get("p")
    assert old_detail is not None
    assert {c.values: c.tally for c in old_detail.combinations} == {
        ("DE",): Tally(1, 2_000_000),
        ("NL",): Tally(2, 17_000_000),
    }
    assert old_detail.unattributed(1).tally == Tally(2, 12_000_000)


async def test_each_applied_event_adds_one_to_its_value_bucket(
    make_counting_store: CountingStoreFactory,
) -> None:
    """A value at a bound is in that bound's bucket, just above it in the next; past the last
    bound in `+Inf`; per type and per combination, duplicates not at all."""
    store = make_counting_store(CountingConfig(("country",), buckets=BucketBounds.of([1, 10])))
    values = ["1", "1.000001", "10", "0", "-5", "10.5", "1000000"]
    await store.apply([(f"id:{v}", with_dims("p", v, "NL")) for v in values])
    await store.apply([("id:10", with_dims("p", "10", "NL"))])
    detail = (await store.detail()).get("p")
    assert detail is not None
    assert detail.buckets == ((1.0, 3), (10.0, 2), (math.inf, 2))
    (nl,) = detail.combinations
    assert nl.buckets == detail.buckets
    assert cumulative(detail.buckets, (1, 10), detail.totals.count) == (3, 5, 7)


async def test_mixed_bucket_bounds_give_lower_bounds_and_exact_count_and_sum(
    make_counting_store: CountingStoreFactory,
) -> None:
    """Processors of two bound sets on one backend: read over either's bounds, each cumulative
    count is at most the truth, and `+Inf`, the count and the sum are exact."""
    first = make_counting_store(CountingConfig(buckets=BucketBounds.of([1, 10, 100])))
    second = make_counting_store(CountingConfig(buckets=BucketBounds.of([5, 50])), sharing=first)
    values = [Decimal(v) for v in ("0.5", "3", "7", "20", "60", "99", "150", "-1", "5", "50")]
    for index, value in enumerate(values):
        writer = first if index % 2 else second
        await writer.apply(batch_of(with_dims("p", str(value))))
    for reader, bounds in ((first, (1.0, 10.0, 100.0)), (second, (5.0, 50.0))):
        detail = (await reader.detail()).get("p")
        assert detail is not None
        counts = cumulative(detail.buckets, bounds, detail.totals.count)
        truth = [sum(1 for v in values if v <= Decimal(repr(b))) for b in bounds]
        assert all(c <= t for c, t in zip(counts, truth, strict=False))
        assert counts[-1] == len(values) == detail.totals.count
        assert detail.totals.sum_micros == sum(int(v * 1_000_000) for v in values)
        assert sum(n for _, n in detail.buckets) == len(values)


async def test_buckets_can_be_turned_off_for_values(
    make_counting_store: CountingStoreFactory,
) -> None:
    """With no bounds, no bucket is stored; totals and combinations count as before."""
    store = make_counting_store(CountingConfig(("country",), buckets=BucketBounds.of([])))
    await store.apply(batch_of(with_dims("p", 3, "NL")))
    detail = (await store.detail()).get("p")
    assert detail is not None
    assert (detail.buckets, detail.combinations[0].buckets) == ((), ())
    assert detail.combinations[0].tally == Tally(1, 3_000_000)


async def test_reset_forgets_dimensions_buckets_and_admissions(
    make_counting_store: CountingStoreFactory,
) -> None:
    """After a reset no value, combination or bucket remains, and the caps are free again."""
    store = make_counting_store(CountingConfig(("country",), max_values=1, max_combinations=1))
    await store.apply(batch_of(with_dims("p", 1, "NL"), with_dims("p", 1, "DE")))
    await store.reset()
    assert await store.breakdown("p", "country") is None
    assert (await store.detail()).types == ()
    result = await store.apply(batch_of(with_dims("p", 1, "DE")))
    assert result.folds == ()
    assert by_value(await store.breakdown("p", "country")) == {"DE": (1, 1_000_000)}
    assert joint(await store.detail(), "p") == {("DE",): (1, 1_000_000)}


async def test_without_dimensions_the_detail_has_buckets_only(
    make_counting_store: CountingStoreFactory,
) -> None:
    """With no dimension declared: no fold, no joint table, and the value buckets all the same."""
    store = make_counting_store(CountingConfig())
    result = await store.apply(batch_of(event("p", 3), event("p", 30)))
    assert (result.outcomes, result.folds) == (("applied", "applied"), ())
    detail = (await store.detail()).get("p")
    assert detail is not None
    assert (detail.combinations, detail.folded, detail.folded_combinations) == ((), (), 0)
    assert detail.buckets == ((5.0, 1), (50.0, 1))
