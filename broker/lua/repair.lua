-- Re-activate an idle tenant whose lane streams hold undelivered entries the depth
-- counter does not know of (written by raw XADDs, not the enqueue script): count them
-- from the streams, set the counter, and give the tenant its place as an enqueue would.
-- KEYS: 1 depth hash, 2 active list, 3 active set, 4 tenants hash, 5 drr hash,
--       6 fresh list, 7 wake list, 8..10 lane streams rt, interactive, batch
-- ARGV: 1 tenant, 2 consumer group
-- Returns the undelivered entries found (0 when the tenant is active or has none).
local tenant = ARGV[1]
if redis.call('SISMEMBER', KEYS[3], tenant) == 1 then
  return 0
end
local total = 0
for i, lane in ipairs(LANES) do
  local n = undelivered(KEYS[7 + i], ARGV[2], CFG.repair_cap)
  if n > 0 then
    redis.call('HSET', KEYS[1], tenant .. ':' .. lane, n)
    total = total + n
  end
end
if total == 0 then
  return 0
end
redis.call('HSET', KEYS[1], tenant, total)
redis.call('SADD', KEYS[3], tenant)
activate(KEYS[5], KEYS[6], KEYS[2], KEYS[4], tenant)
wake_workers(KEYS[7], 1)
return total
