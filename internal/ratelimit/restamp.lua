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
-- It returns the server it ran on (server.lua, prepended) and its time:
-- the caller saw that server, as on a decision (Limiter.saw). A failover
-- during a send puts its restamp on the replica, and a failback to the
-- old primary, that never held it, is fenced for the caller that ran it
-- (review 22 Q A).
--
-- KEYS: log
-- ARGV: approval, span_us[, later_us]
-- Returns: moved (1 if the approval was moved, else 0), now_us, server
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local later = math.max(tonumber(ARGV[3] or '0'), 0)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return { 0, now, server }
end
redis.call('ZADD', KEYS[1], 'XX', now + later, ARGV[1])
-- The log lives until its newest entry (perhaps another held approval,
-- further out than this one) is a span old (review 22 D, finding 4).
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tonumber(top[2]), now) + tonumber(ARGV[2]) - now) / 1000) + 1000)
return { 1, now, server }
