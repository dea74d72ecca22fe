"""The Redis store's settings, in one frozen object (the composition root fills it in)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.store import DEFAULT_DEDUPE_WINDOW_SECONDS, DEFAULT_MAX_TYPES
from exporter.store.detail import CountingConfig
from exporter.store.series import SeriesPolicy


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How a Redis store names its keys, what it counts, and what a write must wait for.

    The connection's own settings (REDIS_URL, its socket timeout, TLS files) belong to
    `RedisConnection`; everything else the store decides with is here.
    """

    prefix: str = "exporter"
    """The global hash tag's name: every key is under `{prefix}` or a shard tag made from it."""
    dedupe_window_seconds: int = DEFAULT_DEDUPE_WINDOW_SECONDS
    max_types: int = DEFAULT_MAX_TYPES
    series: SeriesPolicy = field(default_factory=SeriesPolicy)
    shards: int = 1
    min_replicas: int = 0
    """Replicas that must acknowledge every write (WAIT) before a batch counts as applied."""
    replica_timeout_ms: int = 1000
    allow_eviction: bool = False
    """Pass the write probe on a Redis whose maxmemory-policy evicts (with a warning)."""
    counting: CountingConfig = field(default_factory=CountingConfig)
    """Dimensions, their caps and value buckets: what a processor writes beyond totals, and
    the joint table and bounds a reader reads (decisions 0020, 0021)."""


__all__ = ["StoreOptions"]
