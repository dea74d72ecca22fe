"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exporter.store.redis import RedisStore
from tests.integration.web.api_support import redis_store
from tests.servers import RedisServer


@pytest.fixture(name="store")
async def fixture_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """An empty Redis store of the test's own (a module that needs data overrides this)."""
    store = redis_store(redis_server.url)
    yield store
    await store.close()
