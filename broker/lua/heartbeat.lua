-- A worker's heartbeat by the server's clock, and the count of live workers.
-- KEYS: 1 workers zset (worker id -> last heartbeat ms)
-- ARGV: 1 worker id, 2 liveness window ms
-- Returns the workers whose last heartbeat is within the window (this one included).
local now = server_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[2]), '+inf')
