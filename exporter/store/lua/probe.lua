-- Proves the write path for readiness: a script that writes, on the global slot.
--
-- KEYS[1] the probe key; ARGV[1] now (unix ms). It expires by itself.
return redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000)
