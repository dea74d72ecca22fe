-- Deletes one slot's keys of a generation: its event-time buckets, listed by their index, and the
-- keys named.
--
-- KEYS[1] index of bucket keys (sorted set; its members share the other keys' hash tag, so the
-- script stays on one slot of a cluster), KEYS[2..] further keys of the same slot
-- ARGV[1], only for a reset with one shard: now (unix ms); KEYS[2] is then the totals hash, whose
-- marker (decision 0017) begins again at this moment, as a reset, and keeps its count of writes,
-- so that no process takes the reset for totals Redis lost.
--
-- With one shard this is the reset itself (totals, types, rejected counts and buckets all share
-- the global tag), atomic with respect to every apply as the MULTI/DEL was before. With K shards
-- it removes an old generation's leftovers of one shard after reset.lua has moved readers on.
-- The bucket keys are read from the index, so they cannot be declared up front (decision 0008).
-- Returns the number of bucket keys removed.
local index = KEYS[1]
local writes = nil
if ARGV[1] then writes = redis.call('HGET', KEYS[2], '@writes') end
local members = redis.call('ZRANGE', index, 0, -1)
for start = 1, #members, 1000 do
  redis.call('UNLINK', unpack(members, start, math.min(start + 999, #members)))
end
redis.call('DEL', unpack(KEYS))
if ARGV[1] then
  redis.call('HSET', KEYS[2], '@since', ARGV[1], '@reset', ARGV[1], '@writes', writes or '0')
end
return #members
