"""DELETE /stats: bearer-token guarded, audited, and it really empties the shared totals."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from prometheus_client import CollectorRegistry

from exporter.store.redis import RedisStore
from exporter.web import make_app
from exporter.web.server import serving
from tests.integration.web.api_support import TOKEN, add, api_client, event


@pytest.fixture(name="store")
async def fixture_store(store: RedisStore) -> RedisStore:
    """A Redis store of the test's own, holding two types."""
    await add(store, [event("purchase", "10.5"), event("pageview", 1)])
    return store


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "exporter.audit"]


async def test_the_right_token_resets_every_total(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """With the configured bearer token, DELETE answers 204 and /stats is empty afterwards."""
    with caplog.at_level(logging.INFO):
        async with api_client(store) as client:
            response = await client.delete("/stats", headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status == 204
            assert await response.read() == b""
            assert await (await client.get("/stats")).json() == []
            assert (await client.get("/stats/purchase")).status == 404
    (line,) = audit_lines(caplog)
    assert line.getMessage() == "statistics reset"
    assert line.__dict__["outcome"] == "reset"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "longer", "basic-scheme", "no-scheme", "empty"],
)
async def test_a_missing_or_wrong_token_is_401_and_changes_nothing(
    store: RedisStore, caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    """Anything but 'Bearer <token>' is 401 JSON with a challenge; the totals stay."""
    with caplog.at_level(logging.INFO):
        async with api_client(store) as client:
            response = await client.delete("/stats", headers=headers)
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            body = await response.json()
            assert body["error"] == "unauthorized"
            assert len(await (await client.get("/stats")).json()) == 2
    (line,) = audit_lines(caplog)
    assert line.__dict__["outcome"] == "unauthorized"


async def test_reset_is_disabled_without_a_configured_token(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """With no admin token configured every DELETE is 403, even one carrying some token."""
    with caplog.at_level(logging.INFO):
        async with api_client(store, admin_token=None) as client:
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
                response = await client.delete("/stats", headers=headers)
                assert response.status == 403
                assert (await response.json())["error"] == "reset_disabled"
            assert len(await (await client.get("/stats")).json()) == 2
    assert [r.__dict__["outcome"] for r in audit_lines(caplog)] == ["disabled"] * 3


async def test_audit_lines_never_contain_the_token(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the configured nor an offered token appears in any log record."""
    offered = "offered-guess-123"
    with caplog.at_level(logging.DEBUG):
        async with api_client(store) as client:
            await client.delete("/stats", headers={"Authorization": f"Bearer {offered}"})
            await client.delete("/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert len(audit_lines(caplog)) == 2
    for record in caplog.records:
        rendered = record.getMessage() + repr(record.__dict__)
        assert TOKEN not in rendered
        assert offered not in rendered


async def test_counting_resumes_from_zero_after_a_reset(store: RedisStore) -> None:
    """Events applied after a reset start new totals; the old ones do not come back."""
    async with api_client(store) as client:
        await client.delete("/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        await add(store, [event("purchase", "1.25")])
        body = await (await client.get("/stats")).json()
    assert [(b["type"], b["count"], b["sum_exact"]) for b in body] == [("purchase", 1, "1.25")]


async def test_a_token_that_is_not_utf8_is_401_not_500(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Header bytes that are not UTF-8 are a wrong token: 401 JSON and an audit line, no 500."""
    app = make_app(store, CollectorRegistry(), admin_token=TOKEN)
    with caplog.at_level(logging.INFO):
        async with serving(app, "127.0.0.1", 0) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"DELETE /stats HTTP/1.1\r\nHost: localhost\r\n"
                b"Authorization: Bearer \xff\xfe" + TOKEN.encode() + b"\r\n"
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            answer = await reader.read()
            writer.close()
            await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(body)["error"] == "unauthorized"
    (line,) = audit_lines(caplog)
    assert line.__dict__["outcome"] == "unauthorized"
    assert len((await store.snapshot()).types) == 2
