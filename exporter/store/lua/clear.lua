-- Deletes one slot's keys of a generation: its event-time buckets, listed by their index, the
-- keys listed by further index sets (detail and joint hashes, admission sets), and the keys named.
--
-- KEYS[1] index of bucket keys (sorted set; its members share the other keys' hash tag, so the
-- script stays on one slot of a cluster), KEYS[2..1+m] index sets (m = ARGV[2]), KEYS[2+m..]
-- further keys of the same slot
-- ARGV[1], only for a reset with one shard (empty otherwise): now (unix ms); KEYS[2+m] is then
-- the totals hash, whose marker (decision 0017) begins again at this moment, as a reset, and
-- keeps its count of writes, so that no process takes the reset for totals Redis lost.
--
-- With one shard this is the reset itself (totals, types, rejected counts, buckets, detail and
-- admissions all share the global tag), atomic with respect to every apply as the MULTI/DEL was
-- before. With K shards it removes an old generation's leftovers of one shard after reset.lua
-- has moved readers on. Indexed keys cannot be declared up front (decision 0008).
-- Returns the number of indexed keys removed.
local now = ARGV[1]
if now == '' then now = nil end
local m = tonumber(ARGV[2] or '0')
local writes = nil
if now then writes = redis.call('HGET', KEYS[2 + m], '@writes') end
local removed = 0
local function unlink(members)
  for start = 1, #members, 1000 do
    redis.call('UNLINK', unpack(members, start, math.min(start + 999, #members)))
  end
  removed = removed + #members
end
unlink(redis.call('ZRANGE', KEYS[1], 0, -1))
for i = 2, 1 + m do unlink(redis.call('SMEMBERS', KEYS[i])) end
redis.call('DEL', unpack(KEYS))
if now then
  redis.call('HSET', KEYS[2 + m], '@since', now, '@reset', now, '@writes', writes or '0')
end
return removed
