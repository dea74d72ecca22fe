"""Helpers for the stats API tests: a Redis store of the test's own and a client for an app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.events import Event
from exporter.store import Store
from exporter.store.redis import RedisStore
from exporter.web import make_app
from tests.store_support import redis_store as store_at
from tests.store_support import unique_prefix

TOKEN = "s3cret-admin-token"


def redis_store(url: str, prefix: str | None = None, **options: Any) -> RedisStore:
    """A store under `prefix` (by default one of its own), as the `store` fixture's, with
    further StoreOptions fields in `options`; the caller closes it."""
    return store_at(url, prefix=prefix or unique_prefix(), timeout_seconds=2.0, **options)


def event(event_type: str, value: str | int) -> Event:
    """An event of `event_type` worth exactly `value`."""
    micros = int(Decimal(value).scaleb(6))
    return Event(type=event_type, value_micros=micros, occurred_at=datetime.now(UTC))


async def add(store: Store, events: Sequence[Event]) -> None:
    """Apply `events` as a processor would, each under a fresh identity."""
    result = await store.apply([(f"msg:{uuid.uuid4()}", e) for e in events])
    assert result.outcomes.count("applied") == len(events)


@asynccontextmanager
async def api_client(
    store: Store,
    *,
    registry: CollectorRegistry | None = None,
    admin_token: str | None = TOKEN,
    store_timeout_seconds: float = 3.0,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The app over `store`, served on a real loopback port, with a client for it."""
    app = make_app(
        store,
        registry or CollectorRegistry(),
        admin_token=admin_token,
        store_timeout_seconds=store_timeout_seconds,
    )
    async with TestClient(TestServer(app)) as client:
        yield client
