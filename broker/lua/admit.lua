-- Admit one claimed entry for synthesis: check it against its request before any audio
-- is written, so an entry forged by one tenant can never write into another tenant's
-- stream, count twice on a request or recreate a stream without an expiry.
-- The first entry admitted for a (request, seq) owns it (field o:<seq> of the request
-- hash, which expires with it); a later entry for the same seq is a duplicate. A
-- reclaimed delivery of the owning entry is admitted again. Entries are named
-- <tenant>|<lane>|<entry id>: ids are unique per stream only, so an entry of another
-- lane with the same id is another entry.
-- KEYS: 1 request hash
-- ARGV: 1 tenant of the lane stream the entry came from, 2 seq, 3 the entry's name
-- Returns {verdict, segments}. Verdicts that reject the entry (dead letter, nothing
-- written to the request): 'unknown' (no such request), 'tenant' (the request belongs to
-- another tenant), 'range' (seq >= the request's segment count), 'finished' (the request
-- already ended), 'duplicate' (another entry owns this seq). Verdicts for an owned entry:
-- 'ok' (synthesise), 'cancelled' (drop without synthesis), 'expired' (past its deadline,
-- by the Redis server's clock).
local req = KEYS[1]
local v = redis.call('HMGET', req, 'tenant', 'segments', 'status', 'deadline')
if not v[1] then
  return {'unknown', 0}
end
local segments = tonumber(v[2]) or 0
if v[1] ~= ARGV[1] then
  return {'tenant', segments}
end
local seq = tonumber(ARGV[2])
if not seq or seq < 0 or seq >= segments then
  return {'range', segments}
end
if v[3] == STATUS.done or v[3] == STATUS.failed then
  return {'finished', segments}
end
local field = 'o:' .. seq
local owner = redis.call('HGET', req, field)
if owner and owner ~= ARGV[3] then
  return {'duplicate', segments}
end
if not owner then
  redis.call('HSET', req, field, ARGV[3])
end
if v[3] == STATUS.cancelled then
  return {'cancelled', segments}
end
local deadline = tonumber(v[4]) or 0
if deadline > 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline then
    return {'expired', segments}
  end
end
return {'ok', segments}
