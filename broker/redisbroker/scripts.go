package redisbroker

import "github.com/redis/go-redis/v9"

// The keys of a backend whose Prefix is P, all in the hash slot of "P":
//
//	{P}:seq          the last Seq assigned (a decimal string)
//	{P}:base         the Seq before the first one this Redis assigned: an
//	                 ID at or below it is from a history Redis no longer has
//	{P}:topics       hash: topic -> the Seq of its last message
//	{P}:forgot       the newest Seq of the topics Trim dropped whole
//	{P}:ids          sorted set: caller-set event ID -> Seq
//	{P}:log          stream of every message, on every topic
//	{P}:topic:NAME   stream of the messages of topic NAME
//
// A message is the same entry in its topic's stream and in the log. Its
// entry ID is its Seq split into milliseconds and microseconds (Seq
// 1718000000123456 is entry 1718000000123-456), so that MINID trims by age
// and XRANGE reads from a Seq. Its fields:
//
//	t  topic
//	p  the Seq assigned before it, on any topic: the log is a chain, so a
//	   reader sees exactly when it missed entries
//	q  the Seq of the previous message of its topic (or {P}:forgot when the
//	   topic was dropped whole): the topic's stream is a chain too, so that
//	   Replay sees exactly when the history was trimmed after an ID
//	i  the caller-set event ID, if any
//	e  the event type, if any
//	d  the data, if not nil
//	r  the retry delay in nanoseconds, if not zero
//	c  the comment, if any

// luaHelpers is the start of every script. id turns a Seq, a string of
// digits, into its entry ID; Lua's numbers are doubles, exact for the Seqs
// of the next two centuries (below 2^53 microseconds), but division is
// not, so it splits the digits. num writes a number as its digits.
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
`

// publishScript assigns the next Seq and appends the message to its topic
// and to the log, atomically. Seq is the Redis server's time in
// microseconds, or one more than the last Seq if that is not less: unique,
// increasing, the same for every process, never reused even if Redis
// loses its data, and it says when the message was published.
//
// KEYS: seq, base, topics, forgot, ids, log, the topic's stream.
// ARGV: topic, HistorySize, HistoryAge in microseconds (0: none; an age
// that goes back before 1970 trims nothing), LogSize,
// the caller-set ID ("" if none), then the entry's event fields.
// Returns the Seq.
var publishScript = redis.NewScript(luaHelpers + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local prev = redis.call('GET', KEYS[1])
local seq
if prev then
  seq = math.max(tonumber(prev) + 1, now)
else
  prev, seq = '0', now
  redis.call('SET', KEYS[2], num(now - 1))
end
local s = num(seq)
local q = redis.call('HGET', KEYS[3], ARGV[1]) or redis.call('GET', KEYS[4]) or '0'
local entry = {'t', ARGV[1], 'p', prev, 'q', q}
for i = 6, #ARGV do entry[#entry + 1] = ARGV[i] end
local age = tonumber(ARGV[3])
if age > 0 and now - age > 0 then
  redis.call('XTRIM', KEYS[7], 'MINID', id(num(now - age)))
end
redis.call('XADD', KEYS[7], 'MAXLEN', ARGV[2], id(s), unpack(entry))
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], id(s), unpack(entry))
redis.call('HSET', KEYS[3], ARGV[1], s)
redis.call('SET', KEYS[1], s)
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[5], s, ARGV[5]) end
return s
`)

// replayScript reads, atomically, the messages of some topics published
// after an event ID, up to a Seq, and says whether the history has them
// all.
//
// KEYS: base, topics, forgot, ids, then the stream of each topic.
// ARGV: the event ID, its Seq if it is a number ("" if not), upTo, then the
// topic names.
// Returns {0, entries of the first topic, entries of the second, ...}, or
// {1, reason} for an unknown ID ("unknown", "future", "before"), or
// {2, topic} when that topic's history no longer covers the ID.
var replayScript = redis.NewScript(luaHelpers + `
local after = redis.call('ZSCORE', KEYS[4], ARGV[1])
if after then after = num(tonumber(after)) else after = ARGV[2] end
if after == '' then return {1, 'unknown'} end
local a = tonumber(after)
if a > tonumber(ARGV[3]) then return {1, 'future'} end
local base = redis.call('GET', KEYS[1])
if not base or a <= tonumber(base) then return {1, 'before'} end
local from, to = '(' .. id(after), id(ARGV[3])
local out = {0}
for i = 5, #KEYS do
  local name = ARGV[i - 1]
  local first = redis.call('XRANGE', KEYS[i], from, '+', 'COUNT', 1)
  local prev
  if #first == 0 then
    prev = redis.call('HGET', KEYS[2], name) or redis.call('GET', KEYS[3]) or '0'
  else
    prev = field(first[1][2], 'q')
  end
  if tonumber(prev) > a then return {2, name} end
  out[#out + 1] = redis.call('XRANGE', KEYS[i], from, to)
end
return out
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
