package redisbroker

import "github.com/redis/go-redis/v9"

// The keys of a backend whose Prefix is P, all in the hash slot of "P":
//
//	{P}:seq          the last Seq assigned (a decimal string)
//	{P}:base         the Seq before the first one this Redis assigned, or
//	                 the last one a process delivered before Redis lost
//	                 data: an ID at or below it is from a history Redis
//	                 no longer has
//	{P}:topics       hash: topic -> the Seq of its last message
//	{P}:losses       how many times a process found that Redis lost data
//	{P}:epoch        a random value set when a process finds it missing:
//	                 it changes only when Redis lost its keys
//	{P}:forgot       the newest Seq of the topics Trim dropped whole
//	{P}:ids          sorted set: caller-set event ID -> Seq
//	{P}:log          stream of every message, on every topic
//	{P}:topic:NAME   stream of the messages of topic NAME
//	{P}:pub:KEY      the Seq a Publish call stored its event under, KEY
//	                 being the call's own (an instance's random ID and a
//	                 counter); it expires a little after the call's
//	                 deadline
//	{P}:stored:I     the Seq of the last event the process whose instance
//	                 ID is I stored; it expires ackedKeep after that
//
// and those of the processes in DeliverInterest mode (see interest.go),
// each named by its instance ID I:
//
//	{P}:alive        sorted set: I -> until when (microseconds on the
//	                 server's clock) it counts as alive
//	{P}:inboxes      hash: I -> the Seq of the last message copied into
//	                 its inbox
//	{P}:inbox:I      stream: the messages of the topics I watches
//	{P}:watch:NAME   set: the processes that watch topic NAME
//	{P}:watching:I   set: the topics I watches
//
// A message is the same entry in its topic's stream and in the log. Its
// entry ID is its Seq split into milliseconds and microseconds (Seq
// 1718000000123456 is entry 1718000000123-456), so that MINID trims by age
// and XRANGE reads from a Seq. Its fields:
//
//	t  topic
//	p  the Seq assigned before it, on any topic: the log is a chain, so a
//	   reader sees exactly when it missed entries; in an inbox, the Seq of
//	   the inbox's message before it (or the Seq its process registered
//	   at): an inbox is a chain too
//	q  the Seq of the previous message of its topic (or {P}:forgot when the
//	   topic was dropped whole): the topic's stream is a chain too, so that
//	   Replay sees exactly when the history was trimmed after an ID
//	i  the caller-set event ID, if any
//	e  the event type, if any
//	d  the data, if not nil
//	r  the retry delay in nanoseconds, if not zero
//	c  the comment, if any
//	b  in its topic's stream: the bytes the topic's history counted up to
//	   and including it (see cost in luaHelpers), since the stream was
//	   made; the history holds the difference between its last entry's
//	   and the bytes counted before its first, whatever trimmed it

// luaHelpers is the start of every script. id turns a Seq, a string of
// digits, into its entry ID; Lua's numbers are doubles, exact for the Seqs
// of the next two centuries (below 2^53 microseconds), but division is
// not, so it splits the digits. num writes a number as its digits. cost
// is the bytes Config.HistoryBytes counts for an entry's fields (those of
// field b aside), and before the bytes its topic counted before entry e.
const luaHelpers = `
local function id(s)
  if #s <= 3 then return '0-' .. tonumber(s) end
  return s:sub(1, -4) .. '-' .. tonumber(s:sub(-3))
end
local function num(x) return string.format('%.0f', x) end
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
end
local function cost(fields)
  local n = 64
  for i = 1, #fields, 2 do
    if fields[i] ~= 'b' then n = n + #fields[i] + #fields[i + 1] end
  end
  return n
end
local function before(e)
  return (tonumber(field(e[2], 'b')) or 0) - cost(e[2])
end
`

