-- Adds a batch of events to one shard's per-type totals, each identity at most once, atomically.
--
-- KEYS[1]  totals hash: count:<type>, units:<type>, frac:<type>, last:<type>
-- KEYS[2]  set of known types (bounded by ARGV[2]); absent when ARGV[2] is "global": then the
--          cap was checked for the whole batch by register.lua on the global slot, and every
--          type in this call was admitted there
-- KEYS[first..] one "seen" key per event, carrying its identity; it expires after the window
-- ARGV[1] window seconds, ARGV[2] max types or "global", ARGV[3] now (unix ms)
-- ARGV[4] one line per event, in KEYS order: "<whole units, floored> <millionths in [0, 1e6)>
--   <type>" (one argument for the whole batch: the client frames every argument separately)
--
-- Returns one code per event: 1 applied, 0 duplicate, 2 too many types, 3 sum overflow.
-- Redis runs the script without interleaving other commands, and a refused event's seen key is
-- removed again before the script returns, so no caller ever observes a half-applied batch.
-- The script has three parts: arguments, de-duplication (with the type cap), totals.

-- 1. Arguments ---------------------------------------------------------------------------------
local totals = KEYS[1]
local window = ARGV[1]
local capped = ARGV[2] ~= 'global'
local types_key, first = nil, 2
local max_types = nil
if capped then
  types_key, first, max_types = KEYS[2], 3, tonumber(ARGV[2])
end
local now = ARGV[3]
local LIMIT = 9e18
local n = #KEYS - first + 1

-- Types never contain spaces or line breaks (the event contract), so a type ends its line.
local types, units, fracs = {}, {}, {}
local parsed = 0
for u, f, t in string.gmatch(ARGV[4], '(%-?%d+) (%d+) ([^\n]+)') do
  parsed = parsed + 1
  units[parsed], fracs[parsed], types[parsed] = tonumber(u), tonumber(f), t
end
if parsed ~= n then
  return redis.error_reply('apply: ' .. parsed .. ' events for ' .. n .. ' identities')
end

-- 2. De-duplication and the type cap -------------------------------------------------------------
local status = {}
local state = {}   -- type -> {count, units, frac, known, members} for this batch
local order = {}
local ntypes = nil

for i = 1, n do
  -- SET NX both asks "seen before?" and remembers the identity: one call per event.
  if not redis.call('SET', KEYS[i + first - 1], '1', 'NX', 'EX', window) then
    status[i] = 0
  else
    local t = types[i]
    local s = state[t]
    if s == nil then
      local current = redis.call('HMGET', totals, 'count:' .. t, 'units:' .. t, 'frac:' .. t)
      s = {count = 0, units = 0, frac = 0, members = {},
           base_count = tonumber(current[1] or '0'),
           base_units = tonumber(current[2] or '0'),
           base_frac = tonumber(current[3] or '0'),
           known = current[1] ~= false}
      if not s.known and capped then
        if ntypes == nil then ntypes = redis.call('SCARD', types_key) end
        if ntypes < max_types then
          ntypes = ntypes + 1
        else
          s.full = true
        end
      end
      state[t] = s
      order[#order + 1] = t
    end
    if s.full then
      status[i] = 2
    else
      status[i] = 1
      s.count = s.count + 1
      -- Both parts stay far below 2^53 for a bounded batch, so Lua's doubles add them exactly.
      s.units = s.units + units[i]
      s.frac = s.frac + fracs[i]
      s.members[#s.members + 1] = i
    end
  end
end

-- 3. Totals -----------------------------------------------------------------------------------
for _, t in ipairs(order) do
  local s = state[t]
  if s.full then
    for i = 1, n do
      if status[i] == 2 and types[i] == t then redis.call('DEL', KEYS[i + first - 1]) end
    end
  elseif s.count > 0 then
    local f = s.frac + s.base_frac
    local carry = math.floor(f / 1000000)
    local units = s.units + carry
    if math.abs(s.base_units + units) > LIMIT then
      for _, i in ipairs(s.members) do
        status[i] = 3
        redis.call('DEL', KEYS[i + first - 1])
      end
    else
      if not s.known and capped then redis.call('SADD', types_key, t) end
      -- Units go through HINCRBY (exact 64-bit arithmetic in Redis); the count and the
      -- normalised millionths stay far below 2^53, so writing them back from Lua is exact.
      redis.call('HINCRBY', totals, 'units:' .. t, string.format('%.0f', units))
      redis.call('HSET', totals,
        'count:' .. t, string.format('%.0f', s.base_count + s.count),
        'frac:' .. t, string.format('%.0f', f - carry * 1000000),
        'last:' .. t, now)
    end
  end
end
return status
