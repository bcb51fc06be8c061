-- Finish one segment: acknowledge and delete its entry, count it on the request.
-- KEYS: 1 lane stream, 2 request hash
-- ARGV: 1 group, 2 entry id, 3 outcome ("ok" | "error")
-- Returns {done, segments, failed}; segments is -1 when the request metadata is gone.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0, -1, 0}
end
if acked == 0 then
  -- already completed by another delivery: do not count twice
  local d = redis.call('HMGET', KEYS[2], 'done', 'segments', 'failed')
  return {tonumber(d[1]), tonumber(d[2]), tonumber(d[3])}
end
local failed = tonumber(redis.call('HGET', KEYS[2], 'failed') or '0')
if ARGV[3] ~= 'ok' then
  failed = redis.call('HINCRBY', KEYS[2], 'failed', 1)
end
local done = redis.call('HINCRBY', KEYS[2], 'done', 1)
local segments = tonumber(redis.call('HGET', KEYS[2], 'segments'))
if done >= segments then
  redis.call('HSET', KEYS[2], 'status', failed > 0 and 'failed' or 'done')
else
  redis.call('HSET', KEYS[2], 'status', 'running')
end
return {done, segments, failed}
