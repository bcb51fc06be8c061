-- Set (or delete) one tenant's policy, or the default policy (tenant "*"), and unpark
-- the tenant at once if the new in-flight cap leaves it room.
-- KEYS: 1 tenants hash, 2 drr hash, 3 depth hash, 4 active list, 5 active set, 6 wake list
-- ARGV: 1 tenant or "*", 2 policy JSON ("" deletes)
-- Returns 1.
local tenant = ARGV[1]
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], tenant)
else
  redis.call('HSET', KEYS[1], tenant, ARGV[2])
end
if tenant ~= '*' then
  unpark(KEYS[2], KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], tenant)
end
return 1
