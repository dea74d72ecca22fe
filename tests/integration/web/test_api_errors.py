"""Every error of the stats API is JSON with a message, and none shows a stack trace."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import pytest

from exporter.events import Event
from exporter.store import ApplyResult, Snapshot
from exporter.store.detail import Breakdown, CountingConfig, Detail
from exporter.store.redis import RedisStore
from exporter.store.series import MinuteTotals
from tests.integration.web.api_support import TOKEN, api_client, redis_store
from tests.servers import RedisServer, free_port


@pytest.fixture(name="dead_store")
async def fixture_dead_store() -> AsyncIterator[RedisStore]:
    """A Redis store pointing at a port where nothing listens."""
    store = redis_store(f"redis://127.0.0.1:{free_port()}/0")
    yield store
    await store.close()


@dataclass
class BrokenStore:
    """A store whose reads fail with a bug, not an outage: the only way to reach the 500 path."""

    secret: str = "password=hunter2 at /srv/internal.py line 42"

    async def apply(self, batch: Sequence[tuple[str, Event]]) -> ApplyResult:
        raise NotImplementedError

    async def snapshot(self) -> Snapshot:
        raise RuntimeError(self.secret)

    async def reset(self) -> None:
        raise RuntimeError(self.secret)

    async def series(
        self, event_type: str, first_minute: int, end_minute: int
    ) -> Mapping[int, MinuteTotals]:
        raise RuntimeError(self.secret)

    async def add_rejected(self, by_reason: Mapping[str, int]) -> None:
        raise NotImplementedError

    async def rejected(self) -> Mapping[str, int]:
        raise RuntimeError(self.secret)

    async def ping(self) -> None:
        """Answers, so that only the reads fail."""

    async def probe_write(self) -> None:
        """Answers, so that only the reads fail."""

    async def close(self) -> None:
        """Nothing to release."""

    @property
    def counting(self) -> CountingConfig:
        return CountingConfig()

    async def breakdown(self, event_type: str, dimension: str) -> Breakdown | None:
        raise RuntimeError(self.secret)

    async def detail(self) -> Detail:
        raise RuntimeError(self.secret)


def assert_json_error(body: object, error: str) -> None:
    assert isinstance(body, dict)
    assert body["error"] == error
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "Traceback" not in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nothing-here", 404, "not_found"),
        ("GET", "/stats/", 404, "not_found"),
        ("GET", "/stats/a/b", 404, "not_found"),
        ("POST", "/stats", 405, "method_not_allowed"),
        ("PUT", "/stats/purchase", 405, "method_not_allowed"),
        ("DELETE", "/health", 405, "method_not_allowed"),
        ("PATCH", "/metrics", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods_are_json(
    store: RedisStore, method: str, path: str, status: int, error: str
) -> None:
    """The router's own 404 and 405 come back as JSON errors (405 with an Allow header)."""
    async with api_client(store) as client:
        response = await client.request(method, path)
        assert response.status == status
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert_json_error(await response.json(), error)
        if status == 405:
            assert "GET" in response.headers["Allow"]


async def test_a_large_body_is_refused_with_413_json(store: RedisStore) -> None:
    """A declared body over the limit is refused before any handler runs."""
    async with api_client(store) as client:
        response = await client.delete("/stats", data=b"x" * 100_000)
        assert response.status == 413
        assert_json_error(await response.json(), "payload_too_large")


@pytest.mark.parametrize("path", ["/stats", "/stats/purchase"])
async def test_an_unreachable_store_is_503_json(dead_store: RedisStore, path: str) -> None:
    """Reads while Redis is down answer 503 with a JSON error and a Retry-After hint."""
    async with api_client(dead_store) as client:
        response = await client.get(path)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert_json_error(await response.json(), "store_unavailable")


async def test_a_reset_with_the_store_down_is_503_json_and_audited(
    dead_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """An authorised reset that cannot reach Redis is a 503 JSON error, and the audit says so."""
    with caplog.at_level(logging.INFO, logger="exporter.audit"):
        async with api_client(dead_store) as client:
            response = await client.delete("/stats", headers={"Authorization": "Bearer " + TOKEN})
            assert response.status == 503
            assert_json_error(await response.json(), "store_unavailable")
    audit = [r for r in caplog.records if r.name == "exporter.audit"]
    assert [r.__dict__["outcome"] for r in audit] == ["failed"]


async def test_a_bug_is_a_generic_500_logged_with_its_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected exception is logged with its trace but answered with a generic JSON 500."""
    store = BrokenStore()
    with caplog.at_level(logging.ERROR, logger="exporter.api"):
        async with api_client(store) as client:
            response = await client.get("/stats")
            assert response.status == 500
            text = await response.text()
    assert_json_error(json.loads(text), "internal_error")
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    logged = [r for r in caplog.records if r.name == "exporter.api" and r.exc_info]
    assert logged
    assert "hunter2" in str(logged[0].exc_info[1] if logged[0].exc_info else "")


async def test_health_is_ok_while_redis_answers(store: RedisStore) -> None:
    """/health is 200 with status ok and the store check ok."""
    async with api_client(store) as client:
        response = await client.get("/health")
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"store": "ok"}


async def test_health_names_the_store_when_redis_is_down(dead_store: RedisStore) -> None:
    """/health is 503 and names the store as the failing part."""
    async with api_client(dead_store) as client:
        response = await client.get("/health")
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"store": "failing"}


async def test_health_follows_redis_going_down_and_coming_back(
    fresh_redis_server: RedisServer,
) -> None:
    """/health turns 503 when Redis is killed and back to 200 once it restarts, without restart."""
    store = redis_store(fresh_redis_server.url)
    try:
        async with api_client(store) as client:
            assert (await client.get("/health")).status == 200
            fresh_redis_server.kill()
            assert (await client.get("/health")).status == 503
            assert (await client.get("/stats")).status == 503
            fresh_redis_server.start()
            assert (await client.get("/health")).status == 200
            assert (await client.get("/stats")).status == 200
    finally:
        await store.close()
