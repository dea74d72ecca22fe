-- Admits a sharded batch's types under the global cap, and with dimensions its values and
-- combinations under theirs, and names the generation to write into. (scripts.py puts
-- admission.lua, the admission rule it shares with apply.lua, before it.)
--
-- KEYS[1] set of known types, KEYS[2] reset generation, with dimensions KEYS[3] the set of every
-- admission set, then per type of ARGV: its value sets (one per dimension, in order) and its
-- combination set (all on the global slot)
-- ARGV[1] max types, ARGV[2] the batch's distinct types as lines; with dimensions ARGV[3]
-- "<width> <max values> <max combinations>" and ARGV[4] one line per event,
-- "<its type's line number>|<value>|..." (one value per dimension)
--
-- Returns {generation, then 1 (admitted) or 0 (over the cap) per type, in ARGV order}, then with
-- dimensions per event what it becomes (decision 0020): per dimension '-' (its own value), 'i'
-- (broke the rule) or 'v' (past the value cap), then 'c' (past the combination cap) or '-';
-- empty for an event whose type is over the cap. Runs before the shard calls of a batch; being
-- one script on one slot, two processors can never both take the last free place of a cap. A
-- type, value or combination admitted here stays admitted until a reset, even when every event
-- of it then turns out a duplicate (or the shard calls fail): it then has a zero count.
local generation = tonumber(redis.call('GET', KEYS[2]) or '0')
local max_types = tonumber(ARGV[1])
local known = redis.call('SCARD', KEYS[1])
local reply = {generation}
local types = {}
for t in string.gmatch(ARGV[2], '[^\n]+') do types[#types + 1] = t end
local ok = {}
for i, t in ipairs(types) do
  if redis.call('SISMEMBER', KEYS[1], t) == 1 then
    reply[i + 1] = 1
  elseif known < max_types then
    redis.call('SADD', KEYS[1], t)
    known = known + 1
    reply[i + 1] = 1
  else
    reply[i + 1] = 0
  end
  ok[i] = reply[i + 1] == 1
end
if not ARGV[3] then return reply end

local spec = {}
for x in string.gmatch(ARGV[3], '%d+') do spec[#spec + 1] = tonumber(x) end
local width, max_values, max_combos = spec[1], spec[2], spec[3]
local admission = new_admission(width, max_values, max_combos, KEYS[3])
local at_reply = #types + 1
for line in string.gmatch(ARGV[4], '[^\n]+') do
  at_reply = at_reply + 1
  local tno, rest = string.match(line, '^(%d+)(.*)$')
  tno = tonumber(tno)
  if not ok[tno] then
    reply[at_reply] = ''
  else
    local at = 3 + (tno - 1) * (width + 1)
    local values = {}
    for v in string.gmatch(rest, '|([^|]*)') do values[#values + 1] = v end
    reply[at_reply] = admit_event(admission, values, at + 1)
  end
end
return reply
