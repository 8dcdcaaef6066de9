package redisbroker

// This file owns interest-based delivery (Config.Delivery
// DeliverInterest): the process's inbox, its registration in Redis, and
// Watch and Unwatch. The log reader (tail.go) reads the inbox instead of
// the log.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
)

// watchScript adds topics to those a process watches, if it is alive,
// and says where the handover is: the last Seq assigned, after which every
// message of the topics goes to its inbox, and the last Seq copied into
// its inbox, up to which the reader must have read for every message
// before of the topics watched before to be delivered. With no topics it
// is what Sync asks.
//
// KEYS: alive, inboxes, seq, the process's watching, then each topic's
// watchers.
// ARGV: the instance ID, then the topic names.
// Returns {0} if the process does not count as alive (it must register
// again first), or {1, last Seq, last Seq of its inbox}.
var watchScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not until_ or tonumber(until_) < now then return {0} end
for i = 5, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[i - 3])
end
return {1, redis.call('GET', KEYS[3]) or '0', redis.call('HGET', KEYS[2], ARGV[1]) or '0'}
`)

// unwatchScript takes topics out of those a process watches.
//
// KEYS: the process's watching, then each topic's watchers.
// ARGV: the instance ID, then the topic names.
var unwatchScript = redis.NewScript(`
for i = 2, #KEYS do
  redis.call('SREM', KEYS[i], ARGV[1])
  redis.call('SREM', KEYS[1], ARGV[i])
end
return 1
`)

// aliveScript extends the time a process counts as alive, if it still
// does: one that no longer does (it said nothing for too long, or Redis
// lost the key) must register again, since Publish has not copied
// messages into its inbox meanwhile. It also says how many topics Redis
// has the process watch, which the process compares with its own count.
//
// KEYS: alive, the process's watching. ARGV: the instance ID, for how
// long in microseconds.
// Returns {1 if it was alive else 0, the number of topics watched}.
var aliveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = redis.call('SCARD', KEYS[2])
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not until_ or tonumber(until_) < now then return {0, n} end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
return {1, n}
`)

// registerScript makes a process alive and has it watch exactly the
// given topics, atomically: from the last Seq assigned, which it returns,
// on, every message of them goes to its inbox, whose chain goes on from
// that Seq. It also returns the inbox's last entry ID, after which the
// reader goes on: what the inbox has up to it is older, and the reader
// reads it from the topics' histories instead.
//
// KEYS: alive, inboxes, seq, the process's watching, its inbox, then each
// topic's watchers.
// ARGV: the instance ID, for how long in microseconds, the prefix of the
// watchers' keys, then the topic names.
// Returns {last Seq, the inbox's last entry ID}.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  redis.call('SREM', ARGV[3] .. name, ARGV[1])
end
redis.call('DEL', KEYS[4])
for i = 6, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[i - 2])
end
local h = redis.call('GET', KEYS[3]) or '0'
redis.call('HSET', KEYS[2], ARGV[1], h)
local top = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
local pos = '0-0'
if #top > 0 then pos = top[1][1] end
return {h, pos}
`)

// dropScript deletes a process's inbox and interest: it closed, or it has
// not counted as alive for a while.
//
// KEYS: alive, inboxes, the process's watching, its inbox.
// ARGV: the instance ID, the prefix of the watchers' keys.
var dropScript = redis.NewScript(`
for _, name in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('SREM', ARGV[2] .. name, ARGV[1])
end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// catchUpScript reads, atomically, the messages of some topics after a
// Seq and up to another, and says for each whether its history still has
// every message after the first: the first message it keeps after it must
// name (field q) one that is not newer, and a topic with none must not
// have had a message since.
//
// KEYS: topics, then the stream of each topic.
// ARGV: the Seq after which, the Seq up to which, then the topic names.
// Returns, for each topic, {1 if messages are missing else 0, entries}.
var catchUpScript = redis.NewScript(luaHelpers + `
local after = tonumber(ARGV[1])
local from, to = '(' .. id(ARGV[1]), id(ARGV[2])
local out = {}
for i = 2, #KEYS do
  local first = redis.call('XRANGE', KEYS[i], from, '+', 'COUNT', 1)
  local missing = 0
  if #first > 0 then
    if tonumber(field(first[1][2], 'q')) > after then missing = 1 end
  else
    local last = redis.call('HGET', KEYS[1], ARGV[i + 1])
    if last and tonumber(last) > after and tonumber(last) <= tonumber(ARGV[2]) then missing = 1 end
  end
  out[#out + 1] = {missing, redis.call('XRANGE', KEYS[i], from, to)}
end
return out
`)

