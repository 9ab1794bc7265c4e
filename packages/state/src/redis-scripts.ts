import { isTerminal, type StatusMessage, statusRank } from '@sluice/contracts';

/**
 * The Lua side of the Redis store. Every script touches exactly one key (KEYS[1]), so each runs on the node that
 * owns that key's slot and a Redis Cluster never sees a cross-slot script. Scripts return strings, not numbers:
 * Redis truncates a Lua number to an integer on the way out.
 *
 * The two decisions that must agree with the TypeScript reference, `supersedes` (@sluice/contracts) and
 * `rateLimitDecision` (./rate-limit.ts), are separate Lua functions so that the tests can run them on their own
 * and compare them with the reference over many cases (test/redis-lua.test.ts).
 */

/**
 * A stored status is `<generation> <rank> <terminal 0|1> <updatedAt>\n<status JSON>`: the order of statuses
 * is decided from the first line, which TypeScript computes with the contracts' own statusRank and isTerminal,
 * so the rank table lives in one place and Lua never parses JSON to compare.
 */
export function encodeStatus(status: StatusMessage): string {
  const order = [status.generation ?? 0, statusRank(status.status), isTerminal(status.status) ? 1 : 0];
  return `${order.join(' ')} ${status.updatedAt}\n${JSON.stringify(status)}`;
}

export function decodeStatus(value: string): StatusMessage {
  return JSON.parse(value.slice(value.indexOf('\n') + 1)) as StatusMessage;
}

/** Lua `supersedes(nextValue, currentValue)` over encoded statuses: the contracts' rule, line for line. */
export const supersedesLua = `
local function statusOrder(value)
  local generation, rank, terminal, updatedAt = string.match(value, '^(%S+) (%S+) (%S+) (%S+)\\n')
  return tonumber(generation), tonumber(rank), terminal == '1', tonumber(updatedAt)
end

local function supersedes(nextValue, currentValue)
  local nextGeneration, nextRank, _, nextUpdatedAt = statusOrder(nextValue)
  local generation, rank, terminal, updatedAt = statusOrder(currentValue)
  if nextGeneration ~= generation then return nextGeneration > generation end
  if nextRank ~= rank then return nextRank > rank end
  if terminal then return false end
  return nextUpdatedAt > updatedAt
end
`;

/**
 * Lua `gcra(tat, now, ratePerSecond, burst, cost)`: rateLimitDecision's arithmetic in the same order on the same
 * IEEE doubles, so both give identical numbers for identical inputs. Returns allowed, newTat, remaining, resetMs
 * and retryAfterMs (math.huge: never).
 */
export const gcraLua = `
local toleranceMs = 0.001

local function gcra(tat, now, ratePerSecond, burst, cost)
  local interval = 1000 / ratePerSecond
  local function header(storedTat)
    local owed = math.max(0, storedTat - now)
    return math.max(0, math.floor((burst * interval - owed + toleranceMs) / interval)), math.ceil(owed)
  end
  if cost > burst then
    local remaining, reset = header(tat)
    return false, tat, remaining, reset, math.huge
  end
  local candidate = math.max(tat, now) + cost * interval
  local excess = candidate - now - burst * interval
  if excess <= toleranceMs then
    local remaining, reset = header(candidate)
    return true, candidate, remaining, reset, 0
  end
  local remaining, reset = header(tat)
  return false, tat, remaining, reset, excess
end

local function number(value)
  return string.format('%.17g', value)
end
`;

/**
 * Applies statuses to one batch's hash (KEYS[1]: request id → encoded status), keeping per request the one that
 * supersedes, and publishes the changed statuses as one JSON array on the batch's channel.
 * ARGV: channel, mode ('all': add new requests; 'known': only replace requests the batch already lists, for a
 * redriven request's earlier batch), then (id, encoded status, ttlMs) per status. Returns how many changed.
 */
