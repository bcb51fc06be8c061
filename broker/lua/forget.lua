-- Forget an idle tenant: once it has had nothing queued or in flight for the idle window,
-- its empty lane streams, scheduler fields and counters go, and its served totals roll up
-- into the shard's capped history stream. Its policy stays. An enqueue recreates
-- everything as for a new tenant (debts are forgiven after the window).
-- KEYS: 1 active set, 2 drr hash, 3 depth hash, 4 served hash, 5 history stream,
--       6..8 lane streams rt, interactive, batch
-- ARGV: 1 tenant, 2 idle window ms, 3 consumer group, 4 history cap (entries)
-- Returns 1 when the tenant was forgotten, 0 when it is not idle long enough (or has work).
local tenant, drr = ARGV[1], KEYS[2]
if redis.call('SISMEMBER', KEYS[1], tenant) == 1 then return 0 end
if num(redis.call('HGET', drr, tenant .. ':f'), 0) > 0 then return 0 end
local now = server_ms()
local last = num(redis.call('HGET', drr, tenant .. ':t'), 0)
if last == 0 then
  -- activity from before this field existed: start the window now
  redis.call('HSET', drr, tenant .. ':t', now)
  return 0
end
if now - last < tonumber(ARGV[2]) then return 0 end
for i = 1, #LANES do
  local key = KEYS[5 + i]
  if redis.call('EXISTS', key) == 1 then
    local n = redis.pcall('XLEN', key)
    if type(n) ~= 'number' or n > 0 then return 0 end
    local groups = redis.pcall('XINFO', 'GROUPS', key)
    if type(groups) == 'table' and not groups.err then
      for _, g in ipairs(groups) do
        for j = 1, #g, 2 do
          if g[j] == 'pending' and tonumber(g[j + 1]) > 0 then return 0 end
        end
      end
    end
  end
end
local history = {'tenant', tenant, 'last', last}
local fields = {}
for _, lane in ipairs(LANES) do
  local v = redis.call('HMGET', KEYS[4], tenant .. ':' .. lane .. ':n', tenant .. ':' .. lane .. ':us')
  if v[1] then
    history[#history + 1] = lane .. ':n'
    history[#history + 1] = v[1]
    history[#history + 1] = lane .. ':us'
    history[#history + 1] = v[2] or '0'
  end
  fields[#fields + 1] = tenant .. ':' .. lane .. ':n'
  fields[#fields + 1] = tenant .. ':' .. lane .. ':us'
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', tonumber(ARGV[4]), '*', unpack(history))
redis.call('HDEL', KEYS[4], unpack(fields))
redis.call('HDEL', drr, tenant .. ':d', tenant .. ':f', tenant .. ':p', tenant .. ':b', tenant .. ':t')
redis.call('HDEL', KEYS[3], unpack(depth_fields(tenant)))
redis.call('DEL', unpack(KEYS, 6, 5 + #LANES))
return 1
