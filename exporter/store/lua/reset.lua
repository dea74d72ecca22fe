-- One reset point for sharded totals: forget the known types and rejected counts, and start a
-- new generation.
--
-- KEYS[1] set of known types, KEYS[2] reset generation, KEYS[3] rejected counts hash (all on the
-- global slot)
--
-- Returns the new generation. Readers read the generation first and then the partial totals and
-- event-time buckets of that generation on every shard, so they see either all of the old ones
-- or none of them; the old generation's keys are only memory from here on (clear.lua).
redis.call('DEL', KEYS[1], KEYS[3])
return redis.call('INCR', KEYS[2])