// catchUpBatch is how many topics one run of catchUpScript reads.
const catchUpBatch = 200

// interestTimeout bounds the requests of Unwatch and of Close's drop.
const interestTimeout = 2 * time.Second

// Watch implements [broker.Interested]: with DeliverInterest, one script
// adds this process to the watchers of topics (Publish copies their
// messages into its inbox from then on) and returns the last Seq
// assigned; Watch returns it once the reader has read the inbox as far as
// it went then, so that every message of the topics watched before, up to
// that Seq, has been delivered. A process that no longer counts as alive
// (see Config.Delivery) registers again first. With DeliverAll every topic
// is delivered anyway: Watch returns 0 and does nothing.
func (b *Backend) Watch(ctx context.Context, topics []string) (from uint64, err error) {
	if !b.interest {
		return 0, nil
	}
	if b.closed.Load() {
		return 0, broker.ErrClosed
	}
	k := b.keys
	ks := make([]string, 0, 4+len(topics))
	ks = append(ks, k.alive, k.inboxes, k.seq, k.watching+b.instance)
	args := make([]any, 0, 1+len(topics))
	args = append(args, b.instance)
	for _, t := range topics {
		ks = append(ks, k.watch+t)
		args = append(args, t)
	}
	for {
		b.imu.Lock()
		b.mu.Lock()
		registered := b.registered
		b.mu.Unlock()
		head, inbox, alive, err := b.runWatch(ctx, ks, args)
		if err == nil && alive {
			for _, t := range topics {
				b.watching[t] = struct{}{}
				delete(b.unwatchLater, t)
			}
			b.watchedN.Store(int64(len(b.watching)))
		}
		b.imu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("redisbroker: watching: %w", err)
		}
		if alive {
			if err := b.waitDelivered(ctx, inbox); err != nil {
				b.Unwatch(topics)
				return 0, err
			}
			return head, nil
		}
		// Publish has not copied messages into the inbox for a while:
		// the reader registers this process again, and reads what it
		// missed from the histories.
		b.wake()
		if err := b.waitRegistered(ctx, registered); err != nil {
			return 0, err
		}
	}
}

// runWatch runs watchScript.
func (b *Backend) runWatch(ctx context.Context, ks []string, args []any) (head, inbox uint64, alive bool, err error) {
	reply, err := watchScript.Run(ctx, b.client, ks, args...).Slice()
	if err != nil {
		return 0, 0, false, err
	}
	if len(reply) == 1 {
		return 0, 0, false, nil
	}
	if len(reply) != 3 {
		return 0, 0, false, errBadReply
	}
	h, _ := reply[1].(string)
	i, _ := reply[2].(string)
	head, err1 := strconv.ParseUint(h, 10, 64)
	inbox, err2 := strconv.ParseUint(i, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false, errBadReply
	}
	return head, inbox, true, nil
}

// Unwatch implements [broker.Interested]: with DeliverInterest, one
// script takes this process out of the watchers of topics. When Redis
// cannot be reached, the reader tries again later; meanwhile the messages
// of the topics go on reaching the inbox, and the broker drops them. With
// DeliverAll it does nothing.
func (b *Backend) Unwatch(topics []string) {
	if !b.interest || len(topics) == 0 {
		return
	}
	b.imu.Lock()
	defer b.imu.Unlock()
	for _, t := range topics {
		delete(b.watching, t)
		b.unwatchLater[t] = struct{}{}
	}
	defer b.watchedN.Store(int64(len(b.watching))) // once Redis was told
	if b.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), interestTimeout)
	defer cancel()
	b.unwatchLocked(ctx)
}

// unwatchLocked takes the topics of b.unwatchLater out of those this
// process watches, in Redis. b.imu is held.
func (b *Backend) unwatchLocked(ctx context.Context) {
	if len(b.unwatchLater) == 0 {
		return
	}
	k := b.keys
	ks := []string{k.watching + b.instance}
	args := []any{b.instance}
	for t := range b.unwatchLater {
		ks = append(ks, k.watch+t)
		args = append(args, t)
	}
	if err := unwatchScript.Run(ctx, b.client, ks, args...).Err(); err != nil {
		return // the reader tries again
	}
	clear(b.unwatchLater)
}

