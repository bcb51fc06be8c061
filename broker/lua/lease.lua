-- Extend the leases of entries this worker is still working on. An entry that another
-- worker has reclaimed meanwhile (it owns the pending entry now) is not extended.
-- KEYS: 1 leases zset
-- ARGV: 1 lane stream prefix, 2 group, 3 consumer, 4 lease ms (the new expiry is the server's
--       clock + this), then lease members
--       ("<tenant>|<lane>|<entry id>")
-- Returns per member: 1 extended, 0 lost (another worker owns it now), -1 gone (completed).
local out = {}
local expiry = server_ms() + tonumber(ARGV[4])
for i = 5, #ARGV do
  local member = ARGV[i]
  local tenant, lane, id = string.match(member, '^(.+)|([a-z]+)|([0-9]+%-[0-9]+)$')
  local kept = -1
  if tenant and redis.call('ZSCORE', KEYS[1], member) then
    kept = 0
    local p = held_here(redis.pcall('XPENDING', ARGV[1] .. tenant .. ':' .. lane, ARGV[2], id, id, 1))
    if type(p) == 'table' and p[1] and p[1][2] == ARGV[3] then
      redis.call('ZADD', KEYS[1], 'XX', expiry, member)
      kept = 1
    end
  end
  out[#out + 1] = kept
end
return out
