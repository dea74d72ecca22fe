-- Records the shard count on first use and returns the one the data was written with.
--
-- KEYS[1] the recorded shard count, KEYS[2] the totals hash of data from before shards existed
-- ARGV[1] the shard count this process was started with
--
-- Totals without a recorded count were written by one shard, so they count as "1".
local recorded = redis.call('GET', KEYS[1])
if recorded then return recorded end
if redis.call('EXISTS', KEYS[2]) == 1 then recorded = '1' else recorded = ARGV[1] end
if recorded == ARGV[1] then redis.call('SET', KEYS[1], recorded) end
return recorded
