-- One reset point for sharded totals: forget the known types, the rejected counts and the
-- admitted values and combinations, and start a new generation.
--
-- KEYS[1] set of known types, KEYS[2] reset generation, KEYS[3] rejected counts hash, KEYS[4]
-- the set of every admission set's name (all on the global slot, as the sets it names)
--
-- Returns the new generation. Readers read the generation first and then the partial totals,
-- event-time buckets and detail of that generation on every shard, so they see either all of the
-- old ones or none of them; the old generation's keys are only memory from here on (clear.lua).
if KEYS[4] then
  local sets = redis.call('SMEMBERS', KEYS[4])
  for start = 1, #sets, 1000 do
    redis.call('UNLINK', unpack(sets, start, math.min(start + 999, #sets)))
  end
  redis.call('DEL', KEYS[4])
end
redis.call('DEL', KEYS[1], KEYS[3])
return redis.call('INCR', KEYS[2])
