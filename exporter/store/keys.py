"""Every Redis key name of the store, derived in one place from the prefix and the shard count.

A key's hash tag (the part in braces) picks its cluster slot. The global tag `{prefix}` holds what
must be one value for all shards: the shard count, the reset generation, the registry of known
types, the rejected counts and the readiness probe. Each shard has its own tag; everything a
shard's script touches (its remembered identities, its partial totals, its event-time buckets and
their index) is named here
from that tag, so one script call only ever touches one slot.

With one shard the shard tag is the global tag and the names are those of earlier versions, so
data written before shards existed stays readable.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# A shard tag is `{prefix#n}`; `#` may not appear in a prefix (settings), so no shard tag of one
# prefix is ever the global tag of another.
_SHARD_MARK: Final = "#"


def shard_of(identity: str, shards: int) -> int:
    """The shard of an identity: stable across processes and versions (CRC-32, not `hash()`)."""
    if shards == 1:
        return 0
    return zlib.crc32(identity.encode()) % shards


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The names of one shard's keys."""

    tag: str

    def totals(self, generation: int) -> str:
        """The hash of partial totals written since reset `generation` (0: the original name)."""
        base = f"{self.tag}:totals"
        return base if generation == 0 else f"{base}:{generation}"

    def bucket(self, generation: int, event_type: str, hour: int) -> str:
        """The hash of one type's event-time buckets in one UTC hour (hours since the epoch).

        A type may hold `:` and digits but never `@`, so no name of one generation is ever a
        name of another.
        """
        base = f"{self.tag}:series" if generation == 0 else f"{self.tag}:series@{generation}"
        return f"{base}:{event_type}:{hour}"

    def bucket_index(self, generation: int) -> str:
        """The sorted set of this shard's bucket keys of `generation`, by expiry (for reset)."""
        base = f"{self.tag}:series-index"
        return base if generation == 0 else f"{base}:{generation}"

    def detail(self, generation: int, event_type: str) -> str:
        """The hash of one type's marginals (`c|u|f|<dimension>|<value>`, `s|<dimension>`) and
        value buckets (`h|<bound>`) written since reset `generation` (decisions 0020, 0021)."""
        return f"{self._detail_base(generation, 'detail')}:{event_type}"

    def joint(self, generation: int, event_type: str, configuration: str) -> str:
        """The hash of one type's joint table of one configuration (`c|u|f|<combination>`,
        `h|<bound>|<combination>`, `folded`, `since`). A configuration is dimension names joined
        by `,`, never holding `:`, so the last `:` ends the type."""
        return f"{self._detail_base(generation, 'joint')}:{event_type}:{configuration}"

    def detail_index(self, generation: int) -> str:
        """The set of this shard's detail and joint hashes of `generation` (for reset)."""
        base = f"{self.tag}:detail-index"
        return base if generation == 0 else f"{base}:{generation}"

    def _detail_base(self, generation: int, kind: str) -> str:
        # As with buckets: a type never holds `@`, so no generation's name is another's.
        return f"{self.tag}:{kind}" if generation == 0 else f"{self.tag}:{kind}@{generation}"

    @property
    def seen_prefix(self) -> bytes:
        """Prefix of the expiring key that remembers one identity."""
        return f"{self.tag}:seen:".encode()


@dataclass(frozen=True, slots=True)
class StoreKeys:
    """The global keys, and one `ShardKeys` per shard."""

    prefix: str
    shards: tuple[ShardKeys, ...]

    @classmethod
    def build(cls, prefix: str, shard_count: int) -> StoreKeys:
        """Names for `shard_count` shards, whose tags fall in evenly spaced slot ranges."""
        if shard_count < 1:
            raise ValueError(f"shard count must be at least 1, not {shard_count}")
        if shard_count == 1:
            return cls(prefix, (ShardKeys("{" + prefix + "}"),))
        return cls(prefix, tuple(ShardKeys(_spread_tag(prefix, i, shard_count))
                                 for i in range(shard_count)))  # fmt: skip

    @property
    def tag(self) -> str:
        """The global hash tag."""
        return "{" + self.prefix + "}"

    @property
    def types(self) -> str:
        """The set of known types (the global type cap), emptied by a reset."""
        return f"{self.tag}:types"

    @property
    def rejected(self) -> str:
        """The hash of rejected events by reason, emptied by a reset with the types."""
        return f"{self.tag}:rejected"

    @property
    def shard_count(self) -> str:
        """The shard count the data was written with."""
        return f"{self.tag}:shards"

    @property
    def generation(self) -> str:
        """The reset generation: a reset increments it, and totals keys carry it."""
        return f"{self.tag}:generation"

    @property
    def probe(self) -> str:
        """The key the readiness probe writes to prove the write path."""
        return f"{self.tag}:probe"

    def values(self, event_type: str, dimension: str) -> str:
        """The set of admitted values of one type's dimension (the value cap), emptied by a
        reset; a dimension name never holds `:`."""
        return f"{self.tag}:values:{event_type}:{dimension}"

    def combinations(self, event_type: str, configuration: str) -> str:
        """The set of admitted combinations of one type's configuration (the combination cap)."""
        return f"{self.tag}:combos:{event_type}:{configuration}"

    @property
    def admissions(self) -> str:
        """The set of every admission set's name, for a reset to find them."""
        return f"{self.tag}:admissions"

    @property
    def legacy_totals(self) -> str:
        """The totals hash of data written before shards existed (one shard, generation 0)."""
        return f"{self.tag}:totals"


def _spread_tag(prefix: str, index: int, count: int) -> str:
    # A cluster gives each master a contiguous slot range, split evenly by `--cluster create`.
    # Tags chosen in K evenly spaced slot ranges land on K different masters wherever the masters
    # own equal ranges, so writes spread; a tag's name never depends on the live cluster, only on
    # the prefix and K, so every process derives the same names.
    low = index * REDIS_CLUSTER_HASH_SLOTS // count
    high = (index + 1) * REDIS_CLUSTER_HASH_SLOTS // count
    for n in range(1_000_000):
        tag = "{" + f"{prefix}{_SHARD_MARK}{n}" + "}"
        if low <= key_slot(tag.encode()) < high:
            return tag
    raise ValueError(f"no shard tag for shard {index} of {count}")  # pragma: no cover


__all__ = ["ShardKeys", "StoreKeys", "shard_of"]
