"""What INFO memory means for the exporter: which policies are refused, and the hysteresis that
keeps writes waiting after an out-of-memory refusal until memory is below the low-water mark."""

from __future__ import annotations

from exporter.store.memory_guard import (
    LOW_WATER_FRACTION,
    MemoryGuard,
    NodeMemory,
    eviction_problem,
    memory_words,
)


def node(used: int, maxmemory: int, policy: str = "noeviction") -> NodeMemory:
    return NodeMemory("127.0.0.1:6379", used, maxmemory, policy)


def test_info_memory_is_read_without_what_redis_leaves_out_of_its_limit() -> None:
    """used counts against maxmemory only what Redis counts (replication buffers excluded)."""
    info = {
        "used_memory": 5_000_000,
        "mem_not_counted_for_evict": 1_000_000,
        "maxmemory": 8_000_000,
        "maxmemory_policy": "volatile-lru",
    }
    memory = NodeMemory.from_info("n:1", info)
    assert (memory.used, memory.maxmemory, memory.policy) == (4_000_000, 8_000_000, "volatile-lru")
    assert memory.evicting
    assert memory.low_water == int(8_000_000 * LOW_WATER_FRACTION)


def test_every_policy_but_noeviction_is_a_problem_naming_it_and_the_fix() -> None:
    """volatile-* are refused like allkeys-*: the remembered identities have a TTL."""
    assert eviction_problem([node(1, 0)]) is None
    for policy in ("allkeys-lru", "volatile-ttl", "volatile-lfu"):
        problem = eviction_problem([node(1, 0), node(1, 0, policy)])
        assert problem is not None
        assert f"maxmemory-policy {policy}" in problem
        assert "EXPORTER_REDIS_ALLOW_EVICTION=true" in problem


def test_the_guard_holds_from_a_refusal_until_below_the_low_water_mark() -> None:
    """Untripped it never holds; tripped, it holds while any master is above 90 % of its
    maxmemory (even below maxmemory itself), then lets go and stays released."""
    guard = MemoryGuard()
    assert guard.short([node(999, 1000)]) is None
    guard.trip()
    waiting = guard.short([node(100, 1000), node(950, 1000)])
    assert waiting is not None
    assert "low-water mark" in waiting
    assert guard.short([node(899, 1000), node(100, 0)]) is None
    assert guard.short([node(999, 1000)]) is None


def test_the_refusal_names_the_fullest_master() -> None:
    """An OOM message carries used against maxmemory of the master nearest its limit."""
    words = memory_words([node(100_000, 1_000_000), node(3_100_000, 3_000_000)])
    assert "used 3.1 MB of maxmemory 3.0 MB" in words
    assert "writes resume below 2.7 MB" in words