// wake has the reader look at once whether this process still counts as
// alive, waking it from XREAD.
func (b *Backend) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
	if id := b.tailID.Load(); id != 0 {
		if node := b.tailNode.Load(); node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), interestTimeout)
			node.ClientUnblock(ctx, id)
			cancel()
		}
	}
}

// waitRegistered waits until the reader has registered this process
// since it had registered it gen times.
func (b *Backend) waitRegistered(ctx context.Context, gen uint64) error {
	for {
		b.mu.Lock()
		done, ch := b.registered > gen, b.registeredCh
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.quit:
			return broker.ErrClosed
		}
	}
}

// waitDelivered waits until the reader has delivered the messages of its
// feed up to Seq seq.
func (b *Backend) waitDelivered(ctx context.Context, seq uint64) error {
	for {
		b.mu.Lock()
		done, advanced := b.delivered >= seq, b.advanced
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.quit:
			return broker.ErrClosed
		}
	}
}

// syncInterest is Sync with DeliverInterest: it waits until the reader
// has read the inbox as far as it went when Sync was called.
func (b *Backend) syncInterest(ctx context.Context) error {
	ks := []string{b.keys.alive, b.keys.inboxes, b.keys.seq, b.keys.watching + b.instance}
	args := []any{b.instance}
	for {
		seen := b.seen.Load()
		b.mu.Lock()
		registered := b.registered
		b.mu.Unlock()
		head, inbox, alive, err := b.runWatch(ctx, ks, args)
		if err != nil {
			return fmt.Errorf("redisbroker: %w", err)
		}
		if head < seen {
			if err := b.checkLoss(ctx); err != nil {
				return err
			}
			continue
		}
		if alive {
			return b.waitDelivered(ctx, inbox)
		}
		b.wake()
		if err := b.waitRegistered(ctx, registered); err != nil {
			return err
		}
	}
}

// stayAlive tells Redis this process is alive, and registers it again if
// it no longer counted as alive, if Redis does not have it watch as many
// topics as it does, or after a loss; it retries the Unwatch calls that
// failed. It returns the Seq the inbox's chain goes on from and the entry
// ID the reader goes on after, when it registered again (0 and "" if
// not), after delivering, from the histories, what the topics watched
// had from Seq last on. The reader calls it.
func (b *Backend) stayAlive(ctx context.Context, deliver func(broker.Message), last uint64) (chain uint64, pos string, err error) {
	k := b.keys
	b.imu.Lock()
	forced := b.reregister.Swap(false)
	defer func() {
		if err != nil && forced {
			b.reregister.Store(true) // the next attempt registers
		}
	}()
	if !forced {
		reply, err := aliveScript.Run(ctx, b.client, []string{k.alive, k.watching + b.instance},
			b.instance, b.cfg.aliveFor.Microseconds()).Int64Slice()
		if err == nil && len(reply) != 2 {
			err = errBadReply
		}
		if err != nil {
			b.imu.Unlock()
			return 0, "", err
		}
		b.unwatchLocked(ctx)
		// Alive, and Redis has every topic watched: a failover to a
		// replica that was behind may have lost a Watch, which no Seq
		// shows.
		if reply[0] == 1 && (len(b.unwatchLater) > 0 || reply[1] == int64(len(b.watching))) {
			b.imu.Unlock()
			return 0, "", nil
		}
	}
	topics := make([]string, 0, len(b.watching))
	for t := range b.watching {
		topics = append(topics, t)
	}
	ks := make([]string, 0, 5+len(topics))
	ks = append(ks, k.alive, k.inboxes, k.seq, k.watching+b.instance, k.inbox+b.instance)
	args := make([]any, 0, 3+len(topics))
	args = append(args, b.instance, b.cfg.aliveFor.Microseconds(), k.watch)
	for _, t := range topics {
		ks = append(ks, k.watch+t)
		args = append(args, t)
	}
	reply, err := registerScript.Run(ctx, b.client, ks, args...).StringSlice()
	if err == nil {
		clear(b.unwatchLater)
	}
	b.imu.Unlock()
	if err != nil {
		return 0, "", err
	}
	if len(reply) != 2 {
		return 0, "", errBadReply
	}
	head, err := strconv.ParseUint(reply[0], 10, 64)
	if err != nil {
		return 0, "", errBadReply
	}
	if head > last {
		if err := b.catchUpTopics(ctx, deliver, topics, last, head); err != nil {
			return 0, "", err
		}
	}
	b.reregistered.Add(1)
	return max(head, last), reply[1], nil
}

