-- Adds a batch of events to one shard's per-type totals, each identity at most once, atomically.
-- (scripts.py puts admission.lua, the admission rule it shares with register.lua, before it.)
--
-- KEYS[1]  totals hash: count:<type>, units:<type>, frac:<type>, last:<type>
-- KEYS[2]  set of known types (bounded by ARGV[2]); absent when ARGV[2] is "global": then the
--          cap was checked for the whole batch by register.lua on the global slot, and every
--          type in this call was admitted there
-- KEYS[first..first+n-1] one "seen" key per event, carrying its identity; it expires after the
--          window
-- KEYS[first+n], only when some event has a bucket: this shard's index of bucket keys (sorted
--          set, by expiry), then KEYS[first+n+1..] the event-time bucket hashes the events name
--          (decision 0008); all carry the totals' hash tag and generation
-- ARGV[1] window seconds, ARGV[2] max types or "global", ARGV[3] now (unix ms)
-- ARGV[4] one line per event, in KEYS order: "<whole units, floored> <millionths in [0, 1e6)>
--   <bucket: 1-based among the bucket keys, 0 for none> <minute of the hour> <type>"
--   (one argument for the whole batch: the client frames every argument separately)
-- ARGV[5] the bucket keys' expiry times (unix s), space-separated, in their KEYS order
-- ARGV[6] empty, or what is counted beyond totals (decisions 0020, 0021): "<index> <admissions>
--   <blocks> <block size> <width> <max values> <max combinations>", positions in KEYS of this
--   shard's detail index, of the global set of admission sets (0: none), and of the first of one
--   block of keys per type of the call (its detail hash, its joint hash when width > 0, then with
--   max values > 0 its value sets and its combination set: admission here, with one shard);
--   each event's line then goes on "|<type's block, 1-based>|<bucket bound or empty>|<folds>"
--   and "|<value>" per dimension. With max values 0 the values were admitted by register.lua and
--   <folds> is its answer, echoed; otherwise it is empty and decided here.
-- ARGV[7] the dimension names, comma-separated, in the values' order
--
-- Returns one code per event: 1 applied, 0 duplicate, 2 too many types, 3 sum overflow; with
-- dimensions then one fold text per event (empty unless applied: per dimension '-', 'i' invalid
-- or 'v' past the value cap, then 'c' past the combination cap or '-'); then
-- the totals hash's marker: this call's count of writes, @since and @reset (decision 0017).
-- Redis runs the script without interleaving other commands, and a refused event's seen key is
-- removed again before the script returns, so no caller ever observes a half-applied batch.
-- The script has six parts: arguments, de-duplication (with the type cap), totals, event-time
-- buckets, dimensions and value buckets, and the marker that lets readers and writers notice
-- totals Redis lost.

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
-- Types never contain spaces or line breaks (the event contract), so a type ends its line.
local types, units, fracs, buckets, minutes, rests = {}, {}, {}, {}, {}, {}
local n = 0
-- A type never holds `|`, which begins what an event carries for dimensions and value buckets.
for u, f, b, m, t, r in
    string.gmatch(ARGV[4], '(%-?%d+) (%d+) (%d+) (%d+) ([^|\n]+)([^\n]*)') do
  n = n + 1
  units[n], fracs[n], types[n] = tonumber(u), tonumber(f), t
  buckets[n], minutes[n], rests[n] = tonumber(b), m, r
