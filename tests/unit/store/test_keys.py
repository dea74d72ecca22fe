"""Key names: unchanged with one shard, spread over the slot space with several, stable."""

from __future__ import annotations

import zlib

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from exporter.store.keys import StoreKeys, shard_of


def test_one_shard_keeps_the_names_of_earlier_versions() -> None:
    """With one shard every key is under `{prefix}` with the names data was written with."""
    keys = StoreKeys.build("shop", 1)
    (shard,) = keys.shards
    assert shard.totals(0) == "{shop}:totals" == keys.legacy_totals
    assert keys.types == "{shop}:types"
    assert shard.seen_prefix == b"{shop}:seen:"


def test_shard_tags_fall_in_evenly_spaced_slot_ranges() -> None:
    """K shard tags land in K different slot ranges of equal size, none on the global tag."""
    for count in (2, 3, 16):
        keys = StoreKeys.build("exporter", count)
        for index, shard in enumerate(keys.shards):
            slot = key_slot(shard.totals(7).encode())
            assert index * REDIS_CLUSTER_HASH_SLOTS // count <= slot
            assert slot < (index + 1) * REDIS_CLUSTER_HASH_SLOTS // count
            assert key_slot(shard.seen_prefix + b"msg:1") == slot
        assert keys.tag not in {shard.tag for shard in keys.shards}


def test_an_identity_always_lands_on_the_same_shard() -> None:
    """The shard is CRC-32 of the identity modulo K: the same in every process and version."""
    assert shard_of("id:order-1", 1) == 0
    assert shard_of("id:order-2", 16) == zlib.crc32(b"id:order-2") % 16 == 10
