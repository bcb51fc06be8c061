-- Enqueue one request atomically: metadata, every segment, tenant activation, wake-up.
-- KEYS: 1 request hash, 2 depth hash, 3 active list, 4 active set, 5 wake list,
--       6 lane stream rt, 7 lane stream interactive, 8 lane stream batch
-- ARGV: 1 tenant, 2 request id, 3 voice, 4 created ms, 5 deadline ms (0 = none),
--       6 metadata ttl s, 7 consumer group, 8 segment count,
--       then per segment: lane number (1..3), payload
-- Returns the segment count. Errors leave nothing behind (checked before any write).
local tenant = ARGV[1]
local nseg = tonumber(ARGV[8])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('DUPLICATE request id ' .. ARGV[2])
end
if not nseg or nseg < 1 or #ARGV ~= 8 + 2 * nseg then
  return redis.error_reply('BADARGS segment count does not match arguments')
end
for i = 1, nseg do
  local lane = tonumber(ARGV[7 + 2 * i])
  if not lane or lane < 1 or lane > 3 then
    return redis.error_reply('BADARGS lane number must be 1..3')
  end
end

redis.call('HSET', KEYS[1], 'tenant', tenant, 'voice', ARGV[3], 'segments', nseg,
  'created', ARGV[4], 'deadline', ARGV[5], 'status', 'queued', 'done', 0, 'failed', 0)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))

local lanes = {'rt', 'interactive', 'batch'}
for i = 1, nseg do
  local lane = tonumber(ARGV[7 + 2 * i])
  local key = KEYS[5 + lane]
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, ARGV[7], '0', 'MKSTREAM')
  end
  redis.call('XADD', key, '*', 'r', ARGV[2], 'p', ARGV[8 + 2 * i])
  redis.call('HINCRBY', KEYS[2], tenant .. ':' .. lanes[lane], 1)
end
redis.call('HINCRBY', KEYS[2], tenant, nseg)
if redis.call('SADD', KEYS[4], tenant) == 1 then
  redis.call('RPUSH', KEYS[3], tenant)
end
for _ = 1, math.min(nseg, 8) do
  redis.call('RPUSH', KEYS[5], '1')
end
redis.call('LTRIM', KEYS[5], -64, -1)
return nseg
