"""GET /stats/{type}/series and GET /rejected over a real Redis: shape, exactness, bad queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exporter.events import Event
from exporter.store.redis import RedisStore
from tests.integration.web.api_support import add, api_client

# Ten minutes ago, on a whole minute: inside the retention, the newest minutes never at the edge.
BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


def at(minutes: int, seconds: int, event_type: str, micros: int) -> Event:
    return Event(event_type, micros, BASE + timedelta(minutes=minutes, seconds=seconds))


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(name="store")
async def fixture_store(store: RedisStore) -> RedisStore:
    """A Redis store of the test's own: purchases in minutes 0, 1 and 3 of BASE."""
    await add(
        store,
        [
            at(0, 5, "purchase", 19_990_000),
            at(0, 59, "purchase", 10_000),
            at(1, 0, "purchase", 100_000),
            at(3, 30, "purchase", -3_333_333),
            at(3, 31, "pageview", 1_000_000),
        ],
    )
    return store


async def test_series_has_every_step_with_exact_sums(store: RedisStore) -> None:
    """Per-minute points over the range, empty ones zero, sums exact as text."""
    query = {"from": rfc3339(BASE), "to": rfc3339(BASE + timedelta(minutes=5)), "step": "60"}
    async with api_client(store) as client:
        response = await client.get("/stats/purchase/series", params=query)
        assert response.status == 200
        body = await response.json()
    assert body["type"] == "purchase"
    assert (body["from"], body["to"], body["step"]) == (query["from"], query["to"], 60)
    assert [(p["count"], p["sum_exact"]) for p in body["points"]] == [
        (2, "20"),
        (1, "0.1"),
        (0, "0"),
        (1, "-3.333333"),
        (0, "0"),
    ]
    assert body["points"][1]["start"] == rfc3339(BASE + timedelta(minutes=1))
    assert body["points"][0]["sum"] == 20.0


async def test_wider_steps_sum_their_minutes_and_from_is_floored(store: RedisStore) -> None:
    """A 120 s step adds two minutes; `from` in mid-minute starts at that minute; offsets count."""
    start = (BASE + timedelta(seconds=40)).astimezone(timezone(timedelta(hours=2))).isoformat()
    query = {"from": start, "to": rfc3339(BASE + timedelta(minutes=4)), "step": "120"}
    async with api_client(store) as client:
        body = await (await client.get("/stats/purchase/series", params=query)).json()
    assert body["from"] == rfc3339(BASE)
    assert [(p["count"], p["sum_exact"]) for p in body["points"]] == [(3, "20.1"), (1, "-3.333333")]


async def test_rejected_counts_are_served_most_frequent_first(store: RedisStore) -> None:
    """/rejected lists every reason with its count and the total."""
    await store.add_rejected({"bad_value": 2, "not_json": 5, "bad_type": 2})
    async with api_client(store) as client:
        response = await client.get("/rejected")
        assert response.status == 200
        body = await response.json()
    assert body == {
        "total": 9,
        "reasons": [
            {"reason": "not_json", "count": 5},
            {"reason": "bad_type", "count": 2},
            {"reason": "bad_value", "count": 2},
        ],
    }


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"from": "", "step": "60"}, "'from' '' is not an RFC 3339 time"),
        ({"from": "3026-01-01T00:00:00Z"}, "which is by default the end of the current minute"),
        ({"setp": "300"}, "Unknown parameter 'setp'"),
        ({"from": "2026-01-01 00:00:00", "to": "2026-01-01T01:00:00Z", "step": "60"}, "offset"),
        ({"from": "yesterday", "to": "2026-01-01T01:00:00Z", "step": "60"}, "RFC 3339"),
        ({"from": "2026-02-30T00:00:00Z", "to": "2026-03-01T01:00:00Z", "step": "60"}, "'from'"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z", "step": "90"}, "60"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z", "step": "0"}, "60"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z", "step": "1e3"}, "whole"),
        ({"from": "2026-01-01T01:00:00Z", "to": "2026-01-01T00:00:00Z", "step": "60"}, "later"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-08T00:00:01Z", "step": "60"}, "10000"),
        ({"from": "9999-12-31T23:00:00Z", "to": "9999-12-31T23:59:59Z", "step": "7200"}, "9999"),
        (
            {"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-02T00:00:00Z", "step": "3600"},
            "1 to",
        ),
    ],
)
async def test_bad_queries_are_400_naming_the_problem(
    store: RedisStore, query: dict[str, str], words: str
) -> None:
    """Missing, malformed or out-of-range parameters are a 400 JSON error that says which."""
    async with api_client(store) as client:
        response = await client.get("/stats/purchase/series", params=query)
        assert response.status == 400
        body = await response.json()
    assert body["error"] == "invalid_query"
    assert words in body["message"]


