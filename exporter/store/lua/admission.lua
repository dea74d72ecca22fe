-- Admission of dimension values and combinations (decision 0020), the one rule of both paths:
-- apply.lua admits with one shard, register.lua on the global slot with K shards. scripts.py
-- puts this file before each of them, so the two cannot decide differently.
--
-- new_admission(width, max_values, max_combos, index) makes the state of one call: `index`, the
-- key of the set of every admission set (for the reset), or nil. admit_event(a, values, first)
-- folds one event's values in place, its value sets at KEYS[first..first+width-1] and its
-- combination set at KEYS[first+width], and returns its marks: per dimension '-' (its own
-- value), 'i' (broke the rule) or 'v' (past the value cap), then 'c' (past the combination cap)
-- or '-'. The all-`__other__` combination and `__absent__` take no place.
local ADMISSION_OTHER, ADMISSION_ABSENT = '__other__', '__absent__'

local function new_admission(width, max_values, max_combos, index)
  local all_other = {}
  for d = 1, width do all_other[d] = ADMISSION_OTHER end
  return {width = width, max_values = max_values, max_combos = max_combos, index = index,
          all_other = table.concat(all_other, '|'),
          sets = {}}  -- admission set key -> {n = its size, known = {member -> true or false}}
end

local function admitted(a, key, member, cap)
  local s = a.sets[key]
  if s == nil then
    s = {n = redis.call('SCARD', key), known = {}}
    a.sets[key] = s
  end
  local known = s.known[member]
  if known == nil then
    known = redis.call('SISMEMBER', key, member) == 1
    if not known and s.n < cap then
      redis.call('SADD', key, member)
      if s.n == 0 and a.index then redis.call('SADD', a.index, key) end
      s.n = s.n + 1
      known = true
    end
    s.known[member] = known
  end
  return known
end

local function admit_event(a, values, first)
  local width, marks = a.width, {}
  for d = 1, width do
    local v = values[d]
    marks[d] = '-'
    if v == ADMISSION_OTHER then
      marks[d] = 'i'
    elseif v ~= ADMISSION_ABSENT and not admitted(a, KEYS[first + d - 1], v, a.max_values) then
      marks[d] = 'v'
      values[d] = ADMISSION_OTHER
    end
  end
  local combo = table.concat(values, '|')
  marks[width + 1] = '-'
  if combo ~= a.all_other and not admitted(a, KEYS[first + width], combo, a.max_combos) then
    marks[width + 1] = 'c'
  end
  return table.concat(marks)
end

