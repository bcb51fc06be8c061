-- Enqueue one request atomically: policy checks, metadata, every segment, tenant
-- activation, wake-up. All or nothing: Redis does not undo a script's writes when the
-- script fails, so the script runs in two phases. Phase 1 reads and checks everything
-- (arguments, payloads, the policy, lanes, queue caps, the id, the type of every key it
-- writes, every counter and scheduler value it reads) and writes nothing; phase 2 writes,
-- with every value it needs already read and checked, so it cannot fail halfway.
-- KEYS: 1 request hash, 2 depth hash, 3 active list, 4 active set, 5 wake list,
--       6 lane stream rt, 7 lane stream interactive, 8 lane stream batch,
--       9 tenants hash, 10 drr hash, 11 fresh list
-- ARGV: 1 tenant, 2 request id, 3 voice, 4 sent ms (the producer's clock, informational),
--       5 deadline in ms from now (0 = none; "now" is the server's clock),
--       6 metadata ttl s, 7 consumer group, 8 segment count,
--       then per segment: lane number (1..3), weighted characters, payload
-- Payload i (0-based) must be a msgpack map whose 'req' is the request id and whose 'seq'
-- is i: a segment the request does not have, or has twice, is refused here.
-- Returns the segment count. Idempotent by request id: running it again with the same
-- arguments (a producer retrying after a timeout, not knowing whether the first call ran)
-- returns the segment count and writes nothing; the same id with other arguments is refused.
-- Errors (nothing is written): DUPLICATE, BADARGS <what>, NOTENANT <tenant>,
--         LANE <lane> <allowed,...>, QUEUEFULL <limit> <queued> <requested>,
--         TOOLARGE <limit> <requested> (the request alone exceeds the cap: retrying cannot help),
--         BADPOLICY <tenant or *> <why> (the tenants hash field that applies is not a valid
--         policy), BADSTATE <key> <why> (a key of the wrong type, or a counter or scheduler
--         value that is not a number: repair it by hand), WRONGSHARD <shard> (the tenant lives
--         in another shard: its entry here is a forward, a policy whose "shard" is not this
--         one, the request id's; the producer enqueues there instead)
local tenant, rid, voice = ARGV[1], ARGV[2], ARGV[3]
local req_key, depth, active, active_set, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tenants, drr, fresh = KEYS[9], KEYS[10], KEYS[11]
local nseg = tonumber(ARGV[8])
local sum = redis.sha1hex(table.concat(ARGV, '\0'))

-- ---------------------------------------------------------------- phase 1: read, check

local function badargs(why)
  return redis.error_reply('BADARGS ' .. why)
end

local function badstate(key, why)
  return redis.error_reply('BADSTATE ' .. key .. ' ' .. why)
end

-- v as a number when it is a plain decimal integer (no sign, exponent, spaces) of at most
-- `digits` digits, else nil.
local function whole(v, digits)
  if type(v) ~= 'string' or #v < 1 or #v > digits or not v:find('^%d+$') then return nil end
  return tonumber(v)
end

local function finite(n)
  return type(n) == 'number' and n == n and n ~= math.huge and n ~= -math.huge
end

-- A counter HINCRBY accepts and cannot overflow with: absent, or a decimal integer of at
-- most 18 digits.
local function counter_ok(v)
  if not v then return true end
  local digits = v:sub(1, 1) == '-' and #v - 1 or #v
  return digits <= 18 and (v == '0' or v:find('^%-?[1-9]%d*$') ~= nil)
end

local function key_type(key)
  return redis.call('TYPE', key)['ok']
end

-- The request id: a retry of this very call answers as the first call did.
local held = key_type(req_key)
if held ~= 'none' then
  if held == 'hash' and redis.call('HGET', req_key, 'sum') == sum then
    return tonumber(redis.call('HGET', req_key, 'segments'))
  end
  return redis.error_reply('DUPLICATE request id ' .. rid)
end

-- Arguments.
if not nseg or nseg < 1 or #ARGV ~= 8 + 3 * nseg then
  return badargs('segment count does not match arguments')
end
if nseg > K.max_segments then
  return badargs('a request has at most ' .. K.max_segments .. ' segments')
end
if #tenant > 64 or not tenant:find('^[A-Za-z0-9_%.%-]+$') then
  return badargs('tenant name must match ^[A-Za-z0-9_.-]{1,64}$')
end
local dot = rid:find('.', 1, true)
if not dot or dot < 2 or dot > 9 or #rid ~= dot + 22 or not rid:sub(1, dot - 1):find('^[a-z0-9]+$')
    or not rid:sub(dot + 1):find('^[A-Za-z0-9_%-]+$') then
  return badargs('request id must match ^[a-z0-9]{1,8}\\.[A-Za-z0-9_-]{22}$')
end
if #voice < 1 or #voice > 64 then
  return badargs('voice must be 1..64 bytes')
end
local sent = tonumber(ARGV[4])
if not finite(sent) or sent < 0 then
  return badargs('sent ms must be a number >= 0')
end
local within = whole(ARGV[5], 15)
if not within then
  return badargs('deadline ms must be an integer >= 0 (0 = none)')
end
local ttl = whole(ARGV[6], 10)
if not ttl or ttl < 1 then
  return badargs('metadata ttl must be an integer >= 1')
end
local group = ARGV[7]
if #group < 1 then
  return badargs('consumer group must not be empty')
end
local lanes = {}
for i = 1, nseg do
  local seq = i - 1
  local lane = whole(ARGV[6 + 3 * i], 1)
  if not lane or lane < 1 or lane > #LANES then
    return badargs('lane number must be 1..' .. #LANES)
  end
  lanes[i] = lane
  local chars = whole(ARGV[7 + 3 * i], 9)
  if not chars or chars > CFG.max_chars then
    return badargs('segment ' .. seq .. ': weighted characters must be an integer within 0..' .. CFG.max_chars)
  end
  local payload = ARGV[8 + 3 * i]
  if #payload == 0 then
    return badargs('segment ' .. seq .. ': no payload')
  end
  if #payload > K.max_entry_bytes then  -- workers refuse it unread: no error frame could tell the listener
    return badargs('segment ' .. seq .. ': payload over ' .. K.max_entry_bytes .. ' bytes')
  end
  local ok, rest, job = pcall(cmsgpack.unpack_one, payload)
  if not ok or rest ~= -1 or type(job) ~= 'table' then
    return badargs('segment ' .. seq .. ': payload is not one msgpack map')
  end
  if job.req ~= rid then
    return badargs('segment ' .. seq .. ': payload req is not the request id')
  end
  if job.seq ~= seq then
    return badargs('segment ' .. seq .. ': payload seq must be ' .. seq)
  end
end

-- The policy that applies: the tenant's own, else the default (field '*'), else the
-- built-in one. A stored one must have every field the scripts read, with sane values.
local function checked_policy(raw)
  local ok, p = pcall(cjson.decode, raw)
  if not ok then return nil, 'is not JSON' end
  if type(p) ~= 'table' then return nil, 'is not a JSON object' end
  if not finite(p.weight) or p.weight < 1 or p.weight % 1 ~= 0 then
    return nil, 'weight must be an integer >= 1'
  end
  for _, name in ipairs({'max_queued', 'max_inflight'}) do
    local v = p[name]
    if not finite(v) or v < 0 or v % 1 ~= 0 then return nil, name .. ' must be an integer >= 0' end
  end
  if type(p.lanes) ~= 'table' or #p.lanes < 1 then return nil, 'lanes must be a non-empty list' end
  for _, l in ipairs(p.lanes) do
    if l ~= RT and l ~= INTERACTIVE and l ~= BATCH then
      return nil, 'lanes must name lanes of ' .. table.concat(LANES, ',')
    end
  end
  if p.reject ~= nil and type(p.reject) ~= 'boolean' then return nil, 'reject must be true or false' end
  if p.shard ~= nil and (type(p.shard) ~= 'string' or #p.shard > 8 or not p.shard:find('^[a-z0-9]+$')) then
    return nil, 'shard must be a shard name'
  end
  return p
end

-- Keys the script reads or writes must be absent or of the type it uses.
local function wrong_type(key, want)
  local t = key_type(key)
  if t ~= 'none' and t ~= want then return 'is a ' .. t .. ', not a ' .. want end
  return nil
end
for _, kt in ipairs({{tenants, 'hash'}, {depth, 'hash'}, {active_set, 'set'}, {wake, 'list'}}) do
  local why = wrong_type(kt[1], kt[2])
  if why then return badstate(kt[1], why) end
end

local field, raw = tenant, redis.call('HGET', tenants, tenant)
local known = raw ~= false
if not known then
  field, raw = '*', redis.call('HGET', tenants, '*')
end
local policy = DEFAULT_POLICY
if raw then
  local why
  policy, why = checked_policy(raw)
  if not policy then
    return redis.error_reply('BADPOLICY ' .. field .. ' ' .. why)
  end
end
if known and policy.shard and policy.shard ~= rid:sub(1, dot - 1) then
  return redis.error_reply('WRONGSHARD ' .. policy.shard)
end
if not known and policy.reject then
  return redis.error_reply('NOTENANT ' .. tenant)
end
local used = {}
for i = 1, nseg do
  local lane = lanes[i]
  if LANES[lane] == RT and not allows(policy, RT) then
    lane = 2 -- INTERACTIVE: no real-time lane for this tenant, its first segments queue as interactive
  end
  if not allows(policy, LANES[lane]) then
    return redis.error_reply('LANE ' .. LANES[lane] .. ' ' .. table.concat(policy.lanes, ','))
  end
  lanes[i] = lane
  used[lane] = true
end
for lane in pairs(used) do
  local why = wrong_type(KEYS[5 + lane], 'stream')
  if why then return badstate(KEYS[5 + lane], why) end
end
if policy.max_queued > 0 and nseg > policy.max_queued then
  return redis.error_reply('TOOLARGE ' .. policy.max_queued .. ' ' .. nseg)
end
-- the counters phase 2 increments: the tenant's total and the lanes it uses
local counted = {tenant}
for lane in pairs(used) do
  counted[#counted + 1] = tenant .. ':' .. LANES[lane]
end
local counts = redis.call('HMGET', depth, unpack(counted))
for j, f in ipairs(counted) do
  if not counter_ok(counts[j]) then
    return badstate(depth, 'field ' .. f .. ' must be an integer of at most 18 digits')
  end
end
local queued = num(counts[1], 0)
if policy.max_queued > 0 and queued + nseg > policy.max_queued then
  return redis.error_reply('QUEUEFULL ' .. policy.max_queued .. ' ' .. queued .. ' ' .. nseg)
end

-- A tenant not in the active set is activated: its place is decided now, from the drr
-- values activation reads, each checked.
local plan = nil
if redis.call('SISMEMBER', active_set, tenant) == 0 then
  for _, kt in ipairs({{drr, 'hash'}, {active, 'list'}, {fresh, 'list'}}) do
    local why = wrong_type(kt[1], kt[2])
    if why then return badstate(kt[1], why) end
  end
  local names = activation_fields(tenant)
  local v = redis.call('HMGET', drr, unpack(names))
  for j = 1, #names do
    if v[j] and not finite(tonumber(v[j])) then
      return badstate(drr, 'field ' .. names[j] .. ' must be a finite number')
    end
  end
  local quantum = num(v[3], CFG.quantum)
  if quantum <= 0 then
    return badstate(drr, 'field ' .. names[3] .. ' must be > 0')
  end
  plan = activation_of(policy, num(v[1], 0), num(v[2], 0), quantum)
end

-- ---------------------------------------------------------------- phase 2: write

local now = server_ms()
redis.call('HSET', req_key, 'tenant', tenant, 'voice', voice, 'segments', nseg, 'created', now,
  'deadline', within > 0 and now + within or 0, 'status', STATUS.queued, 'done', 0, 'failed', 0, 'sum', sum)
redis.call('EXPIRE', req_key, ttl)

for i = 1, nseg do
  local lane = lanes[i]
  local key = KEYS[5 + lane]
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
  end
  redis.call('XADD', key, '*', 'r', rid, 'p', ARGV[8 + 3 * i], 'c', ARGV[7 + 3 * i])
  redis.call('HINCRBY', depth, tenant .. ':' .. LANES[lane], 1)
end
redis.call('HINCRBY', depth, tenant, nseg)
redis.call('SADD', active_set, tenant)
if plan then
  place(drr, fresh, active, tenant, plan)
end
wake_workers(wake, math.min(nseg, 8))
return nseg
