-- Shared by every script (prepended by broker/scripts.py): the values Python and Lua
-- share, tenant policies and scheduler parameters. The three JSON documents are filled
-- in from shared/constants.py (lua_constants), broker/policy.py (BUILTIN_DEFAULT) and
-- broker/scheduler.py (SCHEDULER), so Python and Lua share one definition of each value.
local K = cjson.decode([==[__CONSTANTS__]==])
local DEFAULT_POLICY = cjson.decode([==[__DEFAULT_POLICY__]==])
local CFG = cjson.decode([==[__SCHEDULER__]==])

-- Lane names in claim order; a lane's number (enqueue.lua's argument, the order of the lane
-- stream KEYS) is its position here.
local LANES = K.lanes
local RT, INTERACTIVE, BATCH = LANES[1], LANES[2], LANES[3]
-- Entries kept in the wake list idle workers block on.
local WAKE_CAP = K.wake_cap
-- Request statuses (field 'status' of a request hash): STATUS.queued, .running, .done,
-- .failed, .cancelled.
local STATUS = K.status
-- Segment outcomes (complete.lua's ARGV[3]): SEGMENT.ok, .error, .dropped.
local SEGMENT = K.segment

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

-- The reply of a redis.pcall on a key the script computed (not declared in KEYS), as is;
-- but a key this node does not hold now (its slot migrating away: Redis Cluster checks
-- undeclared keys at each call) must not read as an absent key: abort with TRYAGAIN,
-- which cluster clients retry once the slot has moved. Every write made before is a
-- complete step (a claim, a deficit), so aborting there leaves the state consistent.
local function held_here(res)
  if type(res) == 'table' and type(res.err) == 'string'
      and (res.err:find('non local key', 1, true) or res.err:find('cluster is down', 1, true)) then
    error({err = 'TRYAGAIN ' .. res.err})
  end
  return res
end

local function num(v, default)
  local n = tonumber(v)
  if n == nil then return default end
  return n
end

-- The depth hash's fields of a tenant: its total, then one per lane.
local function depth_fields(tenant)
  local fields = {tenant}
  for _, lane in ipairs(LANES) do
    fields[#fields + 1] = tenant .. ':' .. lane
  end
  return fields
end

-- Wake up to n idle workers (they block on the wake list); the list keeps WAKE_CAP entries.
local function wake_workers(wake, n)
  for _ = 1, n do
    redis.call('RPUSH', wake, '1')
  end
  redis.call('LTRIM', wake, -WAKE_CAP, -1)
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
-- activation_of decides without writing, from the tenant's policy and the drr fields
-- activation_fields names (in flight, deficit, quantum), so enqueue.lua can read and check
-- them before its first write; place writes the decision; activate does both.
local function activation_fields(tenant)
  return {tenant .. ':f', tenant .. ':d', '~q'}
end

local function activation_of(policy, inflight, deficit, quantum)
  if policy.max_inflight > 0 and inflight >= policy.max_inflight then
    return {parked = true}
  end
  local credit = quantum * policy.weight
  local d
  if inflight == 0 then
    d = math.min(deficit, 0) + credit
  else
    d = math.min(deficit, credit)
  end
  return {deficit = d, fresh = inflight == 0 and d > 0}
end

local function place(drr, fresh, active, tenant, plan)
  redis.call('HSET', drr, tenant .. ':t', server_ms())
  if plan.parked then
    redis.call('HSET', drr, tenant .. ':p', 1)
    return
  end
  redis.call('HSET', drr, tenant .. ':d', plan.deficit)
  if plan.fresh then
    redis.call('RPUSH', fresh, tenant)
  else
    redis.call('RPUSH', active, tenant)
  end
end

local function activate(drr, fresh, active, tenants, tenant)
  local v = redis.call('HMGET', drr, unpack(activation_fields(tenant)))
  local plan = activation_of(policy_of(tenants, tenant), num(v[1], 0), num(v[2], 0), num(v[3], CFG.quantum))
  place(drr, fresh, active, tenant, plan)
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
    wake_workers(wake, 1)
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
  local groups = held_here(redis.pcall('XINFO', 'GROUPS', key))
  if type(groups) ~= 'table' or groups.err then return 0 end
  for _, g in ipairs(groups) do
    local name, lid = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then lid = g[i + 1] end
    end
    if name == group then last = lid end
  end
  if not last then
    held_here(redis.pcall('XGROUP', 'CREATE', key, group, '0'))
    last = '0-0'
  end
  local rest = held_here(redis.pcall('XRANGE', key, '(' .. last, '+', 'COUNT', cap))
  if type(rest) ~= 'table' or rest.err then return 0 end
  return #rest
end
