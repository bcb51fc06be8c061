-- Shared by every script (prepended by broker/scripts.py): tenant policies and scheduler
-- parameters. The two JSON documents are filled in from broker/tenants.py and
-- broker/scheduler.py, so Python and Lua share one definition of the defaults.
local DEFAULT_POLICY = cjson.decode([==[__DEFAULT_POLICY__]==])
local CFG = cjson.decode([==[__SCHEDULER__]==])
local LANES = {'rt', 'interactive', 'batch'}

-- Milliseconds since the epoch by the Redis server's clock: every lease, deadline and
-- quantum decision uses it, so a worker or producer with a wrong clock changes nothing.
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- ``arg`` when it is a positive number (tests pin the clock this way), else the server's time.
local function now_or(arg)
  local n = tonumber(arg)
  if n and n > 0 then return n end
  return server_ms()
end

local function num(v, default)
  local n = tonumber(v)
  if n == nil then return default end
  return n
end

-- The tenant's policy, and whether it was configured (false: the default applies).
local function policy_of(tenants_key, tenant)
  local raw = redis.call('HGET', tenants_key, tenant)
  if raw then return cjson.decode(raw), true end
  local d = redis.call('HGET', tenants_key, '*')
  if d then return cjson.decode(d), false end
  return DEFAULT_POLICY, false
end

local function allows(policy, lane)
  for _, l in ipairs(policy.lanes) do
    if l == lane then return true end
  end
  return false
end

-- Current cost rate (us per character) and quantum (us per unit of weight).
local function scheduler_state(drr)
  local v = redis.call('HMGET', drr, '~rate', '~q')
  return num(v[1], CFG.rate), num(v[2], CFG.quantum)
end

-- Give a tenant that just got work its place. A tenant with nothing in flight was
-- idle: it gets a fresh quantum (debts are kept) and, when in credit, joins the fresh
-- list, which is served before the ring (FIFO, as fq_codel's new flows), so a sparse
-- tenant's first audio does not wait for a round. A tenant with work in flight
-- rejoins the ring's tail with at most one quantum, so re-activating fast earns
-- nothing. A tenant at its in-flight cap is parked.
local function activate(drr, fresh, active, tenants, tenant)
  redis.call('HSET', drr, tenant .. ':t', server_ms())
  local policy = policy_of(tenants, tenant)
  local inflight = num(redis.call('HGET', drr, tenant .. ':f'), 0)
  if policy.max_inflight > 0 and inflight >= policy.max_inflight then
    redis.call('HSET', drr, tenant .. ':p', 1)
    return
  end
  local _, quantum = scheduler_state(drr)
  local credit = quantum * policy.weight
  local d = num(redis.call('HGET', drr, tenant .. ':d'), 0)
  if inflight == 0 then
    d = math.min(d, 0) + credit
  else
    d = math.min(d, credit)
  end
  redis.call('HSET', drr, tenant .. ':d', d)
  if inflight == 0 and d > 0 then
    redis.call('RPUSH', fresh, tenant)
  else
    redis.call('RPUSH', active, tenant)
  end
end

-- Put a parked tenant back on the ring (tail) once it is below its in-flight cap, and
-- wake a worker for it; a parked tenant whose queue emptied leaves the active set.
local function unpark(drr, tenants, depth, active, active_set, wake, tenant)
  if redis.call('HEXISTS', drr, tenant .. ':p') == 0 then return end
  local policy = policy_of(tenants, tenant)
  local inflight = num(redis.call('HGET', drr, tenant .. ':f'), 0)
  if policy.max_inflight > 0 and inflight >= policy.max_inflight then return end
  redis.call('HDEL', drr, tenant .. ':p')
  if num(redis.call('HGET', depth, tenant), 0) > 0 then
    redis.call('RPUSH', active, tenant)
    redis.call('RPUSH', wake, '1')
    redis.call('LTRIM', wake, -64, -1)
  else
    redis.call('SREM', active_set, tenant)
  end
end

-- Entries of a lane stream not yet delivered to the consumer group (at most cap): the
-- truth the depth counter is repaired from when it says a tenant has nothing left (a
-- foreign producer may XADD without the enqueue script). A stream without the group
-- gets it, from the start. Needs Redis >= 6.2 (exclusive XRANGE).
local function undelivered(key, group, cap)
  if redis.call('EXISTS', key) == 0 then return 0 end
  local last = nil
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) ~= 'table' or groups.err then return 0 end
  for _, g in ipairs(groups) do
    local name, lid = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then lid = g[i + 1] end
    end
    if name == group then last = lid end
  end
  if not last then
    redis.pcall('XGROUP', 'CREATE', key, group, '0')
    last = '0-0'
  end
  local rest = redis.pcall('XRANGE', key, '(' .. last, '+', 'COUNT', cap)
  if type(rest) ~= 'table' or rest.err then return 0 end
  return #rest
end