export const applyStatusesLua = `${supersedesLua}
local changed = {}
local ttl = 0
for i = 3, #ARGV, 3 do
  local id, value, ttlMs = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local current = redis.call('HGET', KEYS[1], id)
  local wins
  if current then wins = supersedes(value, current) else wins = ARGV[2] == 'all' end
  if wins then
    redis.call('HSET', KEYS[1], id, value)
    changed[#changed + 1] = string.sub(value, string.find(value, '\\n', 1, true) + 1)
    if ttlMs > ttl then ttl = ttlMs end
  end
end
if #changed > 0 then
  -- The hash lives as long as its longest-lived status; PTTL is -1 for a hash just created.
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  redis.call('PUBLISH', ARGV[1], '[' .. table.concat(changed, ',') .. ']')
end
return tostring(#changed)
`;

/**
 * Points a request id at the batch of its latest generation (KEYS[1] = `<generation>\n<batchId>` followed by a
 * line per earlier batch of a redriven request), so that a lookup by id finds its batch's hash. ARGV:
 * generation, batchId, ttlMs. Returns {'stale'} for a status of an earlier generation, which no reader may see
 * any more, else {'apply', earlier batch ids...}: a redriven request's statuses replace its entry in the batches
 * it was in before too, so that each of them shows its latest status as the embedded store's batches do.
 */
export const pointRequestLua = `
local generation, batchId, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local current = redis.call('GET', KEYS[1])
local earlier = {}
if current then
  local lines = {}
  for line in string.gmatch(current, '[^\\n]+') do lines[#lines + 1] = line end
  local currentGeneration = tonumber(lines[1])
  if generation < currentGeneration then return {'stale'} end
  for i = 2, #lines do
    if lines[i] ~= batchId then earlier[#earlier + 1] = lines[i] end
  end
  ttl = math.max(ttl, redis.call('PTTL', KEYS[1]))
  if generation == currentGeneration and lines[2] == batchId then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return {'apply', unpack(earlier)}
  end
end
local batches = batchId
if #earlier > 0 then batches = batchId .. '\\n' .. table.concat(earlier, '\\n') end
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. batches, 'PX', ttl)
return {'apply', unpack(earlier)}
`;

/**
 * Claims an idempotency key (KEYS[1]) unless a live claim holds it: set-if-absent, where an entry whose
 * `expiresAt` (the store's clock) has passed counts as absent. ARGV: entry JSON {id, fingerprint, expiresAt},
 * ttlMs, now. Returns nil when claimed, else the holding entry.
 */
export const claimKeyLua = `
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current).expiresAt > tonumber(ARGV[3]) then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/** Deletes an idempotency key (KEYS[1]) only while ARGV[1] owns it. */
export const releaseKeyLua = `
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current).id == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Takes `cost` from the GCRA bucket of KEYS[1], a hash of `origin` (integer microseconds) and `tat` (milliseconds
 * after the origin). The clock is the server's TIME, so replicas with skewed clocks share one timeline; ARGV[4]
 * overrides it (integer microseconds) for a store on an injected clock. ARGV: ratePerSecond, burst, cost,
 * nowMicros or '', graceMs. A refused request changes nothing; an allowed one keeps the bucket until it is full
 * again (plus graceMs). Returns allowed ('1'/'0'), remaining, resetMs and retryAfterMs ('inf': never).
 */
export const rateLimitLua = `${gcraLua}
local nowMicros
if ARGV[4] ~= '' then
  nowMicros = tonumber(ARGV[4])
else
  local time = redis.call('TIME')
  nowMicros = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local stored = redis.call('HMGET', KEYS[1], 'origin', 'tat')
local origin = tonumber(stored[1]) or nowMicros
local now = (nowMicros - origin) / 1000
local tat = tonumber(stored[2]) or now
local allowed, newTat, remaining, reset, retryAfter =
  gcra(tat, now, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if allowed then
  redis.call('HSET', KEYS[1], 'origin', number(origin), 'tat', number(newTat))
  redis.call('PEXPIRE', KEYS[1], math.ceil(newTat - now) + tonumber(ARGV[5]))
end
return {allowed and '1' or '0', number(remaining), number(reset), number(retryAfter)}
`;
