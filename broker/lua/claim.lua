-- Claim up to N segments for one worker: deficit round robin over tenants, strict lane
-- priority inside a tenant (batch keeps a guaranteed share). Every worker on every
-- machine runs this one script over one state, so the order is exact cluster-wide.
--
-- The ring (active list) holds the tenants that have queued work and are below their
-- in-flight cap; the fresh list holds tenants that just came back from idle, and is
-- served first. The tenant at the head is served while its deficit is positive; each
-- claim charges its estimated cost (characters x measured us per character), and
-- complete.lua later corrects it by the measured time. A tenant out of credit gets
-- weight x quantum and goes to the tail. A tenant reaching its in-flight cap is parked
-- (taken off the ring) until a completion brings it below the cap again.
-- Every claimed entry gets a lease in the leases zset (expiry = now + lease); a worker
-- extends it while it works (lease.lua) and other workers reclaim it once it expires.
-- KEYS: 1 depth hash, 2 active list, 3 active set, 4 tenants hash, 5 drr hash, 6 fresh list,
--       7 leases zset
-- With a reserve R > 0 (of W live workers), once W - R segments are in flight the ring
-- is not served: the last R workers take only tenants on the fresh list, so a tenant
-- back from idle never waits for a busy worker to finish (not work-conserving: R
-- workers may idle while the ring has work).
-- ARGV: 1 lane stream prefix ("<prefix>:{shard}:q:"), 2 group, 3 consumer, 4 max count,
--       5 live workers W, 6 reserve R (0 = work-conserving), 7 now ms (0: the server's clock;
--       only tests pin it), 8 lease ms
-- Returns {more, weight, then per entry: stream key, entry id, field list, tenant, lane, cost us}.
-- more = 1 when the visit budget ran out before the ring did (claim again at once); weight =
-- the shard's weight, the sum of the weights of the tenants on its ring and fresh list
-- (recounted at most every CFG.weigh_ms), which a worker serving several shards divides its
-- time by (broker/picker.py).
local depth, active, active_set, tenants, drr, fresh = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local want = tonumber(ARGV[4])
local workers, reserve = num(ARGV[5], 0), num(ARGV[6], 0)
if reserve >= workers then reserve = workers - 1 end
local now = now_or(ARGV[7])
local busy = num(redis.call('HGET', drr, '~f'), 0)
local warming = num(redis.call('HGET', drr, '~n'), 0) < CFG.ewma
local rate = scheduler_state(drr)
local out = {0, 0}
local got = 0
local visits = 0
local budget = CFG.visits + 4 * want

local function forget(list, tenant)
  redis.call('LPOP', list)
  redis.call('SREM', active_set, tenant)
  redis.call('HDEL', depth, unpack(depth_fields(tenant)))
  redis.call('HDEL', drr, tenant .. ':p', tenant .. ':b')
end

-- Pick the lane: the first non-empty one in priority order, except that after
-- CFG.batch_every claims of other lanes while batch work waited, batch goes next.
local function pick_lane(tenant)
  local q = redis.call('HMGET', depth, tenant .. ':' .. RT, tenant .. ':' .. INTERACTIVE, tenant .. ':' .. BATCH)
  local rt, inter, batch = num(q[1], 0), num(q[2], 0), num(q[3], 0)
  if batch > 0 and (rt > 0 or inter > 0) then
    local streak = num(redis.call('HGET', drr, tenant .. ':b'), 0)
    if streak >= CFG.batch_every then
      redis.call('HSET', drr, tenant .. ':b', 0)
      return BATCH, batch
    end
    redis.call('HSET', drr, tenant .. ':b', streak + 1)
  elseif batch > 0 then
    redis.call('HSET', drr, tenant .. ':b', 0)
  end
  if rt > 0 then return RT, rt end
  if inter > 0 then return INTERACTIVE, inter end
  if batch > 0 then return BATCH, batch end
  return nil, 0
end

