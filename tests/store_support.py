"""The Redis store as tests build it: through the production connection (cluster discovery,
rebuilds), with what tests read of it that production has no use for."""

from __future__ import annotations

import uuid
from typing import Any, Final

import redis.asyncio as aioredis

from exporter.store.connection import Client, RedisConnection
from exporter.store.keys import StoreKeys
from exporter.store.observer import StoreObserver
from exporter.store.options import StoreOptions
from exporter.store.redis import RedisStore
from exporter.store.tls import TlsFiles

# The key names of a store with the default options (one shard), for tests that read or break
# Redis beside the exporter: named by `store/keys.py`, never spelled out.
DEFAULT_KEYS: Final = StoreKeys.build(StoreOptions().prefix, StoreOptions().shards)


def unique_prefix() -> str:
    """A key prefix no other test uses, so tests sharing one Redis never see each other."""
    return f"t{uuid.uuid4().hex[:12]}"


def redis_store(
    url: str,
    *,
    timeout_seconds: float = 5.0,
    tls: TlsFiles | None = None,
    observer: StoreObserver | None = None,
    **options: Any,
) -> RedisStore:
    """A store of the Redis at `url`, built as the commands build theirs; `options` are
    StoreOptions' fields (the prefix "exporter" unless given). The caller closes it."""
    store = RedisStore(
        RedisConnection(url, timeout_seconds=timeout_seconds, tls=tls), StoreOptions(**options)
    )
    if observer is not None:
        store.watch(observer)
    return store


def url_of(client: aioredis.Redis) -> str:
    """The URL of the single Redis `client` talks to, for a store of its own beside it."""
    kwargs = client.connection_pool.connection_kwargs
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


async def current_client(store: RedisStore) -> Client:
    """The client the store's calls use now (made by the first call if none was yet)."""
    async with store.connection.lease() as generation:
        return generation.client


async def script_calls(client: aioredis.Redis) -> int:
    """Script calls (EVALSHA and EVAL) a single Redis ran since its last CONFIG RESETSTAT."""
    stats: dict[str, Any] = await client.info("commandstats")
    return sum(
        int(stats[name]["calls"]) for name in ("cmdstat_evalsha", "cmdstat_eval") if name in stats
    )


__all__ = ["current_client", "redis_store", "script_calls", "unique_prefix", "url_of"]
