"""The store's standalone Redis client makes one attempt: the store's callers are its retry layer
(decision 0022). redis-py 8's `Redis()` defaults to 10 retries with a backoff; `from_url`, which
the store uses, builds its pool without them, and this pins it."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from exporter.store.connection import RedisConnection


async def test_a_connection_dropped_at_once_is_tried_once() -> None:
    """A real TCP peer that accepts and closes every connection: opening the store's client
    fails after one connection, with no retry under it."""
    accepted = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = RedisConnection(f"redis://127.0.0.1:{port}/0", timeout_seconds=2)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            async with connection.lease():
                pass
        assert accepted == 1
    finally:
        await connection.close()
        server.close()
        await server.wait_closed()
