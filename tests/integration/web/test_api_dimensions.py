"""The API with dimensions and value buckets: /stats/{type}?by=, the new keys of /stats, and the
labelled series and histogram family of /metrics, over the memory store and the Redis store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.events import ABSENT, OTHER, Event
from exporter.store import Store
from exporter.store.detail import CountingConfig
from exporter.store.histograms import BucketBounds
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from tests.integration.web.api_support import api_client, redis_store
from tests.servers import RedisServer

COUNTING = CountingConfig(("channel", "country"), buckets=BucketBounds.of([1, 10, 100]))


def dims(kind: str, value: str, channel: str, country: str) -> Event:
    """An event worth exactly `value` with its two dimension values."""
    micros = int(Decimal(value).scaleb(6))
    return Event(kind, micros, datetime.now(UTC), None, (channel, country))


async def add(store: Store, events: Sequence[Event]) -> None:
    """Apply `events` under fresh identities, all applied."""
    result = await store.apply([(f"msg:{uuid.uuid4()}", e) for e in events])
    assert result.outcomes.count("applied") == len(events)


class StoreFactory(Protocol):
    def __call__(self, counting: CountingConfig, *, sharing: Store | None = None) -> Store: ...


@pytest.fixture(name="make", params=["memory", "redis"])
async def fixture_make(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[StoreFactory]:
    """Stores of one kind; with `sharing`, on that store's data (a processor of another
    configuration beside it). The Redis ones share a prefix of the test's own."""
    prefix = f"dims-{uuid.uuid4().hex[:12]}"
    opened: list[RedisStore] = []

    def make(counting: CountingConfig, *, sharing: Store | None = None) -> Store:
        if request.param == "memory":
            data = sharing.data if isinstance(sharing, MemoryStore) else None
            return MemoryStore(counting=counting, data=data)
        store = redis_store(redis_server.url, prefix, counting=counting)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def shop(make: StoreFactory) -> Store:
    """A store of purchases by channel and country, one country past a cap of 3 values."""
    store = make(CountingConfig(COUNTING.dimensions, 3, 1000, COUNTING.buckets))
    await add(
        store,
        [
            dims("purchase", "19.99", "web", "NL"),
            dims("purchase", "0.01", "web", "NL"),
            dims("purchase", "50", "app", "DE"),
            dims("purchase", "5", "app", "FR"),
            dims("purchase", "250", "app", "BE"),  # the fourth country: __other__
            dims("purchase", "7", "web", ABSENT),
            dims("purchase", "3", OTHER, "NL"),
            dims("refund", "-5", "web", "NL"),
        ],
    )
    return store


def metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_by_answers_every_value_with_exact_numbers(make: StoreFactory) -> None:
    """?by=country: each value's count and exact sum, most first then by value, the reserved
    values among them, the same number formats as /stats."""
    store = await shop(make)
    async with api_client(store) as client:
        response = await client.get("/stats/purchase?by=country")
        assert response.status == 200
        body = await response.json()
    assert body["type"] == "purchase"
    assert body["dimension"] == "country"
    assert body["since"].endswith("Z")
    assert [(v["value"], v["count"], v["sum_exact"]) for v in body["values"]] == [
        ("NL", 3, "23"),
        ("DE", 1, "50"),
        ("FR", 1, "5"),
        (ABSENT, 1, "7"),
        (OTHER, 1, "250"),
    ]
    nl = body["values"][0]
    assert (nl["sum"], nl["mean"]) == (23.0, pytest.approx(23 / 3))
    assert body["unattributed"] == {"count": 0, "sum": 0.0, "sum_exact": "0"}
    assert body["cut"] == 0


async def test_limit_cuts_and_says_how_many(make: StoreFactory) -> None:
    """?limit=2 answers the two most counted values and how many were left out."""
    store = await shop(make)
    async with api_client(store) as client:
        body = await (await client.get("/stats/purchase?by=country&limit=2")).json()
    assert [v["value"] for v in body["values"]] == ["NL", "DE"]
    assert body["cut"] == 3


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("by=city", "Unknown dimension 'city'. Declared dimensions: 'channel', 'country'."),
        ("by=country&by=channel", "'by' is given 2 times"),
        ("by=country&limit=0", "'limit' must be a whole number from 1"),
        ("by=country&limit=ten", "'limit' must be given once"),
    ],
)
async def test_a_bad_breakdown_query_is_a_400_naming_what_works(
    query: str, words: str, make: StoreFactory
) -> None:
    """An unknown dimension names the declared ones; a repeated `by` or bad `limit` is named."""
    store = await shop(make)
    async with api_client(store) as client:
        response = await client.get(f"/stats/purchase?{query}")
        assert response.status == 400
        body = await response.json()
    assert body["error"] == "invalid_query"
    assert words in body["message"]


async def test_without_dimensions_by_is_a_400_and_unknown_types_a_404(make: StoreFactory) -> None:
    """With none declared the message says so; a type never counted is 404 with `by` too."""
    async with api_client(make(CountingConfig())) as client:
        response = await client.get("/stats/purchase?by=country")
        assert response.status == 400
        assert "No dimension is declared" in (await response.json())["message"]
    async with api_client(await shop(make)) as client:
        response = await client.get("/stats/never?by=country")
        assert response.status == 404


