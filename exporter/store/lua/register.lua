-- Admits a sharded batch's types under the global cap and names the generation to write into.
--
-- KEYS[1] set of known types, KEYS[2] reset generation (both on the global slot)
-- ARGV[1] max types, ARGV[2..] the batch's distinct types
--
-- Returns {generation, then 1 (admitted) or 0 (over the cap) per type, in ARGV order}. Runs
-- before the shard calls of a batch; being one script on one slot, two processors can never
-- both take the last free place of the cap. A type admitted here stays known until a reset,
-- even when every event of it then turns out a duplicate.
local generation = tonumber(redis.call('GET', KEYS[2]) or '0')
local max_types = tonumber(ARGV[1])
local known = redis.call('SCARD', KEYS[1])
local reply = {generation}
for i = 2, #ARGV do
  local t = ARGV[i]
  if redis.call('SISMEMBER', KEYS[1], t) == 1 then
    reply[i] = 1
  elseif known < max_types then
    redis.call('SADD', KEYS[1], t)
    known = known + 1
    reply[i] = 1
  else
    reply[i] = 0
  end
end
return reply