async def test_without_parameters_it_answers_the_last_hour_per_minute(store: RedisStore) -> None:
    """No query at all: the live page's range, 60 one-minute steps ending with the current minute,
    holding the fixture's purchases of ten minutes ago."""
    before = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    async with api_client(store) as client:
        response = await client.get("/stats/purchase/series")
        assert response.status == 200
        body = await response.json()
    after = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert body["to"] in {rfc3339(before), rfc3339(after)}
    end = datetime.fromisoformat(body["to"])
    assert body["from"] == rfc3339(end - timedelta(hours=1))
    assert (body["step"], len(body["points"])) == (60, 60)
    assert sum(p["count"] for p in body["points"]) == 4


async def test_every_problem_of_a_query_is_named_in_one_answer(store: RedisStore) -> None:
    """A repeated `from`, a bad `to` and a bad `step` are one 400 naming all three, in the API's
    JSON error shape; the repeated parameter is not read as its first value."""
    params = [
        ("from", rfc3339(BASE)),
        ("from", rfc3339(BASE + timedelta(minutes=1))),
        ("to", "soon"),
        ("step", "61"),
    ]
    async with api_client(store) as client:
        response = await client.get("/stats/purchase/series", params=params)
        assert response.status == 400
        assert response.content_type == "application/json"
        body = await response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "invalid_query"
    assert "'from' is given 2 times; give it once." in body["message"]
    assert "'to' 'soon' is not an RFC 3339 time" in body["message"]
    assert "'step' must be a multiple of 60" in body["message"]


async def test_ten_thousand_points_are_answered_one_more_is_not(store: RedisStore) -> None:
    """Exactly 10,000 steps is the most a range may hold."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with api_client(store) as client:
        for minutes, status in [(10_000, 200), (10_001, 400)]:
            query = {
                "from": rfc3339(start),
                "to": rfc3339(start + timedelta(minutes=minutes)),
                "step": "60",
            }
            response = await client.get("/stats/purchase/series", params=query)
            assert response.status == status
            if status == 200:
                assert len((await response.json())["points"]) == 10_000


async def test_unknown_type_is_404_and_impossible_name_400(store: RedisStore) -> None:
    """An unseen type is 404 unknown_type; a name that can never be a type is 400."""
    query = {"from": rfc3339(BASE), "to": rfc3339(BASE + timedelta(hours=1)), "step": "60"}
    async with api_client(store) as client:
        unknown = await client.get("/stats/refund/series", params=query)
        impossible = await client.get("/stats/-x/series", params=query)
        assert (unknown.status, (await unknown.json())["error"]) == (404, "unknown_type")
        assert (impossible.status, (await impossible.json())["error"]) == (400, "invalid_type")


async def test_reset_empties_the_series_and_the_rejected_counts(store: RedisStore) -> None:
    """After DELETE /stats the type is unknown (404) and nothing is rejected any more."""
    await store.add_rejected({"bad_value": 1})
    await store.reset()
    query = {"from": rfc3339(BASE), "to": rfc3339(BASE + timedelta(hours=1)), "step": "60"}
    async with api_client(store) as client:
        assert (await client.get("/stats/purchase/series", params=query)).status == 404
        assert await (await client.get("/rejected")).json() == {"total": 0, "reasons": []}
