-- One reset point for sharded totals: forget the known types and start a new generation.
--
-- KEYS[1] set of known types, KEYS[2] reset generation (both on the global slot)
--
-- Returns the new generation. Readers read the generation first and then the partial totals of
-- that generation on every shard, so they see either all of the old totals or none of them.
redis.call('DEL', KEYS[1])
return redis.call('INCR', KEYS[2])
