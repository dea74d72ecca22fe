"""The write probe fails whenever a batch's write would (out of memory, a read-only replica, an
ACL user without the written key patterns), holds after an out-of-memory refusal until memory is
below the low-water mark, refuses an evicting policy unless allowed, and leaves nothing behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store import ReplicasMissing, StoreRefused, StoreUnfit
from exporter.store.memory_guard import LOW_WATER_FRACTION
from exporter.store.observer import StoreObserver
from tests.redis_cluster import RedisClusterNodes
from tests.servers import EVICTING_POLICIES, RedisServer, two_redis_servers
from tests.store_support import DEFAULT_KEYS, redis_store

WHEN = datetime(2026, 11, 26, tzinfo=UTC)


def event(kind: str, micros: int) -> Event:
    return Event(type=kind, value_micros=micros, occurred_at=WHEN)


async def _keys(client: aioredis.Redis) -> set[bytes | str]:
    return set(await client.keys("*"))


@pytest.mark.parametrize("shards", [1, 4])
async def test_the_probe_changes_nothing_and_leaves_no_key(
    fresh_redis_server: RedisServer, shards: int
) -> None:
    """After totals exist, a probe leaves every key and every field as it found them, and adds
    no key (the replicas' acknowledgement included)."""
    client = aioredis.Redis.from_url(fresh_redis_server.url)
    store = redis_store(fresh_redis_server.url, shards=shards, min_replicas=0)
    try:
        await store.apply([(f"msg:{i}", event("a", 1_500_000)) for i in range(20)])
        await store.add_rejected({"not_json": 2})
        before = {key: await client.dump(key) for key in await _keys(client)}
        await store.probe_write()
        await store.probe_write()
        after = {key: await client.dump(key) for key in await _keys(client)}
        assert after == before
    finally:
        await store.close()
        await client.aclose()


async def test_out_of_memory_refuses_the_probe_then_holds_until_below_the_low_water_mark(
    fresh_redis_server: RedisServer,
) -> None:
    """maxmemory under used memory (noeviction): the probe is refused as OOM with the figures;
    with maxmemory just above used memory (a small SET would pass again) it still holds, naming
    the low-water mark; once used memory is below it, the probe passes."""
    client = aioredis.Redis.from_url(fresh_redis_server.url)
    store = redis_store(fresh_redis_server.url)
    try:
        await store.apply([(f"msg:{i}", event("a", 1)) for i in range(200)])
        used = int((await client.info("memory"))["used_memory"])
        await client.config_set("maxmemory", str(used // 2))
        with pytest.raises(StoreRefused, match="OOM") as refused:
            await store.probe_write()
        assert "used " in str(refused.value)
        assert "of maxmemory" in str(refused.value)
        # Room for a small write again, but not below the low-water mark.
        await client.config_set("maxmemory", str(int(used * 1.05)))
        assert await client.set(f"{DEFAULT_KEYS.tag}:plain-probe", "1", px=1000)
        with pytest.raises(StoreRefused, match="low-water mark") as holding:
            await store.probe_write()
        assert "writes resume below" in str(holding.value)
        await client.config_set("maxmemory", str(int(used / LOW_WATER_FRACTION * 1.5)))
        await store.probe_write()
        await client.config_set("maxmemory", str(used // 2))
        with pytest.raises(StoreRefused, match="OOM"):
            await store.apply([("msg:new", event("a", 1))])
        await client.config_set("maxmemory", "0")
        await store.probe_write()
    finally:
        await client.config_set("maxmemory", "0")
        await store.close()
        await client.aclose()


async def test_a_read_only_replica_fails_the_probe(tmp_path: Path) -> None:
    """A REDIS_URL that became a replica: the probe is refused with READONLY."""
    with two_redis_servers(tmp_path) as (primary, replica):
        client = aioredis.Redis.from_url(replica.url)
        store = redis_store(replica.url)
        try:
            await store.probe_write()
            await client.replicaof("127.0.0.1", str(primary.port))
            with pytest.raises(StoreRefused, match="READONLY"):
                await store.probe_write()
        finally:
            await store.close()
            await client.aclose()


async def test_an_acl_user_without_the_written_key_patterns_fails_the_probe(
    fresh_redis_server: RedisServer,
) -> None:
    """An ACL user allowed the old probe's key (and the layout record) but not the remembered
    identities the batch writes: a plain SET probe passes, the probe is refused with NOPERM."""
    admin = aioredis.Redis.from_url(fresh_redis_server.url)
    password = uuid.uuid4().hex
    await admin.acl_setuser(
        "narrow",
        enabled=True,
        passwords=[f"+{password}"],
        keys=[DEFAULT_KEYS.probe, DEFAULT_KEYS.shard_count, DEFAULT_KEYS.legacy_totals],
        commands=["+@all"],
    )
    url = f"redis://narrow:{password}@127.0.0.1:{fresh_redis_server.port}/0"
    narrow = aioredis.Redis.from_url(url)
    store = redis_store(url)
    try:
        assert await narrow.set(DEFAULT_KEYS.probe, "1", px=60000)  # what the old probe did
        with pytest.raises(StoreRefused, match="NOPERM"):
            await store.probe_write()
        with pytest.raises(StoreRefused, match="NOPERM"):
            await store.apply([("msg:1", event("a", 1))])
    finally:
        await store.close()
        await narrow.aclose()
        await admin.aclose()


@pytest.mark.parametrize("policy", ["noeviction", *EVICTING_POLICIES])
async def test_an_evicting_policy_is_refused_unless_allowed(
    fresh_redis_server: RedisServer, policy: str
) -> None:
    """Every policy but noeviction fails the probe as StoreUnfit naming it; allowed, the probe
    passes and the observer hears of the policy."""
    client = aioredis.Redis.from_url(fresh_redis_server.url)
    await client.config_set("maxmemory-policy", policy)
    heard: list[str | None] = []
    strict = redis_store(fresh_redis_server.url)
    allowed = redis_store(
        fresh_redis_server.url,
        allow_eviction=True,
        observer=StoreObserver(evicting=heard.append),
    )
    try:
        if policy == "noeviction":
            await strict.probe_write()
        else:
            with pytest.raises(StoreUnfit, match=f"maxmemory-policy {policy}"):
                await strict.probe_write()
        await allowed.probe_write()
        assert heard == ([] if policy == "noeviction" else [policy])
    finally:
        await strict.close()
        await allowed.close()
        await client.aclose()


async def test_too_few_replicas_fail_the_probe_naming_both_fixes(
    fresh_redis_server: RedisServer,
) -> None:
    """EXPORTER_REDIS_MIN_REPLICAS=1 without a replica: ReplicasMissing with what was found and
    what to do, and no acknowledgement key left behind."""
    client = aioredis.Redis.from_url(fresh_redis_server.url)
    store = redis_store(fresh_redis_server.url, min_replicas=1, replica_timeout_ms=50)
    try:
        with pytest.raises(ReplicasMissing) as missing:
            await store.probe_write()
        assert (missing.value.acknowledged, missing.value.required) == (0, 1)
        assert "0 of 1 replicas acknowledged" in str(missing.value)
        assert "lower EXPORTER_REDIS_MIN_REPLICAS or add a replica" in str(missing.value)
        assert await client.keys("*ack*") == []
    finally:
        await store.close()
        await client.aclose()


async def test_the_probe_runs_on_every_master_of_a_cluster(
    redis_cluster: RedisClusterNodes,
) -> None:
    """On a 3-master cluster with K = 3, the probe passes, reads the memory of all three masters
    and leaves no key behind."""
    prefix = f"probe-{uuid.uuid4().hex[:8]}"
    store = redis_store(redis_cluster.url(), prefix=prefix, shards=3)
    try:
        await store.apply([(f"msg:{i}", event("a", 1)) for i in range(30)])
        await store.probe_write()
        nodes = await store.memory()
        assert len(nodes) == 3
        assert all(node.policy == "noeviction" for node in nodes)
    finally:
        await store.close()
