-- Moves a request's newest approval in a creator's log to now (Redis TIME):
-- the moment its send ended, the latest the site can have recorded it.
--
-- Members are id@time#n (limiter.lua); the newest member of this id (the
-- highest score) is the attempt that just ended. Nothing is added: an
-- approval Redis forgot (the fence then holds everyone) stays forgotten.
--
-- A later_us (Limiter.Hold) moves it to now + later_us instead: a request
-- that got no answer may still land at the site until then, and the
-- approval counts in every window up to one span after that.
--
-- KEYS: log
-- ARGV: id, span_us[, later_us]
-- Returns: 1 if an approval was moved, else 0
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local later = math.max(tonumber(ARGV[3] or '0'), 0)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1)
local newest
for _, member in ipairs(entries) do
  if string.match(member, '^(.*)@[^@]*$') == ARGV[1] then
    newest = member
  end
end
if not newest then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + later, newest)
-- The log lives until its newest entry (perhaps another held approval,
-- further out than this one) is a span old (review 22 D, finding 4).
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tonumber(top[2]), now) + tonumber(ARGV[2]) - now) / 1000) + 1000)
return 1
