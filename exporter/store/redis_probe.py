"""The write probe that decides readiness and resuming, and the memory of every master.

A probe passes only where a batch's writes would (decision 0017): `probe.lua` writes, and undoes,
keys of the patterns `apply.lua` (dimensions and value buckets included), `register.lua` and the
rejected counts write, on the slot of
every shard and of the global tag. What to touch is a plan a unit test can read; running it is
the store's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from exporter.store.connection import Client
from exporter.store.keys import ShardKeys, StoreKeys
from exporter.store.memory_guard import NodeMemory
from exporter.store.totals_marker import MARKER_FIELDS, Marker

# The probe's identity: events are `id:` or `msg:` (exporter.processing.parsing), never this.
PROBE_IDENTITY: Final = b"@probe"
# A bucket of a type no event can have (`@` is never in a type), hour 0.
PROBE_TYPE: Final = "@probe"


@dataclass(frozen=True, slots=True)
class ProbeCall:
    """One probe.lua call: keys of one slot, with what each is."""

    keys: tuple[str | bytes, ...]
    kinds: tuple[str, ...]
    totals: str | None = None
    """The totals hash whose marker the call reads, if any."""


def global_probe(keys: StoreKeys) -> ProbeCall:
    """With K > 1: the global slot's writes (type registry, rejected counts) and the generation."""
    return ProbeCall(
        keys=(keys.rejected, keys.types, keys.generation, *_admission_keys(keys)),
        kinds=("hash", "set", "get", "set", "set"),
    )


def _admission_keys(keys: StoreKeys) -> tuple[str, str]:
    """A value set and the set of admission sets (decision 0020), of a type no event has."""
    return keys.values(PROBE_TYPE, "probe"), keys.admissions


def shard_probe(keys: StoreKeys, shard: ShardKeys, generation: int) -> ProbeCall:
    """One shard's writes; with one shard the global slot's too (it is the same slot)."""
    probe_keys: list[str | bytes] = [
        shard.seen_prefix + PROBE_IDENTITY,
        shard.totals(generation),
        shard.bucket(generation, PROBE_TYPE, 0),
        shard.bucket_index(generation),
        shard.detail(generation, PROBE_TYPE),
        shard.joint(generation, PROBE_TYPE, "probe"),
        shard.detail_index(generation),
    ]
    kinds = ["seen", "marker", "hash", "zset", "hash", "hash", "set"]
    if len(keys.shards) == 1:
        probe_keys += [keys.types, keys.rejected, *_admission_keys(keys)]
        kinds += ["set", "hash", "set", "set"]
    return ProbeCall(tuple(probe_keys), tuple(kinds), totals=shard.totals(generation))


def marker_of(reply: Sequence[bytes | None]) -> Marker | None:
    """The marker a probe read (its first three values)."""
    return Marker.from_fields(dict(zip(MARKER_FIELDS, reply[:3], strict=False)))


async def read_memory(client: Client) -> list[NodeMemory]:
    """`INFO memory` of every master: the one node, or each primary of a cluster."""
    if isinstance(client, RedisCluster):
        nodes = client.get_primaries()
        infos = await asyncio.gather(*(client.info("memory", target_nodes=node) for node in nodes))
        pairs = zip(nodes, infos, strict=True)
        return [NodeMemory.from_info(node.name, _one(info)) for node, info in pairs]
    info = await client.info("memory")
    return [NodeMemory.from_info(_address(client), info)]


def _one(info: object) -> dict[str, object]:
    # redis-py answers a command sent to one node of a cluster either as the node's reply or as
    # {node name: reply}, depending on its version's response policies.
    if isinstance(info, dict) and len(info) == 1:
        (only,) = info.values()
        if isinstance(only, dict):
            return only
    return info if isinstance(info, dict) else {}


def _address(client: aioredis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    with contextlib.suppress(KeyError):
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


__all__ = [
    "PROBE_IDENTITY",
    "PROBE_TYPE",
    "ProbeCall",
    "global_probe",
    "marker_of",
    "read_memory",
    "shard_probe",
]