// publishScript assigns the next Seq and appends the message to its topic
// and to the log, atomically. Seq is the Redis server's time in
// microseconds, or one more than the last Seq if that is not less: unique,
// increasing, the same for every process, never reused even if Redis
// loses its data, and it says when the message was published.
//
// The topic's stream is trimmed by age (MINID), by count (MAXLEN), then
// by bytes: while the bytes it counts exceed HistoryBytes, its oldest
// entries go (it reads them from the oldest in batches of 1, 2, 4, ...
// 128 until it finds the first to keep: at most twice as many as it
// drops, and one more, so a publish costs O(1) amortised); a
// message bigger than HistoryBytes goes to the log only, and the stream is
// deleted. Every trim takes the oldest entries, and field q of the next
// one, or the topics hash, still names the message before, so Replay's
// gap check stays exact.
//
// It is idempotent: every request of one Publish call (go-redis's
// retries, and the backend's own) carries the call's key and deadline, a
// time on the Redis server's clock. The first request to run stores the
// event and, in the call's key, its Seq, kept until the deadline has
// passed and keep more milliseconds; a request that finds the key returns
// that Seq and stores nothing; a request that runs after the deadline
// stores nothing either: so whenever a request arrives, however late, the
// event is stored once at most, and never after the deadline. Within keep
// after the deadline, a late request can still tell for sure whether the
// event was stored.
//
// Its first write is the SET of the call's key, before anything is
// trimmed: Redis checks a script without flags against maxmemory at its
// first write, if that write is a command that may grow the data; so a
// Redis out of memory under maxmemory-policy noeviction refuses the script
// with its OOM error before it has changed anything. Before that it only
// reads, so that a request finding its event stored is answered even
// then. (A shebang's flags would have Redis refuse the script before it
// starts, that answer included, and need Redis 7.)
//
// Before its first write it checks that Redis still has what this
// process was told it stored: ARGV[9] is the greatest Seq a Publish of the
// process was answered with, and {P}:stored:I, which every store sets,
// must not be less. If it is, Redis lost writes it had acknowledged (a
// replica that was behind took over, and the log reader had not read
// them yet, so that no chain shows it): the script stores nothing and
// says so, with what Redis has, and the process handles the loss. It
// looks only while the key must still be there (a Seq less than
// ackedCheck old).
//
// Last it copies the message into the inbox of every process that watches
// the topic and is alive, chained by field p to the inbox's previous
// message ({P}:inboxes), trimmed to about LogSize; an XADD that fails (an
// inbox whose last entry is newer, which only a loss of some keys makes)
// is skipped, the process learns of it from the chain.
//
// KEYS: seq, base, topics, forgot, ids, log, the topic's stream, the
// call's key, the topic's watchers, alive, inboxes, the process's stored
// key.
// ARGV: topic, HistorySize, HistoryAge in microseconds (0: none; an age
// that goes back before 1970 trims nothing), LogSize, HistoryBytes (-1:
// none), the caller-set ID ("" if none), the deadline in microseconds
// since 1970 on the server's clock, keep in milliseconds, the greatest Seq
// a Publish of the process was answered with (0 if none), ackedCheck and
// ackedKeep in milliseconds, then the entry's event fields.
// Returns {status, Seq, the server's clock in microseconds}, status being
// one of the pub* constants.
var publishScript = redis.NewScript(luaHelpers + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local done = redis.call('GET', KEYS[8])
if done then return {2, done, num(now)} end
local deadline, keep = tonumber(ARGV[7]), tonumber(ARGV[8])
if now > deadline + keep * 1000 then return {4, '', num(now)} end
if now > deadline then return {3, '', num(now)} end
local acked = tonumber(ARGV[9])
if acked > 0 and now - acked < tonumber(ARGV[10]) * 1000 then
  local stored = redis.call('GET', KEYS[12]) or '0'
  if tonumber(stored) < acked then return {5, stored, num(now)} end
end
local prev = redis.call('GET', KEYS[1])
local seq
if prev then seq = math.max(tonumber(prev) + 1, now) else seq = now end
local s = num(seq)
-- The first write. Redis refuses a script that runs out of memory only
-- at its first write, and only if that one may grow the data (SET may,
-- XTRIM may not): a script whose first write is a trim would go on past
-- the limit.
redis.call('SET', KEYS[8], s, 'PX', num(math.floor((deadline - now) / 1000) + 1 + keep))
redis.call('SET', KEYS[1], s)
redis.call('SET', KEYS[12], s, 'PX', ARGV[11])
if not prev then
  prev = '0'
  redis.call('SET', KEYS[2], num(now - 1))
end
local q = redis.call('HGET', KEYS[3], ARGV[1]) or redis.call('GET', KEYS[4]) or '0'
local entry = {'t', ARGV[1], 'p', prev, 'q', q}
for i = 12, #ARGV do entry[#entry + 1] = ARGV[i] end
local feed = {unpack(entry)}
local age = tonumber(ARGV[3])
if age > 0 and now - age > 0 then
  redis.call('XTRIM', KEYS[7], 'MINID', id(num(now - age)))
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], id(s), unpack(entry))
local limit, c = tonumber(ARGV[5]), cost(entry)
if limit >= 0 and c > limit then
  redis.call('DEL', KEYS[7])