async def test_a_dimension_only_some_processors_declare_leaves_the_rest_unattributed(
    make: StoreFactory,
) -> None:
    """Events applied by a processor without the dimension are its `unattributed` part."""
    store = await shop(make)
    older = make(CountingConfig(("country",)), sharing=store)
    await add(older, [Event("purchase", 4_000_000, datetime.now(UTC), None, ("NL",))])
    async with api_client(store) as client:
        body = await (await client.get("/stats/purchase?by=channel")).json()
    assert body["unattributed"] == {"count": 1, "sum": 4.0, "sum_exact": "4"}
    assert sum(v["count"] for v in body["values"]) == 7


async def test_stats_shows_buckets_percentiles_and_folds_beside_the_seed_keys(
    make: StoreFactory,
) -> None:
    """Each /stats entry keeps its keys and adds cumulative buckets, estimated p50/p90/p99 with
    their bucket's bounds, and the folded counts."""
    store = await shop(make)
    async with api_client(store) as client:
        listed = await (await client.get("/stats")).json()
        one = await (await client.get("/stats/purchase")).json()
    purchase = next(item for item in listed if item["type"] == "purchase")
    assert purchase == one
    assert (purchase["count"], purchase["sum_exact"]) == (7, "335")
    assert purchase["buckets"] == [
        {"le": "1", "count": 1},
        {"le": "10", "count": 4},
        {"le": "100", "count": 6},
        {"le": "+Inf", "count": 7},
    ]
    percentiles = purchase["percentiles"]
    assert percentiles["estimated_from_buckets"] is True
    assert percentiles["p50"] == {"value": pytest.approx(8.5), "lower": 1.0, "upper": 10.0}
    assert percentiles["p99"] == {"value": 100.0, "lower": 100.0, "upper": None}
    assert purchase["folded"] == {"dimensions": {"channel": 1, "country": 1}, "combinations": 0}


async def test_with_buckets_off_and_no_dimensions_stats_keeps_the_seed_shape(
    make: StoreFactory,
) -> None:
    """EXPORTER_VALUE_BUCKETS empty and no dimension: exactly the keys of before (and issue 25's
    counting_since), no bucket, percentile or fold."""
    store = make(CountingConfig(buckets=BucketBounds.of([])))
    await add(store, [Event("purchase", 12_500_000, datetime.now(UTC))])
    async with api_client(store) as client:
        (item,) = await (await client.get("/stats")).json()
    assert set(item) == {
        "type",
        "count",
        "sum",
        "sum_exact",
        "mean",
        "last_applied",
        "counting_since",
    }


async def test_metrics_label_every_combination_and_add_the_remainder(make: StoreFactory) -> None:
    """Every series carries every dimension; the remainder is `__unattributed__`; summed by type
    they give the type's exact count and sum, and every histogram's `+Inf` is its count."""
    store = await shop(make)
    older = make(CountingConfig(("country",)), sharing=store)
    await add(older, [Event("purchase", 4_000_000, datetime.now(UTC), None, ("NL",))])
    async with api_client(store) as client:
        found = metrics(await (await client.get("/metrics")).text())
    events = {
        labels: value for (name, labels), value in found.items()
        if name == "exporter_stats_events_total" and ("type", "purchase") in labels
    }  # fmt: skip
    assert events[(("channel", "web"), ("country", "NL"), ("type", "purchase"))] == 2
    assert events[(("channel", "app"), ("country", OTHER), ("type", "purchase"))] == 1
    remainder = (("channel", "__unattributed__"), ("country", "__unattributed__"))
    assert events[(*remainder, ("type", "purchase"))] == 1
    assert sum(events.values()) == 8
    sums = [v for (n, labels), v in found.items()
            if n == "exporter_stats_value_sum" and ("type", "purchase") in labels]  # fmt: skip
    assert sum(sums) == pytest.approx(339.0)
    for (name, labels), value in found.items():
        if name == "exporter_stats_value_count":
            inf = tuple(sorted((*labels, ("le", "+Inf"))))
            assert found[("exporter_stats_value_bucket", inf)] == value
            assert found[("exporter_stats_events_total", labels)] == value


async def test_metrics_without_dimensions_keep_one_series_per_type(
    redis_server: RedisServer,
) -> None:
    """Without dimensions, over the Redis store with the default buckets: one series per type,
    `exporter_stats_value_sum` the histogram family's sum, the event in its bucket."""
    store: RedisStore = redis_store(redis_server.url)
    try:
        await store.apply([("msg:a", Event("purchase", 2_500_000, datetime.now(UTC)))])
        async with api_client(store, registry=CollectorRegistry()) as client:
            text = await (await client.get("/metrics")).text()
    finally:
        await store.close()
    found = metrics(text)
    purchase = (("type", "purchase"),)
    assert found[("exporter_stats_value_sum", purchase)] == 2.5
    assert found[("exporter_stats_value_count", purchase)] == 1
    assert found[("exporter_stats_events_total", purchase)] == 1
    assert found[("exporter_stats_value_bucket", (("le", "1.0"), ("type", "purchase")))] == 0
    assert found[("exporter_stats_value_bucket", (("le", "5.0"), ("type", "purchase")))] == 1
    assert found[("exporter_stats_value_bucket", (("le", "+Inf"), ("type", "purchase")))] == 1
    assert "# TYPE exporter_stats_value histogram" in text
