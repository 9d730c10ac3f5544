-- Sets `server` to what names the Redis server running the script: its
-- run_id (a new process) and its master_replid (a new replication history:
-- a primary demoted, resynced and promoted back keeps its run_id; review
-- 22 L), both hex. Limiter prepends it to limiter.lua and restamp.lua.
local server = (string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or '') ..
  (string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or '')
