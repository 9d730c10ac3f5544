-- Rolling-window log with an empty-Redis fence, for a batch of decisions.
--
-- Per creator key one sorted set: one member per approval, score = approval
-- time (µs, Redis TIME). One fence key per limiter holds the epoch and the
-- server: "<epoch>|<server>", the Redis time at which this server first
-- served the limiter and its INFO run_id and master_replid.
--
-- Guarantees:
--  * a message is approved at time t only if fewer than `limit` approvals
--    lie in (t - span, t], span = window + margin. So no rolling window of
--    length span ever holds more than `limit` approvals.
--  * requests are decided in the order given; once a key is denied, every
--    later request of that key in the call is denied too (with the same
--    retry), so nothing later overtakes an earlier message of a creator.
--  * a Redis without the fence key has lost (or never had) the approval logs:
--    the script writes the fence with the current time and approves nothing
--    until one span + max_hold has passed, when every approval it forgot is
--    out of every window that could still matter: an approval lies at most
--    max_hold past the moment it was made or last moved (Limiter.Hold keeps
--    an unanswered send's approval up to that far ahead), and every one the
--    lost Redis knew was made before the fence was written.
--  * a fence key written by another server (its run_id or master_replid is
--    not this one's) is a Redis that may have lost only some writes: a restart from
--    an older snapshot, a failover to a replica behind on replication. It
--    kept the fence but perhaps not the latest approvals, so it is fenced
--    the same way. A restart that lost nothing is fenced too (the script
--    cannot tell): one span + max_hold of waiting, never a second token.
--    A fence without a run_id (an epoch only, as written before) takes
--    this server's without a hold.
--  * a caller that decided on another server less than one span + max_hold
--    ago, or whose shared record (evidence_server) names another server
--    that recent, is fenced the same way, whatever the fence says: that
--    server's approvals may not be here (a failback to an old primary that
--    never saw them).
--  * with a shared record (use_record 1), nothing is decided on a server
--    the caller has not announced there, or past its announcement's reach
--    (announced_until_us): the script returns its head only (now_us, 0,
--    server) and the caller announces this server first (Limiter.announce).
--
--  * an approval is placed ahead_us past its decision (0 for the rate
--    limiter; the send gate's worst case, its max_hold): until Restamp or
--    Hold moves it, it counts as a send that may still land that late, so
--    a caller that loses the call that would move it over-charges, never
--    under-charges (review 22 H).
--
-- KEYS: fence, log_1, log_2, ... (one log per request, repeated for a key)
-- ARGV: limit, span_us, max_hold_us, ahead_us, caller_server, caller_seen_us,
-- use_record, announced_server, announced_until_us, evidence_server,
-- evidence_seen_us, id_1, id_2, ...
-- Returns: now_us, fenced (0/1), server, then per request: allowed (0/1), retry_us,
-- remaining, approval (the member written, '' when denied: Restamp and
-- Hold move exactly that one, review 22 J); the head only when an
-- announcement is needed first.
local limit = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local fence_for = span + math.max(tonumber(ARGV[3]), 0)
local ahead = math.min(math.max(tonumber(ARGV[4]), 0), math.max(tonumber(ARGV[3]), 0))
-- The server the caller decided on last and when (its Redis time, µs;
-- '' and 0: none; Limiter keeps them); with a shared record, the server
-- this caller announced there and until when that lets it decide, and the
-- most recent other server the record named at that announcement
-- (ServerRecord: '' and 0: none).
local caller_server, caller_seen = ARGV[5], tonumber(ARGV[6])
local use_record, announced_server, announced_until = ARGV[7] == '1', ARGV[8], tonumber(ARGV[9])
local evidence_server, evidence_seen = ARGV[10], tonumber(ARGV[11])
local first_id = 12
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
if use_record and (announced_server ~= server or now >= announced_until) then
  return { now, 0, server }
end

-- `server` (server.lua, prepended) names this Redis server.
local hold_until = 0
local fence = redis.call('GET', KEYS[1])
local epoch, seen
if fence then
  epoch, seen = string.match(fence, '^(%d+)|?(%x*)$')
end
-- A caller that decided on another server within the fence's reach may
-- have approvals this one never held, even where the fence names this
-- server: a failback to an old primary cut off while a replica served (it
-- never saw the replica's writes; review 22 L).
-- The shared record carries that evidence to a caller that did not see
-- the failover (another task, a new process; review 22 M A).
local function elsewhere(other, seen)
  return other ~= '' and other ~= server and seen + fence_for > now
end
local moved = elsewhere(caller_server, caller_seen) or elsewhere(evidence_server, evidence_seen)
if not epoch or (seen ~= '' and seen ~= server) or moved then
  -- %.0f: concatenating the number itself would write 1.7e+15.
  redis.call('SET', KEYS[1], string.format('%.0f|%s', now, server))
  hold_until = now + fence_for
else
  if seen ~= server then
    redis.call('SET', KEYS[1], epoch .. '|' .. server)
  end
  if tonumber(epoch) + fence_for > now then
    hold_until = tonumber(epoch) + fence_for
  end
end

local out = { now, hold_until > 0 and 1 or 0, server }
local n = #ARGV - first_id + 1
local pruned, denied = {}, {}
for r = 1, n do
  local log, id = KEYS[r + 1], ARGV[first_id + r - 1]
  local allowed, retry, remaining, approval = 0, 0, 0, ''
  if hold_until > 0 then
    retry = hold_until - now
  elseif denied[log] then
    retry = denied[log]
  else
    if not pruned[log] then
      pruned[log] = true
      redis.call('ZREMRANGEBYSCORE', log, '-inf', now - span)
    end
    local used = redis.call('ZCARD', log)
    if used < limit then
      allowed = 1
      -- Unique per approval: a message approved again (its forward failed)
      -- spends a second token and the first one stays spent. %.0f: the
      -- number itself would print as 1.7964133236549e+15, one member for
      -- two approvals of an id within 100 µs (a ZADD that spends nothing).
      approval = id .. '@' .. string.format('%.0f', now) .. '#' .. r
      redis.call('ZADD', log, now + ahead, approval)
      -- The log lives until its newest entry is a span old: a held
      -- approval (restamp.lua, Limiter.Hold) sits in the future and must
      -- not expire with the rest (review 22 D, finding 4).
      local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
      redis.call('PEXPIRE', log, math.ceil((math.max(tonumber(newest[2]), now) + span - now) / 1000) + 1000)
      remaining = limit - used - 1
    else
      -- Room comes when the limit-th most recent approval leaves the span.
      local kth = redis.call('ZREVRANGE', log, limit - 1, limit - 1, 'WITHSCORES')
      retry = math.max(tonumber(kth[2]) + span - now, 1)
      denied[log] = retry
    end
  end
  out[#out + 1] = allowed
  out[#out + 1] = retry
  out[#out + 1] = remaining
  out[#out + 1] = approval
end
return out
