-- Enqueue one request atomically: policy checks, metadata, every segment, tenant
-- activation, wake-up. Every check runs before the first write, so an error leaves
-- nothing behind.
-- KEYS: 1 request hash, 2 depth hash, 3 active list, 4 active set, 5 wake list,
--       6 lane stream rt, 7 lane stream interactive, 8 lane stream batch,
--       9 tenants hash, 10 drr hash, 11 fresh list
-- ARGV: 1 tenant, 2 request id, 3 voice, 4 sent ms (the producer's clock, informational),
--       5 deadline in ms from now (0 = none; "now" is the server's clock),
--       6 metadata ttl s, 7 consumer group, 8 segment count,
--       then per segment: lane number (1..3), weighted characters, payload
-- Returns the segment count. Idempotent by request id: running it again with the same
-- arguments (a producer retrying after a timeout, not knowing whether the first call ran)
-- returns the segment count and writes nothing; the same id with other arguments is refused.
-- Errors: DUPLICATE, BADARGS, NOTENANT <tenant>, LANE <lane> <allowed,...>,
--         QUEUEFULL <limit> <queued> <requested>, TOOLARGE <limit> <requested> (the request
--         alone exceeds the cap: retrying cannot help)
local tenant = ARGV[1]
local nseg = tonumber(ARGV[8])
local sum = redis.sha1hex(table.concat(ARGV, '\0'))
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'sum') == sum then
    return tonumber(redis.call('HGET', KEYS[1], 'segments'))
  end
  return redis.error_reply('DUPLICATE request id ' .. ARGV[2])
end
if not nseg or nseg < 1 or #ARGV ~= 8 + 3 * nseg then
  return redis.error_reply('BADARGS segment count does not match arguments')
end

local policy, known = policy_of(KEYS[9], tenant)
if not known and policy.reject then
  return redis.error_reply('NOTENANT ' .. tenant)
end
local lanes = {}
for i = 1, nseg do
  local lane = tonumber(ARGV[6 + 3 * i])
  if not lane or lane < 1 or lane > #LANES then
    return redis.error_reply('BADARGS lane number must be 1..' .. #LANES)
  end
  if LANES[lane] == RT and not allows(policy, RT) then
    lane = 2 -- INTERACTIVE: no real-time lane for this tenant, its first segments queue as interactive
  end
  if not allows(policy, LANES[lane]) then
    return redis.error_reply('LANE ' .. LANES[lane] .. ' ' .. table.concat(policy.lanes, ','))
  end
  lanes[i] = lane
end
if policy.max_queued > 0 and nseg > policy.max_queued then
  return redis.error_reply('TOOLARGE ' .. policy.max_queued .. ' ' .. nseg)
end
local queued = num(redis.call('HGET', KEYS[2], tenant), 0)
if policy.max_queued > 0 and queued + nseg > policy.max_queued then
  return redis.error_reply('QUEUEFULL ' .. policy.max_queued .. ' ' .. queued .. ' ' .. nseg)
end

local now = server_ms()
local within = num(ARGV[5], 0)
redis.call('HSET', KEYS[1], 'tenant', tenant, 'voice', ARGV[3], 'segments', nseg, 'created', now,
  'deadline', within > 0 and now + within or 0, 'status', STATUS.queued, 'done', 0, 'failed', 0, 'sum', sum)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))

for i = 1, nseg do
  local lane = lanes[i]
  local key = KEYS[5 + lane]
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, ARGV[7], '0', 'MKSTREAM')
  end
  redis.call('XADD', key, '*', 'r', ARGV[2], 'p', ARGV[8 + 3 * i], 'c', ARGV[7 + 3 * i])
  redis.call('HINCRBY', KEYS[2], tenant .. ':' .. LANES[lane], 1)
end
redis.call('HINCRBY', KEYS[2], tenant, nseg)
if redis.call('SADD', KEYS[4], tenant) == 1 then
  activate(KEYS[10], KEYS[11], KEYS[3], KEYS[9], tenant)
end
wake_workers(KEYS[5], math.min(nseg, 8))
return nseg
