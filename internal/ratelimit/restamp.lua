-- Moves one approval in a creator's log to now (Redis TIME): the moment its
-- send ended, the latest the site can have recorded it.
--
-- The approval is named by its member (id@time#n, limiter.lua; Decision's
-- Approval), not by its id: two tasks may send one message id (one stalled
-- past its horizon while another took the message), and an end call must
-- move its own approval, never the other task's (review 22 J: the stalled
-- task's late restamp moved the other's held approval to now, and the
-- creator's next send was admitted while that send could still land).
-- Nothing is added: an approval Redis forgot (the fence then holds
-- everyone) or pruned stays gone.
--
-- A later_us (Limiter.Hold) moves it to now + later_us instead: a request
-- that got no answer may still land at the site until then, and the
-- approval counts in every window up to one span after that.
--
-- A caller that decided on another server less than one span + max_hold
-- ago (caller_server, caller_seen_us, as for limiter.lua) fences this one
-- as limiter.lua would: the fence is written with now, so this server's
-- next decisions, whoever asks, wait one span + max_hold. The caller then
-- takes this server for its last (Limiter.saw), and the fence, not its
-- memory, holds the move (review 22 L E's failback landing between a
-- send's decision and its restamp). The server and time it returns are
-- the caller's evidence, as a decision's are: a failover during a send
-- puts its restamp on the replica, and a failback to the old primary, that
-- never held it, is fenced there (review 22 Q A).
--
-- KEYS: log, fence
-- ARGV: approval, span_us, later_us, max_hold_us, caller_server, caller_seen_us
-- Returns: moved (1 if the approval was moved, else 0), now_us, server
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local later = math.max(tonumber(ARGV[3]), 0)
local fence_for = tonumber(ARGV[2]) + math.max(tonumber(ARGV[4]), 0)
local caller_server, caller_seen = ARGV[5], tonumber(ARGV[6])
if caller_server ~= '' and caller_server ~= server and caller_seen + fence_for > now then
  -- %.0f: concatenating the number itself would write 1.7e+15.
  redis.call('SET', KEYS[2], string.format('%.0f|%s', now, server))
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return { 0, now, server }
end
redis.call('ZADD', KEYS[1], 'XX', now + later, ARGV[1])
-- The log lives until its newest entry (perhaps another held approval,
-- further out than this one) is a span old (review 22 D, finding 4).
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tonumber(top[2]), now) + tonumber(ARGV[2]) - now) / 1000) + 1000)
return { 1, now, server }
