-- Reclaim segments whose lease expired (their worker died or stalled): take them over
-- with XCLAIM, which counts the delivery. A segment delivered max_attempts times is not
-- handed out again: it comes back flagged 'dead' for the caller to dead-letter.
-- The tenant was charged when the segment was first claimed and it still counts as in
-- flight, so nothing here touches the scheduler: completion settles it as usual.
-- KEYS: 1 leases zset
-- ARGV: 1 lane stream prefix, 2 group, 3 consumer, 4 now ms (0: the server's clock), 5 lease ms,
--       6 max attempts,
--       7 max count
-- Returns a flat list per entry: stream key, entry id, field list, tenant, lane, attempt, fate
-- (fate: 'retry' or 'dead').
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local now, lease, max_attempts = now_or(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))
local out = {}
for _, member in ipairs(due) do
  local tenant, lane, id = string.match(member, '^(.+)|([a-z]+)|([0-9]+%-[0-9]+)$')
  if not tenant then
    redis.call('ZREM', KEYS[1], member)
  else
    local key = prefix .. tenant .. ':' .. lane
    local res = held_here(redis.pcall('XCLAIM', key, group, consumer, 0, id))
    if type(res) ~= 'table' or res.err or not res[1] or not res[1][2] then
      -- acknowledged meanwhile, or the entry is gone: nothing to reclaim
      redis.call('ZREM', KEYS[1], member)
      if type(res) == 'table' and res[1] and not res[1][2] then
        redis.call('XACK', key, group, id)
      end
    else
      local p = redis.call('XPENDING', key, group, id, id, 1)
      local attempt = p[1] and p[1][4] or 1
      redis.call('ZADD', KEYS[1], now + lease, member)
      local n = #out
      out[n + 1] = key
      out[n + 2] = id
      out[n + 3] = res[1][2]
      out[n + 4] = tenant
      out[n + 5] = lane
      out[n + 6] = attempt
      out[n + 7] = attempt > max_attempts and 'dead' or 'retry'
    end
  end
end
return out
