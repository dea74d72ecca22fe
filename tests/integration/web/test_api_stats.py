"""GET /stats and /stats/{type} over a real Redis store, and the in-memory one for parity."""

from __future__ import annotations

import pytest

from exporter.store import Store
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from tests.integration.web.api_support import add, api_client, event, redis_store
from tests.servers import RedisServer
from tests.store_support import unique_prefix


@pytest.fixture(name="store", params=["redis", "memory"])
def fixture_store(request: pytest.FixtureRequest, store: RedisStore) -> Store:
    """The same API tests against both stores: the answers must not depend on the backend."""
    return store if request.param == "redis" else MemoryStore()


async def test_stats_lists_every_type_sorted_with_exact_totals(store: Store) -> None:
    """/stats returns one object per type, sorted by type, with count, exact sum and mean."""
    await add(store, [event("purchase", "12.50"), event("purchase", "0.25")])
    await add(store, [event("pageview", 1)] * 3)
    await add(store, [event("added-to-basket", 4)])
    async with api_client(store) as client:
        response = await client.get("/stats")
        assert response.status == 200
        # The same type, charset included, as every other JSON answer of the API.
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        body = await response.json()
    assert [item["type"] for item in body] == ["added-to-basket", "pageview", "purchase"]
    purchase = body[2]
    assert (purchase["count"], purchase["sum"], purchase["sum_exact"]) == (2, 12.75, "12.75")
    assert purchase["mean"] == 6.375
    assert purchase["last_applied"].endswith("Z")
    assert body[1] == {**body[1], "count": 3, "sum": 3.0, "sum_exact": "3", "mean": 1.0}


async def test_stats_is_an_empty_list_before_any_event(store: Store) -> None:
    """A store with no totals answers 200 with [] (not 404): nothing counted is a valid answer."""
    async with api_client(store) as client:
        response = await client.get("/stats")
        assert response.status == 200
        assert await response.json() == []


async def test_sums_are_exact_over_many_decimal_values(store: Store) -> None:
    """A thousand events of 0.1 sum to exactly 100, not 99.9999999."""
    await add(store, [event("tip", "0.1")] * 1000)
    async with api_client(store) as client:
        body = await (await client.get("/stats/tip")).json()
    assert (body["count"], body["sum"], body["sum_exact"]) == (1000, 100.0, "100")


async def test_one_type_is_answered_alone(store: Store) -> None:
    """/stats/{type} returns that type's object, equal to its entry in /stats."""
    await add(store, [event("purchase", "99.99"), event("pageview", 1)])
    async with api_client(store) as client:
        one = await (await client.get("/stats/purchase")).json()
        everything = await (await client.get("/stats")).json()
    assert one == next(item for item in everything if item["type"] == "purchase")
    assert one["sum_exact"] == "99.99"


async def test_an_unseen_type_is_404_json(store: Store) -> None:
    """A valid name that was never counted is 404 with a JSON error naming the type."""
    async with api_client(store) as client:
        response = await client.get("/stats/refund")
        assert response.status == 404
        body = await response.json()
    assert body["error"] == "unknown_type"
    assert "refund" in body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/stats/-leading-dash",
        "/stats/" + "a" * 65,
        "/stats/has%20space",
        "/stats/caf%C3%A9",
        "/stats/semi;colon",
    ],
)
async def test_a_name_that_can_never_be_a_type_is_400_json(store: Store, path: str) -> None:
    """Names outside the event contract's type pattern are 400, telling what a type looks like."""
    async with api_client(store) as client:
        response = await client.get(path)
        assert response.status == 400
        body = await response.json()
    assert body["error"] == "invalid_type"
    assert "1-64" in body["message"]


async def test_totals_written_by_another_client_are_read_live(redis_server: RedisServer) -> None:
    """The API holds no cache: totals a processor adds after start-up show on the next request."""
    prefix = unique_prefix()
    store = redis_store(redis_server.url, prefix)
    writer = redis_store(redis_server.url, prefix)
    try:
        async with api_client(store) as client:
            assert await (await client.get("/stats")).json() == []
            await add(writer, [event("purchase", "5.5")])
            body = await (await client.get("/stats/purchase")).json()
        assert body["count"] == 1
        assert body["sum"] == 5.5
    finally:
        await writer.close()
        await store.close()