end
local counting = nil
if ARGV[6] and ARGV[6] ~= '' then
  counting = {}
  for x in string.gmatch(ARGV[6], '%d+') do counting[#counting + 1] = tonumber(x) end
end
-- Keys past the seen keys and before the counting keys are the event-time buckets'.
local last_bucket_key = #KEYS
if counting then last_bucket_key = counting[1] - 1 end
-- The seen keys follow the fixed ones; any keys past them are the buckets'.
local seen_keys = last_bucket_key - first + 1
if n > seen_keys then
  return redis.error_reply('apply: ' .. n .. ' events for ' .. seen_keys .. ' keys')
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

-- 4. Event-time buckets -----------------------------------------------------------------------
-- Decision 0008: only now, with every status final, are the applied events (1) added; a
-- duplicate or a refused event never reaches a bucket. The bucket keys carry this shard's tag
-- and generation, so a shard's buckets hold exactly the events its totals hold. A bucket hash
-- holds one field per minute of its hour, "<count> <sum in millionths>": one HMGET and one HSET
-- per hash and call, however many minutes a backlog spreads over (docs/benchmarks.md). A sum
-- past 4e15 millionths, no longer exact in Lua's doubles, continues in u<m> and f<m> (whole
-- units and millionths, added by Redis in 64-bit integers, as the totals); readers add all.
if last_bucket_key >= first + n then
  local index = KEYS[first + n]
  local expiries = {}
  for e in string.gmatch(ARGV[5], '%d+') do expiries[#expiries + 1] = e end
  local by_key, key_order = {}, {}
  for i = 1, n do
    local b = buckets[i]
    if b > 0 and status[i] == 1 then
      local k = by_key[b]
      if k == nil then
        k = {sums = {}, order = {}}
        by_key[b] = k
        key_order[#key_order + 1] = b
      end
      local m = minutes[i]
      local s = k.sums[m]
      if s == nil then
        s = {0, 0, 0}
        k.sums[m] = s
        k.order[#k.order + 1] = m
      end
      s[1], s[2], s[3] = s[1] + 1, s[2] + units[i], s[3] + fracs[i]
    end
  end
  local SAFE = 4e15
  local indexed = false
  for _, b in ipairs(key_order) do
    local key, k = KEYS[first + n + b], by_key[b]
    local current = redis.call('HMGET', key, unpack(k.order))
    local writes = {}
    local new_minute = false
    for j, m in ipairs(k.order) do
      local s = k.sums[m]
      local count, micros = 0, 0
      if current[j] then
        local c, mi = string.match(current[j], '^(%d+) (%-?%d+)$')
        count, micros = tonumber(c), tonumber(mi)
      else
        new_minute = true
      end
      local add = s[2] * 1000000 + s[3]
      local kept = true
      if math.abs(s[2]) < 4e9 and math.abs(micros + add) < SAFE then
        micros = micros + add
      else
        local carry = math.floor(s[3] / 1000000)
        local whole = string.format('%.0f', s[2] + carry)
        -- Past int64 even in whole units (millions of maximal events of one type in a minute)
        -- the minute is left out whole, rather than the script aborted after the totals.
        kept = type(redis.pcall('HINCRBY', key, 'u' .. m, whole)) == 'number'
        if kept then
          redis.call('HINCRBY', key, 'f' .. m, string.format('%.0f', s[3] - carry * 1000000))
        end
      end
      if kept then
        writes[#writes + 1] = m
        writes[#writes + 1] = string.format('%.0f %.0f', count + s[1], micros)
      end
    end
    if #writes > 0 then redis.call('HSET', key, unpack(writes)) end
    -- A new minute may be the hash's first: only then is its expiry (fixed by the hour) set and
    -- the key indexed for reset.
    if new_minute then
      indexed = true
      redis.call('EXPIREAT', key, expiries[b])
      redis.call('ZADD', index, expiries[b], key)
    end
  end
  -- The index only serves reset; entries of buckets Redis has expired are dropped here, and the
  -- index itself expires with its last bucket: an index that a batch in flight during a sharded
  -- reset writes into the old generation is then never left behind.
  if indexed then
    redis.call('ZREMRANGEBYSCORE', index, '-inf', math.floor(tonumber(now) / 1000))
    local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    if last[2] then redis.call('EXPIREAT', index, last[2]) end
  end
end

-- 5. Dimensions and value buckets ---------------------------------------------------------------
-- Decisions 0020 and 0021: like the event-time buckets, only applied events (1) are counted, so a
-- duplicate or a refused event adds to no value, combination or bucket and folds nothing. Per
-- type, the detail hash holds each dimension's marginals and the type's value buckets, the joint
-- hash this configuration's combinations; sums go through HINCRBY (64-bit in Redis), the whole
-- units under pcall so that a value's or combination's sum past int64 (possible only with values
-- of both signs) leaves that one cell unchanged rather than aborting the call after the totals.
local folds = nil
if counting then
  local index_key, admissions_at = KEYS[counting[1]], counting[2]
  local blocks, block = counting[3], counting[4]
  local width, max_values, max_combos = counting[5], counting[6], counting[7]
  local admit = max_values > 0
  local names = {}
  for name in string.gmatch(ARGV[7] or '', '[^,]+') do names[#names + 1] = name end
  local index = nil
  if admissions_at > 0 then index = KEYS[admissions_at] end
  local admission = new_admission(width, max_values, max_combos, index)
  local all_other = admission.all_other
  local hashes, hash_order = {}, {}  -- key -> {cells = {field -> {count, units, frac}}, ...}
  local function hash(key)
    local h = hashes[key]
    if h == nil then
      h = {cells = {}, cell_order = {}, counts = {}, count_order = {}, since = {}, folded = 0}
      hashes[key] = h
      hash_order[#hash_order + 1] = key
    end
    return h
  end
  local function add(h, cell, i)
    local c = h.cells[cell]
    if c == nil then
      c = {0, 0, 0}
      h.cells[cell] = c
      h.cell_order[#h.cell_order + 1] = cell
    end
    c[1], c[2], c[3] = c[1] + 1, c[2] + units[i], c[3] + fracs[i]
  end
  local function bump(h, field)
    if h.counts[field] == nil then
      h.counts[field] = 0
      h.count_order[#h.count_order + 1] = field
    end
    h.counts[field] = h.counts[field] + 1
  end
  folds = {}
  for i = 1, n do
    folds[i] = ''
    if status[i] == 1 then
      local tno, le, given, rest = string.match(rests[i], '^|(%d+)|([^|]*)|([^|]*)(.*)$')
      local at = blocks + (tonumber(tno) - 1) * block
      local detail = hash(KEYS[at])
      if le ~= '' then bump(detail, 'h|' .. le) end
      if width > 0 then
        local values = {}
        for v in string.gmatch(rest, '|([^|]*)') do values[#values + 1] = v end
        if admit then
          folds[i] = admit_event(admission, values, at + 2)
        else
          folds[i] = given
        end
        local combo_folded = string.sub(folds[i], -1) == 'c'
        for d = 1, width do
          add(detail, names[d] .. '|' .. values[d], i)
          detail.since['s|' .. names[d]] = true
        end
        local joint = hash(KEYS[at + 1])
        local combo = combo_folded and all_other or table.concat(values, '|')
        add(joint, combo, i)
        if le ~= '' then bump(joint, 'h|' .. le .. '|' .. combo) end
        if combo_folded then joint.folded = joint.folded + 1 end
        joint.since['since'] = true
      end
    end
  end
  for _, key in ipairs(hash_order) do
    local h = hashes[key]
    for _, cell in ipairs(h.cell_order) do
      local c = h.cells[cell]
      local carry = math.floor(c[3] / 1000000)
      local whole = string.format('%.0f', c[2] + carry)
      if type(redis.pcall('HINCRBY', key, 'u|' .. cell, whole)) == 'number' then
        redis.call('HINCRBY', key, 'c|' .. cell, c[1])
        redis.call('HINCRBY', key, 'f|' .. cell, string.format('%.0f', c[3] - carry * 1000000))
      end
    end
    for _, field in ipairs(h.count_order) do redis.call('HINCRBY', key, field, h.counts[field]) end
    if h.folded > 0 then redis.call('HINCRBY', key, 'folded', h.folded) end
    for field in pairs(h.since) do redis.call('HSETNX', key, field, now) end
    redis.call('SADD', index_key, key)
  end
end

-- 6. The marker ---------------------------------------------------------------------------------
-- Decision 0017: every call counts itself in the totals hash, which records when it began; a
-- count that goes back, or a beginning that moves without a reset, means Redis lost the hash.
local writes = redis.call('HINCRBY', totals, '@writes', 1)
local marker = redis.call('HMGET', totals, '@since', '@reset')
if not marker[1] then
  marker[1] = now
  redis.call('HSET', totals, '@since', now)
end
local reply = status
if folds and counting[5] > 0 then
  for i = 1, n do reply[n + i] = folds[i] end
end
local m = #reply
reply[m + 1], reply[m + 2], reply[m + 3] = writes, marker[1], marker[2]
return reply
