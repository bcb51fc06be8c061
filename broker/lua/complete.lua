-- Finish one segment: acknowledge and delete its entry, settle the tenant's account
-- (in-flight count, deficit corrected from the estimate to the measured worker time,
-- served-work statistics), unpark the tenant if it drops below its in-flight cap, and
-- count the segment on its request.
-- KEYS: 1 lane stream, 2 drr hash, 3 tenants hash, 4 depth hash, 5 active list,
--       6 active set, 7 wake list, 8 served hash, 9 busy bucket hash, 10 leases zset,
--       11 finishing zset, [12 request hash]
-- ARGV: 1 group, 2 entry id, 3 outcome ("ok" | "error" | "dropped": a cancelled request's
--       segment, not synthesised, not counted as served), 4 tenant, 5 lane,
--       6 charged us, 7 measured us (-1: not measured), 8 weighted characters,
--       9 busy bucket ttl s, 10 now ms (0: the server's clock; only tests pin it), 11 lease ms
-- When this completion finishes the request, the request goes into the finishing zset
-- until its end marker is written (by this worker, or by another one if it dies first).
-- Returns {done, segments, failed, status}; segments is -1 without a request (or when it is gone).
local drr, tenant, lane = KEYS[2], ARGV[4], ARGV[5]
local now = now_or(ARGV[10])
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[10], tenant .. '|' .. lane .. '|' .. ARGV[2])

if acked == 1 then
  redis.call('HSET', drr, tenant .. ':t', now) -- last activity: idle tenants are forgotten (forget.lua)
  local inflight = redis.call('HINCRBY', drr, tenant .. ':f', -1)
  if inflight < 0 then
    redis.call('HSET', drr, tenant .. ':f', 0)
    inflight = 0
  end
  if redis.call('HINCRBY', drr, '~f', -1) < 0 then
    redis.call('HSET', drr, '~f', 0)
  end
  local charged, actual, chars = num(ARGV[6], 0), num(ARGV[7], -1), num(ARGV[8], 0)
  if actual >= 0 then
    local d = num(redis.call('HGET', drr, tenant .. ':d'), 0)
    redis.call('HSET', drr, tenant .. ':d', d + charged - actual)
    if chars >= 1 and chars <= CFG.max_chars then
      -- the rate: a plain mean over the first samples, then a moving average, so the
      -- initial guess is forgotten after the first measurement
      local rate, quantum = scheduler_state(drr)
      local n = math.min(num(redis.call('HGET', drr, '~n'), 0) + 1, CFG.ewma)
      rate = math.max(1, rate + math.floor((math.floor(actual / chars) - rate) / n))
      -- the quantum follows the rate, but only every CFG.quantum_every_s once warmed up:
      -- every tenant of a round must get the same quantum, or one whose own
      -- completions just moved it would gain
      if n < CFG.ewma or now - num(redis.call('HGET', drr, '~qt'), 0) >= CFG.quantum_every_s * 1000 then
        quantum = math.max(CFG.min_quantum, rate * CFG.quantum_chars)
        redis.call('HSET', drr, '~qt', now)
      end
      redis.call('HSET', drr, '~rate', rate, '~q', quantum, '~n', n)
    end
    if ARGV[3] ~= SEGMENT.dropped then
      local field = tenant .. ':' .. lane
      redis.call('HINCRBY', KEYS[8], field .. ':n', 1)
      redis.call('HINCRBY', KEYS[8], field .. ':us', actual)
      redis.call('HINCRBY', KEYS[9], field .. ':n', 1)
      redis.call('HINCRBY', KEYS[9], field .. ':us', actual)
      redis.call('EXPIRE', KEYS[9], tonumber(ARGV[9]))
    end
  end
  unpark(drr, KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], tenant)
end

local req = KEYS[12]
if not req or redis.call('EXISTS', req) == 0 then
  return {0, -1, 0, ''}
end
if acked == 0 then
  -- already completed by another delivery: do not count twice
  local v = redis.call('HMGET', req, 'done', 'segments', 'failed', 'status')
  return {tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), v[4] or ''}
end
local failed = tonumber(redis.call('HGET', req, 'failed') or '0')
if ARGV[3] == SEGMENT.error then
  failed = redis.call('HINCRBY', req, 'failed', 1)
end
local done = redis.call('HINCRBY', req, 'done', 1)
local segments = tonumber(redis.call('HGET', req, 'segments'))
local status = redis.call('HGET', req, 'status')
if status ~= STATUS.cancelled then
  if done >= segments then
    status = failed > 0 and STATUS.failed or STATUS.done
    local rid = string.match(req, ':req:(.+)$')
    if rid then
      redis.call('ZADD', KEYS[11], now + num(ARGV[11], 0), rid)
    end
  else
    status = STATUS.running
  end
  redis.call('HSET', req, 'status', status)
end
return {done, segments, failed, status}
