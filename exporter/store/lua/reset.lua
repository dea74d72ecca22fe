-- Forgets all totals, rejected counts and event-time buckets at one reset point.
--
-- KEYS[1] totals hash, KEYS[2] set of known types, KEYS[3] rejected counts hash,
-- KEYS[4] index of bucket keys (sorted set; its members share the other keys' hash tag)
-- The bucket keys are read from the index, so they cannot be declared up front (decision 0008);
-- one script makes the reset atomic with respect to every apply, as the MULTI/DEL was before.
local index = KEYS[4]
local members = redis.call('ZRANGE', index, 0, -1)
for start = 1, #members, 1000 do
  redis.call('UNLINK', unpack(members, start, math.min(start + 999, #members)))
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], index)
return #members
