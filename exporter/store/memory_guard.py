"""What Redis's memory settings mean for the exporter: an evicting policy, and the headroom a
store that ran out of memory must regain before it takes writes again (decision 0017).

Pure: it reads what `INFO memory` said on each master; the Redis store does the asking. `INFO`
works on managed services that disable `CONFIG`, so nothing here needs more than that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

NO_EVICTION: Final = "noeviction"
# After an out-of-memory refusal, writes resume only below this share of maxmemory. A batch's
# growth is small (about 150 bytes an event, a few hundred KB for the largest merged call of a
# fleet), so 10 % of maxmemory leaves room for many such calls before the limit is met again:
# a resume is then a real recovery, not the start of the next refusal (decision 0017).
LOW_WATER_FRACTION: Final = 0.9
_ALLOW: Final = "EXPORTER_REDIS_ALLOW_EVICTION"


@dataclass(frozen=True, slots=True)
class NodeMemory:
    """One master's memory, as its `INFO memory` states it."""

    node: str
    used: int
    """Bytes counted against maxmemory: used_memory less what Redis leaves out of that count
    (replication and AOF buffers, `mem_not_counted_for_evict`)."""
    maxmemory: int
    """0: no limit."""
    policy: str

    @classmethod
    def from_info(cls, node: str, info: Mapping[str, object]) -> NodeMemory:
        """Read the fields of `INFO memory` (redis-py's parsed dict) that matter here."""
        used = _int(info.get("used_memory")) - _int(info.get("mem_not_counted_for_evict"))
        return cls(
            node=node,
            used=max(used, 0),
            maxmemory=_int(info.get("maxmemory")),
            policy=str(info.get("maxmemory_policy") or NO_EVICTION),
        )

    @property
    def evicting(self) -> bool:
        """Whether Redis may delete keys of ours to make room (any policy but noeviction)."""
        return self.policy != NO_EVICTION

    @property
    def low_water(self) -> int:
        """Bytes below which writes resume after an out-of-memory refusal."""
        return int(self.maxmemory * LOW_WATER_FRACTION)

    def describe(self) -> str:
        """`used 3.1 MB of maxmemory 3.0 MB (noeviction) on host:port`."""
        if not self.maxmemory:
            return f"used {_mb(self.used)}, no maxmemory ({self.policy}) on {self.node}"
        return (
            f"used {_mb(self.used)} of maxmemory {_mb(self.maxmemory)} ({self.policy}) "
            f"on {self.node}"
        )


def evicting_policy(nodes: Sequence[NodeMemory]) -> str | None:
    """The first evicting maxmemory-policy among the masters, or None when none evicts."""
    return next((node.policy for node in nodes if node.evicting), None)


def eviction_problem(nodes: Sequence[NodeMemory]) -> str | None:
    """One line naming an evicting policy and what to do, or None when no master evicts.

    volatile-* policies are refused too: they evict keys that have a TTL, and the remembered
    identities and event-time buckets have one by design (decision 0017).
    """
    node = next((node for node in nodes if node.evicting), None)
    if node is None:
        return None
    return (
        f"Redis has maxmemory-policy {node.policy} on {node.node}: it may evict the exporter's "
        f"totals or remembered identities, and totals would be silently wrong; set "
        f"maxmemory-policy {NO_EVICTION} (CONFIG SET, or the provider's parameter group), or "
        f"set {_ALLOW}=true to run anyway"
    )


class MemoryGuard:
    """After Redis refused a write for lack of memory, writes wait for headroom (hysteresis).

    Redis refuses a write while used memory is above maxmemory; right below it, a small write
    passes and the next batch is refused again. So once tripped, the guard holds until every
    master with a maxmemory is below its low-water mark, and says so with the figures.
    """

    def __init__(self) -> None:
        self.tripped = False

    def trip(self) -> None:
        """A write was refused for lack of memory."""
        self.tripped = True

    def short(self, nodes: Sequence[NodeMemory]) -> str | None:
        """Why writes must still wait, with the figures, or None (and the guard released)."""
        if not self.tripped:
            return None
        full = [n for n in nodes if n.maxmemory and n.used > n.low_water]
        if full:
            node = full[0]
            return (
                f"Redis ran out of memory and is not below its low-water mark yet: "
                f"{node.describe()}; writes resume below {_mb(node.low_water)} "
                f"({LOW_WATER_FRACTION:.0%} of maxmemory)"
            )
        self.tripped = False
        return None


def memory_words(nodes: Sequence[NodeMemory]) -> str:
    """The figures of the fullest master, for an out-of-memory refusal's message."""
    limited = [n for n in nodes if n.maxmemory] or list(nodes)
    if not limited:
        return "memory figures unavailable"
    node = max(limited, key=lambda n: n.used / n.maxmemory if n.maxmemory else 0.0)
    if not node.maxmemory:
        return node.describe()
    return f"{node.describe()}; writes resume below {_mb(node.low_water)}"


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


__all__ = [
    "LOW_WATER_FRACTION",
    "NO_EVICTION",
    "MemoryGuard",
    "NodeMemory",
    "evicting_policy",
    "eviction_problem",
    "memory_words",
]