// registeredNow records a registration, and wakes those waiting for one.
func (b *Backend) registeredNow() {
	b.mu.Lock()
	b.registered++
	close(b.registeredCh)
	b.registeredCh = make(chan struct{})
	b.mu.Unlock()
}

// catchUpTopics delivers, in Seq order, the messages of topics after Seq
// after and up to Seq upTo, from their histories, and reports lost the
// topics whose histories no longer have them all.
func (b *Backend) catchUpTopics(ctx context.Context, deliver func(broker.Message), topics []string, after, upTo uint64) error {
	var msgs []broker.Message
	var missing []string
	for batch := range slices.Chunk(topics, catchUpBatch) {
		ks := make([]string, 0, 1+len(batch))
		ks = append(ks, b.keys.topics)
		args := make([]any, 0, 2+len(batch))
		args = append(args, strconv.FormatUint(after, 10), strconv.FormatUint(upTo, 10))
		for _, t := range batch {
			ks = append(ks, b.keys.topic+t)
			args = append(args, t)
		}
		reply, err := catchUpScript.Run(ctx, b.client, ks, args...).Slice()
		if err != nil {
			return err
		}
		if len(reply) != len(batch) {
			return errBadReply
		}
		for i, r := range reply {
			pair, ok := r.([]any)
			if !ok || len(pair) != 2 {
				return errBadReply
			}
			if gone, _ := pair[0].(int64); gone == 1 {
				missing = append(missing, batch[i])
			}
			entries, err := luaEntries(pair[1])
			if err != nil {
				return err
			}
			for _, e := range entries {
				msg, _, err := decode(e)
				if err != nil {
					b.cfg.ErrorHandler(fmt.Errorf("redisbroker: skipping history entry: %w", err))
					continue
				}
				msgs = append(msgs, msg)
			}
		}
	}
	slices.SortFunc(msgs, func(x, y broker.Message) int { return cmpSeq(x.Seq, y.Seq) })
	if len(missing) > 0 {
		b.lost.Add(1)
		err := fmt.Errorf("%w: messages of %d topics after Seq %d are no longer in Redis (their histories were trimmed while this process could not read its inbox)",
			ErrLost, len(missing), after)
		b.cfg.ErrorHandler(err)
		b.mu.Lock()
		lost := b.lostFn
		b.mu.Unlock()
		if lost != nil {
			lost(broker.Loss{Topics: missing, Err: err})
		}
	}
	for _, msg := range msgs {
		b.deliveredN.Add(1) // first, as in tail
		b.see(msg.Seq)
		deliver(msg)
		b.recovered.Add(1)
	}
	return nil
}

func cmpSeq(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// dropSelf deletes this process's inbox and interest, when it closes.
func (b *Backend) dropSelf() {
	ctx, cancel := context.WithTimeout(context.Background(), interestTimeout)
	defer cancel()
	b.drop(ctx, b.instance)
}

// drop deletes instance's inbox and interest.
func (b *Backend) drop(ctx context.Context, instance string) error {
	k := b.keys
	return dropScript.Run(ctx, b.client, []string{k.alive, k.inboxes, k.watching + instance, k.inbox + instance},
		instance, k.watch).Err()
}

// dropDead deletes the inboxes and interest of the processes that have not
// counted as alive for deadGrace: they closed without saying so, or have
// been cut off from Redis for long. One that comes back registers again.
// Trim calls it.
func (b *Backend) dropDead(ctx context.Context) error {
	t, err := b.client.Time(ctx).Result()
	if err != nil {
		return fmt.Errorf("redisbroker: %w", err)
	}
	dead, err := b.client.ZRangeByScore(ctx, b.keys.alive, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(t.Add(-deadGrace).UnixMicro(), 10), Count: 100,
	}).Result()
	if err != nil {
		return fmt.Errorf("redisbroker: %w", err)
	}
	for _, instance := range dead {
		if err := b.drop(ctx, instance); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("redisbroker: dropping the inbox of a process gone: %w", err)
		}
	}
	return nil
}
