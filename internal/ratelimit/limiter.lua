-- Rolling-window limiter with reservations, for a batch of decisions.
--
-- Per creator key two sorted sets (same hash tag):
--   log  : one member per approval, score = approval time (µs, Redis TIME)
--   resv : one member per waiting message id, score = its reserved slot (µs)
--
-- Guarantee: a message is approved at time t only if fewer than `limit`
-- approvals lie in (t - window, t]. So no rolling window ever holds more than
-- `limit` approvals: the last approval of any window saw all the others.
--
-- Reservations only decide who goes next and when to come back: a denied
-- message gets the earliest slot that keeps every window of the virtual
-- schedule (approvals + reservations) at the limit, appended after the
-- slots already handed out, so a backlog drains one slot after another
-- instead of every waiting message retrying at once.
--
-- KEYS: log_1, resv_1, log_2, resv_2, ... (one pair per request)
-- ARGV: limit, window_us, grace_us, slack_us, id_1, id_2, ...
-- Returns: now_us, then per request: allowed (0/1), retry_us, remaining, slot_us
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local grace = tonumber(ARGV[3])
local slack = tonumber(ARGV[4])
local first_id = 5
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = { now }
local pruned = {}

-- Top `limit` scores of a sorted set, highest first.
local function top(key)
  local raw = redis.call('ZREVRANGE', key, 0, limit - 1, 'WITHSCORES')
  local scores = {}
  for j = 2, #raw, 2 do scores[#scores + 1] = tonumber(raw[j]) end
  return scores
end

-- Earliest slot >= now after every existing slot such that the `limit` most
-- recent slots including the new one span at least one window.
local function next_slot(log, resv)
  local a, b = top(log), top(resv)
  local merged, i, j = {}, 1, 1
  while #merged < limit and (i <= #a or j <= #b) do
    if j > #b or (i <= #a and a[i] >= b[j]) then
      merged[#merged + 1] = a[i]; i = i + 1
    else
      merged[#merged + 1] = b[j]; j = j + 1
    end
  end
  local slot = now
  if merged[1] and merged[1] > slot then slot = merged[1] end
  -- The slack absorbs how late a message comes back after its retry: the
  -- holders of earlier slots are approved late by up to that much, and the
  -- next slot must still find their approvals out of the window.
  if #merged >= limit and merged[limit] + window + slack > slot then slot = merged[limit] + window + slack end
  return slot
end

-- Decide holders of reservations first, earliest slot first, then the others
-- in the order given: returning messages keep the order of their slots.
local n = #ARGV - first_id + 1
local order, slotOf = {}, {}
for r = 1, n do
  order[r] = r
  slotOf[r] = tonumber(redis.call('ZSCORE', KEYS[2 * r], ARGV[first_id + r - 1]) or '+inf')
end
table.sort(order, function(x, y)
  if slotOf[x] ~= slotOf[y] then return slotOf[x] < slotOf[y] end
  return x < y
end)
local results = {}
for _, r in ipairs(order) do
  local log, resv, id = KEYS[2 * r - 1], KEYS[2 * r], ARGV[first_id + r - 1]
  if not pruned[log] then
    pruned[log] = true
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
    -- A reservation whose holder did not come back within the grace period
    -- is forgotten; the holder, if it ever returns, queues again.
    redis.call('ZREMRANGEBYSCORE', resv, '-inf', now - grace)
  end

  local used = redis.call('ZCARD', log)
  local reserved = redis.call('ZSCORE', resv, id)
  local allowed, retry, slot = 0, 0, 0

  if reserved then
    slot = tonumber(reserved)
    if slot > now then
      retry = slot - now
    elseif redis.call('ZCOUNT', resv, '-inf', '(' .. reserved) > 0 then
      -- An earlier slot's holder has not come back yet: let it go first, so
      -- a creator's messages leave in the order they first arrived.
      retry = math.max(slack, 1000)
    elseif used < limit then
      allowed = 1
    else
      -- Its turn has come but a late approval still fills the window: come
      -- back when the oldest approval leaves it.
      local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
      retry = tonumber(oldest[2]) + window - now
    end
  elseif used < limit and redis.call('EXISTS', resv) == 0 then
    -- Fast path: room in the window and nobody waiting.
    allowed = 1
  else
    slot = next_slot(log, resv)
    if slot <= now then
      allowed = 1
    else
      retry = slot - now
      redis.call('ZADD', resv, slot, id)
      -- slot is the latest reservation (next_slot appends), so the set lives
      -- until it is due plus the grace period.
      redis.call('PEXPIRE', resv, math.ceil((slot - now + grace) / 1000) + 1000)
    end
  end

  if allowed == 1 then
    redis.call('ZREM', resv, id)
    -- Unique per approval: a message approved again (its forward failed)
    -- spends a second token and the first one stays spent.
    redis.call('ZADD', log, now, id .. '@' .. now .. '#' .. r)
    redis.call('PEXPIRE', log, math.ceil(window / 1000) + 1000)
    used = used + 1
    slot = now
  end
  results[r] = { allowed, retry, limit - used, slot }
end
for r = 1, n do
  for _, v in ipairs(results[r]) do out[#out + 1] = v end
end
return out
