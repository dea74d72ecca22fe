-- Reads hashes of one slot at one moment: a shard's totals with its detail and joint hashes, so
-- that a type's total and its breakdowns are read from the same applied batches.
--
-- KEYS the hashes to read (one slot). Returns one flat HGETALL reply per key, in KEYS order.
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
