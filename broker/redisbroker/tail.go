package redisbroker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/echosse/echo-sse/broker"
)

const (
	// readCount is how many entries one XREAD returns at most.
	readCount = 1000

	// block is how long one XREAD waits for new entries. go-redis gives
	// the read 10 s more before it gives up on the connection, so a
	// connection that died silently is replaced within 15 s.
	block = 5 * time.Second

	// lossCheckEvery is how often, at most, the log reader looks whether
	// Redis lost data: at every XREAD when the log is idle, every few.
	lossCheckEvery = time.Second

	// interestCheckEvery is lossCheckEvery with DeliverInterest.
	interestCheckEvery = 250 * time.Millisecond
)

// node returns the client of the server that has the backend's keys: on a
// cluster, of the master of their hash slot, as the cluster says now.
func (b *Backend) node(ctx context.Context) (*redis.Client, error) {
	switch c := b.client.(type) {
	case *redis.ClusterClient:
		// After a failover the slot has a new master: ask again.
		c.ReloadState(ctx)
		return c.MasterForKey(ctx, b.keys.log)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("redisbroker: a %T has no connection of its own to give", b.client)
}

// tailConn is the log reader's connection, whose ID Close can unblock. It
// comes from a client of its own, made from the node's options, rather
// than from node.Conn(): a Conn shares its client's Options, and go-redis
// (v9.23) writes them during a connection's first handshake under the lock
// of whichever of the two dials, so a Conn and its client dialling at once
// race (the race detector saw it on a cluster failover).
// The client's AddHook hooks do not apply to it.
type tailConn struct {
	*redis.Conn
	client *redis.Client
}

// dialTail returns a tailConn to node.
func dialTail(node *redis.Client) *tailConn {
	o := *node.Options()
	// The one field of the options go-redis writes while in use, so
	// neither read nor shared: a blocking reader has no use for
	// maintenance notifications, and reconnects when its server moves.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 0, 0
	c := redis.NewClient(&o)
	return &tailConn{Conn: c.Conn(), client: c}
}

// Close closes the connection and its client.
func (t *tailConn) Close() {
	t.Conn.Close()
	t.client.Close()
}

// tail reads its feed (the log, or with DeliverInterest the process's
// inbox) after the entry pos, the messages up to Seq last being
// delivered, and delivers every message it reads, in order, until Close.
// It is the backend's goroutine.
func (b *Backend) tail(deliver func(broker.Message), last uint64, pos string) {
	defer close(b.tailDone)
	ctx := context.Background()
	var conn *tailConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	feed := b.keys.log
	if b.interest {
		feed = b.keys.inbox + b.instance
	}
	// With DeliverInterest, stayAlive tells Redis this process is alive,
	// and registers it again if it no longer counted as such: it
	// delivers what the topics watched had since last, and the reader
	// goes on after the inbox's entry it says.
	stayAlive := func(ctx context.Context) (registered bool, err error) {
		if !b.interest {
			return false, nil
		}
		chain, at, err := b.stayAlive(ctx, deliver, last)
		if err != nil && redis.IsOOMError(err) {
			// Redis at its memory limit (noeviction) refuses the
			// write that says this process is alive. It still
			// counts as alive for a while from the last one, and
			// Publish still copies into its inbox what Redis
			// accepts: reading goes on, and the next look tries
			// again. (Returning the error would drop what XREAD
			// read and stop delivery until Redis has room.)
			b.cfg.ErrorHandler(fmt.Errorf("redisbroker: saying this process is alive: %w", err))
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if at != "" {
			pos, last = at, chain
			b.advance(&last)
		}
		b.registeredNow()
		return at != "", nil
	}
	// A process in DeliverInterest mode says it is alive at least four
	// times in the time it counts as such, and its XREAD waits no longer
	// than that: when Redis loses its keys, nothing more comes to its
	// inbox (no key says it watches anything), and it is by looking that
	// it learns of the loss, where the log would show it at the next
	// publish.
	checkEvery, blockFor := lossCheckEvery, block
	if b.interest {
		checkEvery = min(interestCheckEvery, b.cfg.aliveFor/4)
		blockFor = checkEvery
	}
	failures := 0
	var since, checked time.Time
	for !b.stopping() {
		err := func() error {
			if conn == nil {
				// A connection of its own, whose ID Close can unblock.
				node, err := b.node(ctx)
				if err != nil {
					return err
				}
				conn = dialTail(node)
				id, err := conn.ClientID(ctx).Result()
				if err != nil {
					return err
				}
				b.tailNode.Store(node)
				b.tailID.Store(id)
				// Redis may have come back without its data.
				if err := b.checkLoss(ctx); err != nil {
					return err
				}
				if _, err := stayAlive(ctx); err != nil {
					return err
				}
				if failures > 0 {
					b.reconnects.Add(1)
					b.down.Store(false)
					b.cfg.NoticeHandler(fmt.Errorf("%w after %d failed attempts in %v; delivering from Seq %d on",
						ErrRecovered, failures, time.Since(since).Round(time.Millisecond), last))
					failures = 0
				}
			}
			select {
			case <-b.kick: // Watch or Sync found this process not alive
				if _, err := stayAlive(ctx); err != nil {
					return err
				}
			default:
			}
			if b.stopping() {
				return nil
			}
			streams, err := conn.XRead(ctx, &redis.XReadArgs{
				Streams: []string{feed, pos},
				Count:   readCount,
				Block:   blockFor,
			}).Result()
			if !errors.Is(err, redis.Nil) && err != nil {
				return err
			}
			// Redis may have lost data (a FLUSHALL leaves the log idle),
			// or another process may have found it did: look, now and
			// then.
			if time.Since(checked) >= checkEvery && !b.stopping() {
				if err := b.checkLoss(ctx); err != nil {
					return err
				}
				registered, err := stayAlive(ctx)
				if err != nil {
					return err
				}
				checked = time.Now()
				if registered {
					// What XREAD read is older than where the reader
					// goes on, and was delivered from the histories.
					return nil
				}
			}
			if errors.Is(err, redis.Nil) {
				return nil // nothing new, or Close woke it
			} else if err != nil {
				return err
			}
			defer b.advance(&last)
			for _, st := range streams {
				for _, m := range st.Messages {
					msg, prev, err := decode(mapEntry(m.ID, m.Values))
					if err != nil {
						// Not an entry this package wrote: skip it.
						b.cfg.ErrorHandler(fmt.Errorf("redisbroker: skipping log entry: %w", err))
						pos = m.ID
						continue
					}
					switch {
					case prev > last && b.interest:
						// The inbox lost entries before this one:
						// fetch them from the histories of the topics
						// watched.
						b.imu.Lock()
						topics := make([]string, 0, len(b.watching))
						for t := range b.watching {
							topics = append(topics, t)
						}
						b.imu.Unlock()
						if err := b.catchUpTopics(ctx, deliver, topics, last, prev); err != nil {
							return err
						}
						last = prev
					case prev > last:
						// The log lost entries before this one: fetch
						// them from the topics' histories.
						if err := b.catchUp(ctx, deliver, &last, prev); err != nil {
							return err
						}
					case prev < last && b.interest && b.reregister.Load():
						// The inbox's chain went back after a loss this
						// process has handled already: the entry was
						// copied before the reader registered the
						// process again, which starts the chain anew.
					case prev < last:
						if err := b.repair(ctx, fmt.Sprintf("the %s goes on with Seq %d after Seq %d, not %d", feedName(b.interest), msg.Seq, prev, last)); err != nil {
							return err
						}
					}
					pos = m.ID
					if msg.Seq <= last {
						continue
					}
					// Counted first: whoever has seen the event
					// sees it counted in Stats.
					b.deliveredN.Add(1)
					b.see(msg.Seq)
					deliver(msg)
					last = msg.Seq
				}
			}
			return nil
		}()
		if err == nil || b.stopping() {
			continue
		}
		failures++
		b.readErrors.Add(1)
		if failures == 1 {
			since = time.Now()
			b.down.Store(true)
		}
		b.tailID.Store(0)
		if conn != nil {
			conn.Close()
			conn = nil
		}
		wait := b.backoff(failures)
		b.cfg.ErrorHandler(fmt.Errorf("redisbroker: reading the log failed (%d in a row; trying again in %v): %w",
			failures, wait.Round(time.Millisecond), err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.quit:
			t.Stop()
		}
	}
}

// stopping reports whether Close has been called.
func (b *Backend) stopping() bool {
	select {
	case <-b.quit:
		return true
	default:
		return false
	}
}

// advance records that every message up to *last has been delivered, and
// wakes Sync.
func (b *Backend) advance(last *uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if *last > b.delivered {
		b.delivered = *last
		close(b.advanced)
		b.advanced = make(chan struct{})
	}
}

// backoff returns how long to wait after the n-th failure in a row:
// doubling from MinBackoff up to MaxBackoff, between half of it and all of
// it at random, so that processes do not all come back at once.
func (b *Backend) backoff(n int) time.Duration {
	d := b.cfg.MinBackoff
	for i := 1; i < n && d < b.cfg.MaxBackoff; i++ {
		if d > b.cfg.MaxBackoff/2 { // doubling it would pass the bound, or overflow
			d = b.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, b.cfg.MaxBackoff)
	if half := d / 2; half > 0 {
		d = half + rand.N(half+1)
	}
	return d
}

// catchUp delivers the messages after Seq *last and up to Seq upTo, which
// the log no longer has, from the histories of the topics published on
// since then, and moves *last on to upTo. Those the histories do not have
// either are reported lost.
func (b *Backend) catchUp(ctx context.Context, deliver func(broker.Message), last *uint64, upTo uint64) error {
	after := *last
	all, err := b.client.HGetAll(ctx, b.keys.topics).Result()
	if err != nil {
		return err
	}
	var names []string
	for name, v := range all {
		if seq, err := strconv.ParseUint(v, 10, 64); err == nil && seq > after {
			names = append(names, name)
		}
	}
	from, to := "("+entryID(after), entryID(upTo)
	cmds := make([]*redis.XMessageSliceCmd, len(names))
	if len(names) > 0 {
		if _, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, name := range names {
				cmds[i] = p.XRange(ctx, b.keys.topic+name, from, to)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	type found struct {
		msg  broker.Message
		prev uint64
	}
	var msgs []found
	for _, cmd := range cmds {
		for _, m := range cmd.Val() {
			msg, prev, err := decode(mapEntry(m.ID, m.Values))
			if err != nil {
				b.cfg.ErrorHandler(fmt.Errorf("redisbroker: skipping history entry: %w", err))
				continue
			}
			msgs = append(msgs, found{msg, prev})
		}
	}
	slices.SortFunc(msgs, func(x, y found) int { return cmp.Compare(x.msg.Seq, y.msg.Seq) })
	for _, f := range msgs {
		if f.prev != *last { // the message before it is in neither
			b.reportLost(*last, f.msg.Seq)
		}
		b.deliveredN.Add(1) // first, as above
		b.see(f.msg.Seq)
		deliver(f.msg)
		b.recovered.Add(1)
		*last = f.msg.Seq
	}
	if *last != upTo {
		b.reportLost(*last, upTo+1)
		*last = upTo
	}
	return nil
}

// reportLost tells the error hook and the broker that messages after
// Seq after and before Seq before could not be delivered: the
// subscriptions end, and their clients reconnect (a replay tells them of
// the gap, as the histories were trimmed past it).
func (b *Backend) reportLost(after, before uint64) {
	b.lost.Add(1)
	err := fmt.Errorf("%w: messages after Seq %d and before Seq %d are no longer in Redis (the log and the histories were trimmed while this process could not read them)",
		ErrLost, after, before)
	b.cfg.ErrorHandler(err)
	b.tellBroker(err)
}

// feedName names what the reader reads, in errors.
func feedName(interest bool) string {
	if interest {
		return "inbox"
	}
	return "log"
}
