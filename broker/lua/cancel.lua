-- Cancel a request: flag it so workers drop its queued segments without synthesis and
-- stop a segment in progress at the next frame. A finished request is left alone.
-- KEYS: 1 request hash
-- Returns 1 when the request is now cancelled, 0 when it had already ended, -1 when unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == STATUS.done or status == STATUS.failed or status == STATUS.cancelled then
  return 0
end
redis.call('HSET', KEYS[1], 'status', STATUS.cancelled, 'cancelled', 1)
return 1
