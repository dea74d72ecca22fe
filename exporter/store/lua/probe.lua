-- Proves that a batch's writes would go through, and changes nothing: the same kinds of write,
-- on keys of the same patterns, as apply.lua (and, on the global slot, register.lua and the
-- rejected counts) make, each undone before the script returns (decision 0017). Redis checks
-- memory at a script's first write, a replica refuses any write, and ACL key patterns are
-- checked key by key, so OOM, READONLY and NOPERM show here exactly as on a batch.
--
-- KEYS[i] a key of this slot that batches write; ARGV[1] now (unix ms), ARGV[i + 1] its kind:
--   'seen'   a remembered identity (SET ... PX, then DEL), the first write, as in apply.lua
--   'marker' the shard's totals hash: its marker is read (HMGET), then a field set and removed
--   'hash', 'set', 'zset'  a field or member added and removed
--   'get'    read only (the reset generation)
--
-- Returns, in KEYS order: for a 'marker' key its @since, @writes and @reset (nil where absent);
-- for a 'get' key its value.
local now = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[i + 1]
  if kind == 'seen' then
    redis.call('SET', key, now, 'PX', 60000)
    redis.call('DEL', key)
  elseif kind == 'get' then
    out[#out + 1] = redis.call('GET', key)
  elseif kind == 'set' then
    if redis.call('SADD', key, '@probe') == 1 then redis.call('SREM', key, '@probe') end
  elseif kind == 'zset' then
    if redis.call('ZADD', key, 'NX', now, '@probe') == 1 then redis.call('ZREM', key, '@probe') end
  else
    if kind == 'marker' then
      local marker = redis.call('HMGET', key, '@since', '@writes', '@reset')
      out[#out + 1], out[#out + 2], out[#out + 3] = marker[1], marker[2], marker[3]
    end
    if redis.call('HSETNX', key, '@probe', now) == 1 then redis.call('HDEL', key, '@probe') end
  end
end
return out