while got < want do
  if visits >= budget then
    out[1] = 1
    break
  end
  visits = visits + 1
  local list = fresh
  local tenant = redis.call('LINDEX', fresh, 0)
  if not tenant then
    if reserve > 0 and busy >= workers - reserve then break end
    list = active
    tenant = redis.call('LINDEX', active, 0)
  end
  if not tenant then break end
  local policy = policy_of(tenants, tenant)
  local inflight = num(redis.call('HGET', drr, tenant .. ':f'), 0)
  local _, quantum = scheduler_state(drr)
  local d = num(redis.call('HGET', drr, tenant .. ':d'), 0)
  if warming then
    -- credit granted from the initial guess is capped at one measured turn; after the
    -- warm-up no cap: a refund (estimate above the measured time) is owed in full
    d = math.min(d, quantum * policy.weight)
  end
  local queued_total = num(redis.call('HGET', depth, tenant), 0)
  if queued_total <= 0 then
    -- before forgetting the tenant, count what its streams really hold: the counter
    -- may be below the truth (entries XADDed without the enqueue script)
    queued_total = 0
    for _, lane in ipairs(LANES) do
      local n = undelivered(prefix .. tenant .. ':' .. lane, group, CFG.repair_cap)
      if n > 0 then
        redis.call('HSET', depth, tenant .. ':' .. lane, n)
        queued_total = queued_total + n
      end
    end
    if queued_total > 0 then
      redis.call('HSET', depth, tenant, queued_total)
    end
  end
  if queued_total <= 0 then
    forget(list, tenant)
  elseif policy.max_inflight > 0 and inflight >= policy.max_inflight then
    redis.call('LPOP', list)
    redis.call('HSET', drr, tenant .. ':p', 1)
  elseif d <= 0 then
    redis.call('HSET', drr, tenant .. ':d', d + quantum * policy.weight)
    redis.call('LMOVE', list, active, 'LEFT', 'RIGHT')
  else
    local lane, queued = pick_lane(tenant)
    local key = prefix .. tenant .. ':' .. lane
    local res = held_here(redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', key, '>'))
    if type(res) == 'table' and res.err then
      -- the stream lost its group (deleted by hand): recreate it; nothing to read now
      held_here(redis.pcall('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM'))
      res = nil
    end
    if res and res[1] and #res[1][2] > 0 then
      local entry = res[1][2][1]
      local chars = 0
      for i = 1, #entry[2], 2 do
        if entry[2][i] == 'c' then chars = num(entry[2][i + 1], 0) end
      end
      if chars < 1 or chars > CFG.max_chars then chars = CFG.default_chars end
      local cost = math.max(1, math.floor(chars * rate))
      redis.call('HSET', drr, tenant .. ':d', d - cost)
      redis.call('HSET', drr, tenant .. ':f', inflight + 1)
      busy = busy + 1
      redis.call('HSET', drr, '~f', busy)
      redis.call('HINCRBY', depth, tenant .. ':' .. lane, -1)
      redis.call('HINCRBY', depth, tenant, -1)
      redis.call('ZADD', KEYS[7], now + num(ARGV[8], 0), tenant .. '|' .. lane .. '|' .. entry[1])
      local n = #out
      out[n + 1] = key
      out[n + 2] = entry[1]
      out[n + 3] = entry[2]
      out[n + 4] = tenant
      out[n + 5] = lane
      out[n + 6] = cost
      got = got + 1
    else
      -- the counter drifted (entries trimmed or deleted by hand): trust the stream
      redis.call('HINCRBY', depth, tenant, -queued)
      redis.call('HSET', depth, tenant .. ':' .. lane, 0)
    end
  end
end

-- The shard's weight: recounted from the ring and the fresh list at most every CFG.weigh_ms
-- (by the server's clock; a clock that went back recounts at once).
local counted = redis.call('HMGET', drr, '~wt', '~w')
local at, weight = num(counted[1], 0), num(counted[2], -1)
if weight < 0 or now < at or now - at >= CFG.weigh_ms then
  weight = 0
  local seen = {}
  for _, list in ipairs({fresh, active}) do
    for _, t in ipairs(redis.call('LRANGE', list, 0, -1)) do
      if not seen[t] then
        seen[t] = true
        weight = weight + num(policy_of(tenants, t).weight, 1)
      end
    end
  end
  redis.call('HSET', drr, '~w', weight, '~wt', now)
end
out[2] = weight
return out
