-- Adds a batch of events to the per-type totals, each identity at most once, atomically.
--
-- KEYS[1]  totals hash: count:<type>, units:<type>, frac:<type>, last:<type>
-- KEYS[2]  set of known types (bounded by ARGV[2])
-- KEYS[3..] one "seen" key per event, carrying its identity; it expires after the window
-- ARGV[1] window seconds, ARGV[2] max types, ARGV[3] now (unix ms)
-- ARGV[3i+1..3i+3] for event i: type, whole units (floored), millionths in [0, 1e6)
--
-- Returns one code per event: 1 applied, 0 duplicate, 2 too many types, 3 sum overflow.
-- Nothing is written until every check has passed, so a refused event changes nothing.
local totals, types_key = KEYS[1], KEYS[2]
local window = tonumber(ARGV[1])
local max_types = tonumber(ARGV[2])
local now = ARGV[3]
local LIMIT = 9e18
local n = #KEYS - 2

local status, in_batch, verdict = {}, {}, {}
local count, units, frac, members, order = {}, {}, {}, {}, {}
local ntypes = nil

for i = 1, n do
  local key = KEYS[i + 2]
  local t = ARGV[i * 3 + 1]
  if in_batch[key] or redis.call('EXISTS', key) == 1 then
    status[i] = 0
  else
    local v = verdict[t]
    if v == nil then
      if redis.call('SISMEMBER', types_key, t) == 1 then
        v = 'known'
      else
        if ntypes == nil then ntypes = redis.call('SCARD', types_key) end
        if ntypes < max_types then
          v = 'new'
          ntypes = ntypes + 1
        else
          v = 'full'
        end
      end
      verdict[t] = v
    end
    if v == 'full' then
      status[i] = 2
    else
      status[i] = 1
      in_batch[key] = true
      if count[t] == nil then
        count[t], units[t], frac[t], members[t] = 0, 0, 0, {}
        order[#order + 1] = t
      end
      count[t] = count[t] + 1
      -- Both parts stay far below 2^53 for a bounded batch, so Lua's doubles add them exactly.
      units[t] = units[t] + tonumber(ARGV[i * 3 + 2])
      frac[t] = frac[t] + tonumber(ARGV[i * 3 + 3])
      members[t][#members[t] + 1] = i
    end
  end
end

for _, t in ipairs(order) do
  local f = frac[t] + tonumber(redis.call('HGET', totals, 'frac:' .. t) or '0')
  local carry = math.floor(f / 1000000)
  units[t] = units[t] + carry
  frac[t] = f - carry * 1000000
  local current = tonumber(redis.call('HGET', totals, 'units:' .. t) or '0')
  if math.abs(current + units[t]) > LIMIT then
    for _, i in ipairs(members[t]) do status[i] = 3 end
    count[t] = nil
  end
end

for _, t in ipairs(order) do
  if count[t] ~= nil then
    if verdict[t] == 'new' then redis.call('SADD', types_key, t) end
    redis.call('HINCRBY', totals, 'count:' .. t, count[t])
    redis.call('HINCRBY', totals, 'units:' .. t, string.format('%.0f', units[t]))
    redis.call('HSET', totals, 'frac:' .. t, string.format('%.0f', frac[t]), 'last:' .. t, now)
  end
end

for i = 1, n do
  if status[i] == 1 then redis.call('SET', KEYS[i + 2], '1', 'EX', window) end
end
return status