else
  local last = redis.call('XREVRANGE', KEYS[7], '+', '-', 'COUNT', 1)
  local total = c
  if #last > 0 then total = total + (tonumber(field(last[1][2], 'b')) or 0) end
  entry[#entry + 1] = 'b'
  entry[#entry + 1] = num(total)
  redis.call('XADD', KEYS[7], 'MAXLEN', ARGV[2], id(s), unpack(entry))
  local from, n = '-', 1
  while limit >= 0 do
    local batch = redis.call('XRANGE', KEYS[7], from, '+', 'COUNT', n)
    if #batch == 0 then break end
    local keep
    for _, e in ipairs(batch) do
      if total - before(e) <= limit then keep = e[1] break end
    end
    if keep then
      if keep ~= batch[1][1] or from ~= '-' then redis.call('XTRIM', KEYS[7], 'MINID', keep) end
      break
    end
    from, n = '(' .. batch[#batch][1], math.min(n * 2, 128)
  end
end
redis.call('HSET', KEYS[3], ARGV[1], s)
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[5], s, ARGV[6]) end
local watchers = redis.call('SMEMBERS', KEYS[9])
if #watchers > 0 then
  local inbox = string.sub(KEYS[10], 1, -6) .. 'inbox:'
  for _, w in ipairs(watchers) do
    local until_ = redis.call('ZSCORE', KEYS[10], w)
    if until_ and tonumber(until_) >= now then
      feed[4] = redis.call('HGET', KEYS[11], w) or '0'
      local ok = redis.pcall('XADD', inbox .. w, 'MAXLEN', '~', ARGV[4], id(s), unpack(feed))
      if type(ok) ~= 'table' or not ok.err then redis.call('HSET', KEYS[11], w, s) end
    end
  end
end
return {1, s, num(now)}
`)

// The statuses publishScript returns.
const (
	pubStored    = 1 // stored now
	pubFound     = 2 // stored by an earlier request of the same call
	pubLate      = 3 // not stored: the deadline has passed, and no request of the call stored it
	pubForgotten = 4 // not stored by this request; too long after the deadline to tell about the others
	pubLost      = 5 // not stored: Redis lost an event this process stored, its Seq being that of the last it has
)

// replayScript reads, atomically, the messages of some topics published
// after an event ID, up to a Seq, and says whether the history has them
// all.
//
// An ID that is a number is a Seq only if a message had it: Seqs are the
// server's clock, so most numbers between two of them were never
// assigned, and a replay from one would start wherever it falls. It is
// known if the log still has its message, or if one of the topics links
// to it (field q of the topic's first message after it, or the topic's
// last Seq in the topics hash, is that number): the message was the
// topic's, whether or not the topic keeps it.
//
// KEYS: base, topics, forgot, ids, log, then the stream of each topic.
// ARGV: the event ID, its Seq if it is a number ("" if not), upTo, then the
// topic names.
// Returns {0, entries of the first topic, entries of the second, ...}, or
// {1, reason} for an unknown ID ("unknown", "future", "before",
// "unassigned"), or {2, topic} when that topic's history no longer covers
// the ID.
var replayScript = redis.NewScript(luaHelpers + `
local after = redis.call('ZSCORE', KEYS[4], ARGV[1])
local known = after and true or false
if after then after = num(tonumber(after)) else after = ARGV[2] end
if after == '' then return {1, 'unknown'} end
local a = tonumber(after)
if a > tonumber(ARGV[3]) then return {1, 'future'} end
local base = redis.call('GET', KEYS[1])
if not base or a <= tonumber(base) then return {1, 'before'} end
local from, to = '(' .. id(after), id(ARGV[3])
local out = {0}
local gap
for i = 6, #KEYS do
  local name = ARGV[i - 2]
  local first = redis.call('XRANGE', KEYS[i], from, '+', 'COUNT', 1)
  local prev
  if #first == 0 then
    prev = redis.call('HGET', KEYS[2], name) or redis.call('GET', KEYS[3]) or '0'
  else
    prev = field(first[1][2], 'q')
  end
  local p = tonumber(prev)
  if p == a then known = true end
  if p > a and not gap then gap = name end
  out[#out + 1] = redis.call('XRANGE', KEYS[i], from, to)
end
if not known and #redis.call('XRANGE', KEYS[5], id(after), id(after)) == 0 then
  return {1, 'unassigned'}
end
if gap then return {2, gap} end
return out
`)

// lossScript records that Redis lost messages a process delivered or
// published, up to a Seq: IDs up to it become unknown (base), and the next
// Seq comes after it (seq), whatever the server's clock says. Both only
// grow. When it changed either, and the process found the loss itself, it
// counts a loss in losses, which every process watches: a loss another
// process found is theirs too. One that learned of it from losses does
// not count it again: two processes delivering and publishing would
// otherwise count each other's repair, again and again.
//
// It also raises the process's stored key to the greatest Seq its
// Publish calls were answered with, so that the publish script's check
// passes again; a process that lost some of them (the check failed)
// counts the loss whatever else changed.
//
// KEYS: seq, base, losses, the process's stored key.
// ARGV: the last Seq the process delivered or published, 1 to count the
// loss if it changed anything (0 not to), the greatest Seq the process's
// Publish calls were answered with (0 if none), ackedKeep in milliseconds.
// Returns the number of losses recorded.
var lossScript = redis.NewScript(`
local s = tonumber(ARGV[1])
local changed = false
local acked = tonumber(ARGV[3])
if acked > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') < acked then
  redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
  changed = true
end
local seq = redis.call('GET', KEYS[1])
if not seq or tonumber(seq) < s then redis.call('SET', KEYS[1], ARGV[1]) changed = true end
local base = redis.call('GET', KEYS[2])
if not base or tonumber(base) < s then redis.call('SET', KEYS[2], ARGV[1]) changed = true end
if changed and ARGV[2] == '1' then return redis.call('INCR', KEYS[3]) end
return tonumber(redis.call('GET', KEYS[3]) or '0')
`)

// trimScript trims topics by age, and drops the topics left empty,
// remembering in forgot the newest Seq they had.
//
// KEYS: topics, forgot, then the stream of each topic.
// ARGV: the oldest entry ID to keep ("" for no age limit), then the topic
// names.
// Returns the entry ID of the oldest message left in each topic that has
// one.
var trimScript = redis.NewScript(`
local firsts = {}
for i = 3, #KEYS do
  local name = ARGV[i - 1]
  if ARGV[1] ~= '' then redis.call('XTRIM', KEYS[i], 'MINID', ARGV[1]) end
  local first = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)
  if #first == 0 then
    local last = redis.call('HGET', KEYS[1], name)
    if last then
      local f = redis.call('GET', KEYS[2])
      if not f or tonumber(last) > tonumber(f) then redis.call('SET', KEYS[2], last) end
      redis.call('HDEL', KEYS[1], name)
    end
    redis.call('DEL', KEYS[i])
  else
    firsts[#firsts + 1] = first[1][1]
  end
end
return firsts
`)
