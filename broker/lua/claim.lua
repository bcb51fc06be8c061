-- Claim up to N segments for one worker, round robin over tenants with queued work,
-- strict lane priority inside a tenant. Every worker shares this one state, so the
-- order is exact across machines. (Weighted deficit round robin grows from here:
-- the visit below is where a tenant's deficit is charged.)
-- KEYS: 1 depth hash, 2 active list, 3 active set
-- ARGV: 1 lane stream prefix ("<prefix>:{shard}:q:"), 2 group, 3 consumer, 4 max count
-- Returns a flat list: stream key, entry id, field list, stream key, entry id, ...
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local want = tonumber(ARGV[4])
local lanes = {'rt', 'interactive', 'batch'}
local out = {}
local got = 0
local idle = 0

while got < want do
  local tenant = redis.call('LPOP', KEYS[2])
  if not tenant then break end
  local claimed = false
  for _, lane in ipairs(lanes) do
    local field = tenant .. ':' .. lane
    local queued = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if queued > 0 then
      local key = prefix .. tenant .. ':' .. lane
      local res = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', key, '>')
      if type(res) == 'table' and res.err then
        -- stream lost its group (deleted by hand): recreate, nothing to read now
        redis.pcall('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
        res = nil
      end
      if res and res[1] and #res[1][2] > 0 then
        local entry = res[1][2][1]
        out[#out + 1] = key
        out[#out + 1] = entry[1]
        out[#out + 1] = entry[2]
        redis.call('HINCRBY', KEYS[1], field, -1)
        redis.call('HINCRBY', KEYS[1], tenant, -1)
        claimed = true
        got = got + 1
        break
      else
        -- the counter drifted (entries trimmed or deleted by hand): trust the stream
        redis.call('HINCRBY', KEYS[1], tenant, -queued)
        redis.call('HSET', KEYS[1], field, 0)
      end
    end
  end
  if tonumber(redis.call('HGET', KEYS[1], tenant) or '0') > 0 then
    redis.call('RPUSH', KEYS[2], tenant)
  else
    redis.call('SREM', KEYS[3], tenant)
    redis.call('HDEL', KEYS[1], tenant, tenant .. ':rt', tenant .. ':interactive', tenant .. ':batch')
  end
  if not claimed then
    idle = idle + 1
    if idle > 16 then break end
  end
end
return out
