package redisbroker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

var (
	// ErrRecovered is wrapped by the notice Config.NoticeHandler is given
	// when the backend reads the log again after failures: a notice that
	// delivery has resumed from the last message delivered, not a failure.
	ErrRecovered = errors.New("redisbroker: reading the log again")

	// ErrLost is wrapped by the error Config.ErrorHandler is given when
	// messages could not be delivered because Redis no longer had them (the
	// log and the topics' histories were trimmed past them while this
	// process could not read), or when Redis lost data it had accepted
	// (see [Backend.NotifyLoss]). Either way the broker ends every
	// subscription with broker.ErrLost, and clients that reconnect are
	// told of the gap by broker.ErrGap.
	ErrLost = errors.New("redisbroker: messages lost")
)

// A Backend is a [broker.Backend] on Redis Streams: processes that share a
// Redis (and a Config.Prefix) share topics, histories and event IDs. Give it
// to [broker.New] in [broker.Config].Backend. It is a [broker.Interested],
// which delivers only the watched topics with Config.Delivery
// DeliverInterest and every topic with DeliverAll. All its methods are
// safe for concurrent use.
type Backend struct {
	client redis.UniversalClient
	cfg    Config
	keys   keys

	instance string        // random: with calls, makes each Publish call's key
	calls    atomic.Uint64 // Publish calls so far
	clock    serverClock

	mu        sync.Mutex
	started   bool
	delivered uint64        // the Seq of the last message delivered
	advanced  chan struct{} // closed and replaced when delivered grows
	closed    atomic.Bool
	quit      chan struct{}                // closed by Close: the log reader stops
	tailDone  chan struct{}                // closed when the log reader has stopped
	tailID    atomic.Int64                 // CLIENT ID of the log reader's connection, 0 if none
	tailNode  atomic.Pointer[redis.Client] // the server of the log reader's connection
	lostFn    func(broker.Loss)
	seen      atomic.Uint64 // the greatest Seq handed to deliver, or published by this process
	acked     atomic.Uint64 // the greatest Seq a Publish of this process was answered with
	lossMu    sync.Mutex    // one loss is handled at a time
	losses    int64         // {P}:losses as this process last saw it; b.lossMu
	epoch     string        // {P}:epoch as this process last saw it; b.lossMu

	// With DeliverInterest (see interest.go).
	interest     bool
	imu          sync.Mutex          // the watched set, here and in Redis
	watching     map[string]struct{} // the topics watched; b.imu
	unwatchLater map[string]struct{} // those whose Unwatch failed in Redis; b.imu
	watchedN     atomic.Int64        // len(b.watching)
	kick         chan struct{}       // wakes the reader to look whether it is alive
	registered   uint64              // registrations so far; b.mu
	registeredCh chan struct{}       // closed and replaced at each; b.mu
	reregistered atomic.Uint64
	reregister   atomic.Bool // after a loss: the reader registers the process again

	published     atomic.Uint64
	publishErrors atomic.Uint64
	unknown       atomic.Uint64
	deduplicated  atomic.Uint64
	deliveredN    atomic.Uint64
	recovered     atomic.Uint64
	lost          atomic.Uint64
	readErrors    atomic.Uint64
	reconnects    atomic.Uint64
	down          atomic.Bool
}

// keys are the names of a backend's keys (see scripts.go).
type keys struct {
	seq, base, losses, epoch, topics, forgot, ids, log, topic, pub, stored string
	alive, inboxes, inbox, watch, watching                                 string // see interest.go
}

func newKeys(prefix string) keys {
	p := "{" + prefix + "}:"
	return keys{
		seq:    p + "seq",
		base:   p + "base",
		losses: p + "losses",
		epoch:  p + "epoch",
		topics: p + "topics",
		forgot: p + "forgot",
		ids:    p + "ids",
		log:    p + "log",
		topic:  p + "topic:",
		pub:    p + "pub:",
		stored: p + "stored:",

		alive:    p + "alive",
		inboxes:  p + "inboxes",
		inbox:    p + "inbox:",
		watch:    p + "watch:",
		watching: p + "watching:",
	}
}

// New returns a Backend that keeps its history in the Redis client talks
// to, configured by cfg, whose zero fields take their values from
// [DefaultConfig]; or an error saying what to fix. It needs Redis 6.2 or
// later. It makes no request until the broker starts it.
//
// The client may be a *redis.Client (one Redis, or Sentinel through
// redis.NewFailoverClient) or a *redis.ClusterClient (Redis Cluster, or
// redis.NewFailoverClusterClient), such as redis.NewUniversalClient
// returns; not a *redis.Ring, which has no connection of its own to give.
// On a cluster all the backend's keys are in one hash slot (see the
// package documentation).
//
// The client stays the caller's: close it after the broker (whose Close
// closes the backend). The backend takes one of its connections for itself
// while it runs, to read the log (on a cluster, one of the connections to
// the master of the keys' slot).
func New(client redis.UniversalClient, cfg Config) (*Backend, error) {
	switch c := client.(type) {
	case nil:
		return nil, errors.New("redisbroker: New needs a client")
	case *redis.Client:
		if c == nil {
			return nil, errors.New("redisbroker: New needs a client")
		}
	case *redis.ClusterClient:
		if c == nil {
			return nil, errors.New("redisbroker: New needs a client")
		}
	default:
		return nil, fmt.Errorf("redisbroker: New needs a *redis.Client or a *redis.ClusterClient, not a %T", client)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Backend{
		client:       client,
		cfg:          cfg,
		keys:         newKeys(cfg.Prefix),
		instance:     strconv.FormatUint(rand.Uint64(), 36),
		advanced:     make(chan struct{}),
		quit:         make(chan struct{}),
		tailDone:     make(chan struct{}),
		interest:     cfg.Delivery == DeliverInterest,
		watching:     make(map[string]struct{}),
		unwatchLater: make(map[string]struct{}),
		kick:         make(chan struct{}, 1),
		registeredCh: make(chan struct{}),
	}, nil
}

// startTimeout bounds the requests Start makes.
const startTimeout = 10 * time.Second

// Start implements [broker.Backend]. It returns an error if Redis cannot be
// reached, and starts one goroutine, which reads the log of every topic
// (with Config.Delivery DeliverInterest, the process's inbox, after
// registering the process) with a blocking XREAD on a connection of its
// own and delivers what it reads, one message at a time, in Seq order. When reading fails it tries
// again after a backoff (Config.MinBackoff to Config.MaxBackoff) from the
// last message it delivered, so that nothing published is skipped.
func (b *Backend) Start(deliver func(broker.Message)) (last uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.started:
		return 0, errors.New("redisbroker: backend already started")
	case b.closed.Load():
		return 0, broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if last, err = b.head(ctx); err != nil {
		return 0, err
	}
	now, err := b.client.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("redisbroker: %w", err)
	}
	b.clock.observe(now.UnixMicro())
	if b.losses, err = b.lossCount(ctx); err != nil {
		return 0, err
	}
	if b.epoch, err = b.newEpoch(ctx); err != nil {
		return 0, err
	}
	pos := entryID(last)
	if b.interest {
		// Registered with no topic: the inbox's chain starts at last.
		var reply []string
		reply, err = registerScript.Run(ctx, b.client,
			[]string{b.keys.alive, b.keys.inboxes, b.keys.seq, b.keys.watching + b.instance, b.keys.inbox + b.instance},
			b.instance, b.cfg.aliveFor.Microseconds(), b.keys.watch).StringSlice()
		if err != nil {
			return 0, fmt.Errorf("redisbroker: %w", err)
		}
		if len(reply) != 2 {
			return 0, errBadReply
		}
		if last, err = strconv.ParseUint(reply[0], 10, 64); err != nil {
			return 0, errBadReply
		}
		pos = reply[1]
	}
	b.started = true
	b.delivered = last
	b.see(last)
	go b.tail(deliver, last, pos)
	return last, nil
}

// head returns the last Seq assigned, 0 if none.
func (b *Backend) head(ctx context.Context) (uint64, error) {
	s, err := b.client.Get(ctx, b.keys.seq).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("redisbroker: %w", err)
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisbroker: %s holds %q, not a sequence number", b.keys.seq, s)
	}
	return seq, nil
}

// lossCount returns {P}:losses, 0 if it does not exist.
func (b *Backend) lossCount(ctx context.Context) (int64, error) {
	n, err := b.client.Get(ctx, b.keys.losses).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("redisbroker: %w", err)
	}
	return n, nil
}

// see records that this process delivered or published seq.
func (b *Backend) see(seq uint64) { maxUint(&b.seen, seq) }

// maxUint raises v to n if it is less.
func maxUint(v *atomic.Uint64, n uint64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// Publish implements [broker.Backend]: one script, run atomically by
// Redis, assigns the Seq and adds the message to its topic's history and to
// the log. Every process receives it from the log, this one included: when
// Publish returns, the message is stored, not yet delivered.
//
// Seq is the Redis server's clock in microseconds when the message was
// published, or one more than the previous Seq if that is not less: IDs
// look like the in-memory history's, keep growing when Redis is restarted
// or even loses its data, and are the same in every process.
//
// A message is stored once at most, whatever is retried. Each Publish call
// gives its requests a key of their own and a deadline,
// Config.PublishTimeout after the call or ctx's deadline if that is
// sooner: Redis stores the event for the first of them to run, answers the
// others with the Seq it got, and stores nothing for a request that comes
// after the deadline. So a request that timed out on the client, which
// go-redis sends again on a new connection (redis.Options.MaxRetries),
// cannot store the event a second time, however late either of them
// reaches Redis.
//
// When Redis cannot be reached, refuses the event (an OOM error when it is
// at its maxmemory under maxmemory-policy noeviction: [redis.IsOOMError]
// finds it), or its answer to the call's only request comes after the
// deadline, Publish returns an error wrapping go-redis's, and nothing was
// stored. When a request was
// sent and its answer never came (the connection broke, or go-redis gave
// up waiting), Publish sends it again, after a backoff (Config.MinBackoff
// to Config.MaxBackoff), until Redis answers, ctx is done, or a second
// after the deadline: an answer, even one after the deadline, settles
// whether the event was stored, unless it says the deadline has passed
// after an earlier request went unanswered: that one may have been stored
// by a server that has lost it since (a master killed before its replica
// had the write), so the outcome is unknown. If none came, Publish returns a [*broker.PublishError]
// wrapping [broker.ErrUnknownOutcome], which says by when Redis stores the
// event, if ever; its ID is the event's if the caller set one. Every error
// is counted in Stats.PublishErrors, those of unknown outcome in
// Stats.UnknownOutcomes too.
//
// When Redis no longer has the last event a Publish of this process stored
// (a replica that was behind took over; see "When Redis loses data" in the
// package doc), the script stores nothing; Publish handles the loss, as
// the log reader would, and then stores the event after it.
func (b *Backend) Publish(ctx context.Context, topic string, ev event.Event) (broker.Message, error) {
	if b.closed.Load() {
		return broker.Message{}, broker.ErrClosed
	}
	ev, err := broker.MarshalData(ev)
	if err != nil {
		return broker.Message{}, err
	}
	custom := ev.ID
	if len(custom) > maxIDLen {
		return broker.Message{}, fmt.Errorf("redisbroker: event ID longer than %d bytes", maxIDLen)
	}
	probe := ev
	if probe.ID == "" {
		probe.ID = "0" // what IDs are made of
	}
	if _, err := probe.AppendTo(nil); err != nil {
		return broker.Message{}, err
	}

	start := time.Now()
	window := b.cfg.PublishTimeout
	if d, ok := ctx.Deadline(); ok {
		window = min(window, d.Sub(start))
	}
	if err := ctx.Err(); err != nil {
		return broker.Message{}, err
	}
	if window <= 0 {
		return broker.Message{}, context.DeadlineExceeded
	}
	call := &publishCall{deadline: strconv.FormatInt(b.clock.now()+window.Microseconds(), 10)}
	keys, args := b.publishRequest(topic, ev, call)
	fail := func(err error) (broker.Message, error) {
		b.publishErrors.Add(1)
		return broker.Message{}, fmt.Errorf("redisbroker: publishing on %q: %w", topic, err)
	}
	var seq uint64
	repaired := false
	for attempt := 1; ; attempt++ {
		status, s, err := b.runPublish(ctx, keys, args, call)
		sent := call.sent.Load()
		var rerr redis.Error
		switch {
		case err == nil && (status == pubStored || status == pubFound):
			if seq, err = strconv.ParseUint(s, 10, 64); err != nil {
				return fail(fmt.Errorf("the script returned %q", s))
			}
			if status == pubFound {
				b.deduplicated.Add(1)
			}
			maxUint(&b.acked, seq)
		case err == nil && status == pubLost:
			// Redis lost events this process stored, and stored nothing
			// now: handle the loss, then ask again. The request was
			// answered, so it is not one that may still be stored.
			// An earlier request of the call, unanswered, may still be
			// stored: then an error leaves the outcome unknown.
			failLost := func(err error) (broker.Message, error) {
				if call.sent.Add(-1) > 0 {
					return b.unknownOutcome(topic, custom, start.Add(window), call.sent.Load(), err)
				}
				return fail(err)
			}
			if repaired {
				return failLost(fmt.Errorf("Redis lost events this process stored (its last is Seq %s) again after the loss was handled", s))
			}
			if err := b.repair(ctx, fmt.Sprintf("Redis has Seq %s as the last event this process stored, not Seq %d (%s)", s, b.acked.Load(), b.keys.stored+b.instance)); err != nil {
				return failLost(err)
			}
			repaired = true
			call.sent.Add(-1)
			continue
		case err == nil && (status == pubLate || status == pubForgotten) && sent == 1:
			return fail(fmt.Errorf("not stored: Redis ran the request after its deadline, %v after the call (Config.PublishTimeout, or ctx's deadline)",
				window.Round(time.Millisecond)))
		case err == nil && status == pubLate:
			// No request of the call is stored on the server that ran
			// this one; but an earlier request whose answer never came
			// may have run on a server that has died since, or lost
			// it: a master killed before its replica had the write (a
			// failover), a restart without persistence. Its event may
			// have reached subscribers, so "not stored" would be a lie.
			return b.unknownOutcome(topic, custom, start.Add(window), sent,
				errors.New("Redis ran the last request after the deadline; an earlier one, unanswered, may have been stored by a server that has lost it since"))
		case err == nil && status == pubForgotten:
			return b.unknownOutcome(topic, custom, start.Add(window), sent,
				errors.New("Redis ran the last request too long after the deadline to tell about the others"))
		case err == nil:
			return fail(errBadReply)
		case sent == 0, errors.As(err, &rerr) && sent == 1:
			// Nothing was sent, or Redis answered the only request
			// with an error: nothing was stored.
			return fail(err)
		}
		if err == nil {
			break
		}
		// A request was sent and its answer never came, or an earlier one
		// may still reach Redis: ask again, with the same key.
		left := start.Add(window + publishKeep/2).Sub(time.Now())
		if ctx.Err() != nil || left <= 0 || b.closed.Load() {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (the last request: %w)", ctx.Err(), err)
			}
			return b.unknownOutcome(topic, custom, start.Add(window), sent, err)
		}
		t := time.NewTimer(min(b.backoff(attempt), left))
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-b.quit:
		}
		t.Stop()
	}
	b.published.Add(1)
	b.see(seq)
	if custom == "" {
		ev.ID = strconv.FormatUint(seq, 10)
	}
	if ev, err = ev.Prepare(); err != nil { // checked above: cannot fail
		return broker.Message{}, err
	}
	return broker.Message{Topic: topic, Seq: seq, Time: time.UnixMicro(int64(seq)), Event: ev}, nil
}

// publishRequest returns the keys and arguments of the publish script for
// a Publish call of ev on topic, with a key of the call's own.
func (b *Backend) publishRequest(topic string, ev event.Event, call *publishCall) (keys []string, args []any) {
	k := b.keys
	age := int64(0)
	if b.cfg.HistoryAge > 0 {
		age = b.cfg.HistoryAge.Microseconds()
	}
	limit := max(b.cfg.HistoryBytes, -1)
	args = make([]any, 0, 11+10)
	args = append(args, topic, b.cfg.HistorySize, age, b.cfg.LogSize, limit, ev.ID, call, publishKeep.Milliseconds(),
		b.acked.Load(), ackedCheck.Milliseconds(), ackedKeep.Milliseconds())
	args = eventFields(args, ev)
	keys = []string{k.seq, k.base, k.topics, k.forgot, k.ids, k.log, k.topic + topic,
		k.pub + b.instance + "." + strconv.FormatUint(b.calls.Add(1), 36),
		k.watch + topic, k.alive, k.inboxes, k.stored + b.instance}
	return keys, args
}

// A process's stored key ({P}:stored:I) lasts ackedKeep after its last
// Publish stored an event, and is checked against the greatest Seq its
// Publish calls were answered with while that Seq is less than ackedCheck
// old, when the key must be there unless Redis lost it.
const (
	ackedCheck = 5 * time.Minute
	ackedKeep  = 10 * time.Minute
)

// publishKeep is how long after a Publish call's deadline Redis keeps the
// call's key: a request of the call that runs within it is told for sure
// whether the event was stored.
const publishKeep = 2 * time.Second

// publishCall is a Publish call's deadline, as an argument of the publish
// script that counts how many times go-redis writes the script's request
// to a connection: when each write was answered, nothing more can reach
// Redis. go-redis marshals such an argument every time it writes the
// command (encoding.BinaryMarshaler).
type publishCall struct {
	deadline string // in microseconds on the server's clock
	sent     atomic.Int32
}

// MarshalBinary counts a request written, and returns the deadline.
func (c *publishCall) MarshalBinary() ([]byte, error) {
	c.sent.Add(1)
	return []byte(c.deadline), nil
}

// String returns the deadline, for whatever logs commands.
func (c *publishCall) String() string { return c.deadline }

// runPublish runs the publish script (EVALSHA, then EVAL if Redis does not
// have it) and returns its status and Seq, noting the server's clock.
func (b *Backend) runPublish(ctx context.Context, keys []string, args []any, call *publishCall) (status int64, seq string, err error) {
	before := call.sent.Load()
	cmd := publishScript.EvalSha(ctx, b.client, keys, args...)
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		if call.sent.Load() == before+1 {
			call.sent.Add(-1) // its only request was not run
		}
		cmd = publishScript.Eval(ctx, b.client, keys, args...)
	}
	reply, err := cmd.Slice()
	if err != nil {
		return 0, "", err
	}
	if len(reply) != 3 {
		return 0, "", errBadReply
	}
	status, _ = reply[0].(int64)
	seq, _ = reply[1].(string)
	now, _ := reply[2].(string)
	if us, err := strconv.ParseInt(now, 10, 64); err == nil {
		b.clock.observe(us)
	}
	return status, seq, nil
}

// unknownOutcome counts and returns the error of a Publish call that sent
// requests and got no answer that settles whether the event was stored.
func (b *Backend) unknownOutcome(topic, id string, deadline time.Time, sent int32, cause error) (broker.Message, error) {
	b.publishErrors.Add(1)
	b.unknown.Add(1)
	return broker.Message{}, &broker.PublishError{Topic: topic, ID: id, Err: fmt.Errorf(
		"redisbroker: %w: %d requests sent to Redis and no answer settled it; Redis stores the event before %s or never: %w",
		broker.ErrUnknownOutcome, sent, deadline.Format(time.RFC3339Nano), cause)}
}

// serverClock estimates the Redis server's clock from the last reading the
// backend got, and this process's monotonic clock since then: a little
// behind the server's, by the time the answer took to come.
type serverClock struct {
	mu sync.Mutex
	us int64     // microseconds since 1970, as the server said
	at time.Time // when this process heard it
}

func (c *serverClock) observe(us int64) {
	c.mu.Lock()
	c.us, c.at = us, time.Now()
	c.mu.Unlock()
}

// now returns the server's clock in microseconds since 1970, or this
// process's before the backend has read it.
func (c *serverClock) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return time.Now().UnixMicro()
	}
	return c.us + time.Since(c.at).Microseconds()
}

// Replay implements [broker.Backend]: one script reads, atomically, each
// topic's stream with XRANGE after the Seq of lastEventID and up to upTo,
// and checks that the history has all of them: the first message it keeps
// after lastEventID names its topic's previous message, which must not be
// newer than lastEventID. The messages of all topics are merged by Seq. A
// number that no message had (Seqs are the server's clock: most numbers
// between two were never assigned) is an unknown ID, a gap: it is known
// while the log keeps its message, or while one of the topics links to it.
func (b *Backend) Replay(ctx context.Context, topics []string, lastEventID string, upTo uint64) ([]broker.Message, error) {
	if len(lastEventID) > maxIDLen {
		return nil, fmt.Errorf("%w: Last-Event-ID longer than %d bytes", broker.ErrGap, maxIDLen)
	}
	num := ""
	if n, err := strconv.ParseUint(lastEventID, 10, 64); err == nil {
		num = strconv.FormatUint(n, 10)
	}
	k := b.keys
	ks := make([]string, 0, 5+len(topics))
	ks = append(ks, k.base, k.topics, k.forgot, k.ids, k.log)
	args := make([]any, 0, 3+len(topics))
	args = append(args, lastEventID, num, strconv.FormatUint(upTo, 10))
	for _, t := range topics {
		ks = append(ks, k.topic+t)
		args = append(args, t)
	}
	reply, err := replayScript.Run(ctx, b.client, ks, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisbroker: replay: %w", err)
	}
	if len(reply) < 1 {
		return nil, errBadReply
	}
	status, _ := reply[0].(int64)
	switch status {
	case 0:
	case 1, 2:
		if len(reply) != 2 {
			return nil, errBadReply
		}
		what, _ := reply[1].(string)
		if status == 2 {
			return nil, fmt.Errorf("%w: events of topic %q published after Last-Event-ID %q are no longer in the history",
				broker.ErrGap, what, lastEventID)
		}
		why := map[string]string{
			"future":     " (newer than every message delivered)",
			"before":     " (older than the history Redis has)",
			"unassigned": " (no message had it)",
		}[what]
		return nil, fmt.Errorf("%w: unknown Last-Event-ID %q%s", broker.ErrGap, lastEventID, why)
	default:
		return nil, errBadReply
	}
	var out []broker.Message
	for _, r := range reply[1:] {
		entries, err := luaEntries(r)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			msg, _, err := decode(e)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
		}
	}
	if len(reply) > 2 {
		slices.SortFunc(out, func(a, b broker.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return out, nil
}

// trimBatch is how many topics Trim handles per script run.
const trimBatch = 100

// Trim implements [broker.Backend]: it trims every topic's history and the
// log by age (XTRIM MINID), drops the topics left empty, and forgets the
// caller-set IDs of messages no topic keeps. Publish trims by count, and
// trims its topic by age.
func (b *Backend) Trim(ctx context.Context) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	k := b.keys
	head, err := b.head(ctx)
	if err != nil {
		return err
	}
	cutoff := ""
	if b.cfg.HistoryAge > 0 {
		t, err := b.client.Time(ctx).Result()
		if err != nil {
			return fmt.Errorf("redisbroker: %w", err)
		}
		cutoff = entryID(uint64(max(t.Add(-b.cfg.HistoryAge).UnixMicro(), 0)))
		if err := b.client.XTrimMinID(ctx, k.log, cutoff).Err(); err != nil {
			return fmt.Errorf("redisbroker: trimming the log: %w", err)
		}
	}
	oldest := head + 1 // the oldest Seq any topic keeps
	var cursor uint64
	for {
		names, next, err := b.client.HScan(ctx, k.topics, cursor, "", trimBatch).Result()
		if err != nil {
			return fmt.Errorf("redisbroker: %w", err)
		}
		ks := []string{k.topics, k.forgot}
		args := []any{cutoff}
		for i := 0; i+1 < len(names); i += 2 { // name, value, name, value...
			ks = append(ks, k.topic+names[i])
			args = append(args, names[i])
		}
		if len(args) > 1 {
			firsts, err := trimScript.Run(ctx, b.client, ks, args...).StringSlice()
			if err != nil {
				return fmt.Errorf("redisbroker: trimming: %w", err)
			}
			for _, id := range firsts {
				if seq, err := parseEntryID(id); err == nil {
					oldest = min(oldest, seq)
				}
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	// A caller-set ID whose message no topic keeps is unknown, as it is to
	// the in-memory history. Those published since head are left alone.
	if err := b.client.ZRemRangeByScore(ctx, k.ids, "-inf", "("+strconv.FormatUint(oldest, 10)).Err(); err != nil {
		return fmt.Errorf("redisbroker: %w", err)
	}
	return b.dropDead(ctx)
}

// Sync implements [broker.Syncer]: it reads the last Seq assigned, and
// waits until the log reader has delivered it. The [broker.Broker] calls it
// before it replays to a reconnecting client, so that a client that
// received an event through another process and reconnects here is not
// told of a gap because this process has not read that event yet.
//
// When the last Seq assigned is less than what this process delivered,
// Redis lost messages: Sync handles the loss (see [Backend.NotifyLoss])
// before it returns, so that the replay that follows returns
// broker.ErrGap for an ID from before it.
func (b *Backend) Sync(ctx context.Context) error {
	if b.interest {
		return b.syncInterest(ctx)
	}
	seen := b.seen.Load()
	head, err := b.head(ctx)
	if err != nil {
		return err
	}
	if head < seen {
		if err := b.checkLoss(ctx); err != nil {
			return err
		}
		if head, err = b.head(ctx); err != nil {
			return err
		}
	}
	return b.waitDelivered(ctx, head)
}

// NotifyLoss implements [broker.LossNotifier]; [broker.New] calls it.
//
// The backend learns that Redis lost messages it had stored (a FLUSHALL,
// a restart without an append-only file, a failover to a replica that was
// behind) when Redis's last Seq is less than the last it delivered, as its
// log reader finds when it reconnects, every 5 s while the log is idle,
// and Sync before every replay; or when the log goes on from a message
// older than the last it delivered. It then raises, in Redis, the Seq
// below which IDs are unknown ({P}:base) and the last Seq ({P}:seq) to
// the last Seq it delivered, so that every Last-Event-ID a client can
// have received from it is a gap and new messages come after them; tells
// Config.ErrorHandler (an error wrapping [ErrLost]); and has the broker
// end every subscription, so that clients reconnect and are told of the
// gap. It does the same, without touching Redis, when its reader had to
// skip messages the log and the histories no longer had.
func (b *Backend) NotifyLoss(lost func(broker.Loss)) {
	b.mu.Lock()
	b.lostFn = lost
	b.mu.Unlock()
}

// checkLoss handles a loss if Redis's last Seq is less than the last this
// process delivered or published, and tells the broker of one another
// process recorded ({P}:losses changed).
func (b *Backend) checkLoss(ctx context.Context) error {
	b.lossMu.Lock()
	defer b.lossMu.Unlock()
	seen := b.seen.Load() // before head: a message delivered meanwhile is not a loss
	acked := b.acked.Load()
	vals, err := b.client.MGet(ctx, b.keys.seq, b.keys.losses, b.keys.epoch, b.keys.stored+b.instance).Result()
	if err != nil {
		return fmt.Errorf("redisbroker: %w", err)
	}
	var head uint64
	var losses int64
	if s, ok := vals[0].(string); ok {
		head, _ = strconv.ParseUint(s, 10, 64)
	}
	if s, ok := vals[1].(string); ok {
		losses, _ = strconv.ParseInt(s, 10, 64)
	}
	epoch, _ := vals[2].(string)
	var stored uint64
	if s, ok := vals[3].(string); ok {
		stored, _ = strconv.ParseUint(s, 10, 64)
	}
	switch {
	case head < seen:
		return b.repairLocked(ctx, fmt.Sprintf("Redis's last Seq is %d, less than Seq %d this process delivered or published", head, seen), true)
	case stored < acked && b.clock.now()-int64(acked) < ackedCheck.Microseconds():
		// A replica that was behind took over before the log reader
		// read this process's last events: no chain shows it, and the
		// last Seq has gone past them since.
		return b.repairLocked(ctx, fmt.Sprintf("Redis has Seq %d as the last event this process stored, not Seq %d", stored, acked), true)
	case losses != b.losses:
		return b.repairLocked(ctx, "another process found it", false)
	case epoch != b.epoch:
		// The keys were made anew, and a publish since has lifted the
		// last Seq past seen: with DeliverInterest no inbox shows it.
		return b.repairLocked(ctx, fmt.Sprintf("Redis's keys were made anew (%s is %q, not %q)", b.keys.epoch, epoch, b.epoch), true)
	}
	return nil
}

// repair handles a loss that the log showed: it went on from a message
// older than the last this process delivered.
func (b *Backend) repair(ctx context.Context, what string) error {
	b.lossMu.Lock()
	defer b.lossMu.Unlock()
	return b.repairLocked(ctx, what, true)
}

// repairLocked makes every ID up to the last Seq this process delivered
// or published unknown in Redis, counting the loss in {P}:losses if tell
// (this process found it; one another process found was counted), then
// tells the error hook and the broker. b.lossMu is held.
func (b *Backend) repairLocked(ctx context.Context, what string, tell bool) error {
	seen := strconv.FormatUint(b.seen.Load(), 10)
	t := "0"
	if tell {
		t = "1"
	}
	n, err := lossScript.Run(ctx, b.client, []string{b.keys.seq, b.keys.base, b.keys.losses, b.keys.stored + b.instance},
		seen, t, b.acked.Load(), ackedKeep.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("redisbroker: recording a loss: %w", err)
	}
	b.losses = n
	if b.epoch, err = b.newEpoch(ctx); err != nil {
		return err
	}
	b.lost.Add(1)
	if b.interest {
		// Redis may have lost this process's registration, or some of
		// its topics: the reader registers it again, which also starts
		// the inbox's chain anew.
		b.reregister.Store(true)
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	err = fmt.Errorf("%w: %s: Redis lost messages it had stored (flushed, restarted without its data, or a replica that was behind took over); IDs up to Seq %s are now unknown, and every subscription is ended",
		ErrLost, what, seen)
	b.cfg.ErrorHandler(err)
	b.tellBroker(err)
	return nil
}

// tellBroker has the broker end every subscription.
func (b *Backend) tellBroker(err error) {
	b.mu.Lock()
	lost := b.lostFn
	b.mu.Unlock()
	if lost != nil {
		lost(broker.Loss{Err: err})
	}
}

// Recent returns the last n messages of topic, oldest first, and the ID of
// the last message published on any topic when it read them ("" if none):
// a client that shows these messages and then subscribes with that ID as
// its Last-Event-ID misses nothing and receives none of them twice. A
// process that starts can show a conversation so far with it, for
// instance.
func (b *Backend) Recent(ctx context.Context, topic string, n int) (msgs []broker.Message, lastEventID string, err error) {
	if n <= 0 {
		return nil, "", errors.New("redisbroker: Recent needs n > 0")
	}
	var rng *redis.XMessageSliceCmd
	var seq *redis.StringCmd
	_, err = b.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rng = p.XRevRangeN(ctx, b.keys.topic+topic, "+", "-", int64(n))
		seq = p.Get(ctx, b.keys.seq)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("redisbroker: %w", err)
	}
	lastEventID = seq.Val()
	entries := rng.Val()
	msgs = make([]broker.Message, 0, len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		msg, _, err := decode(mapEntry(entries[i].ID, entries[i].Values))
		if err != nil {
			return nil, "", err
		}
		msgs = append(msgs, msg)
	}
	return msgs, lastEventID, nil
}

// Close implements [broker.Backend]: it stops the log reader, waking it
// with CLIENT UNBLOCK if it is waiting in XREAD, and waits for it. It does
// not close the client. Calls after the first return nil.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	close(b.quit)
	started := b.started
	b.mu.Unlock()
	if !started {
		return nil
	}
	wake := time.NewTicker(20 * time.Millisecond)
	defer wake.Stop()
	for {
		if id := b.tailID.Load(); id != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if node := b.tailNode.Load(); node != nil {
				node.ClientUnblock(ctx, id) // if Redis is down, the reader is not blocked in XREAD
			}
			cancel()
		}
		select {
		case <-b.tailDone:
			if b.interest {
				b.dropSelf()
			}
			return nil
		case <-wake.C: // the reader may have been about to block: wake it again
		}
	}
}

// Stats are a backend's counters, as [Backend.Stats] reads them. The
// counters only grow.
type Stats struct {
	// Published is the number of messages this process published.
	Published uint64

	// PublishErrors is the number of Publish calls that failed because
	// Redis could not be reached, did not answer, or refused the event.
	PublishErrors uint64

	// UnknownOutcomes is the number of those that returned
	// broker.ErrUnknownOutcome: requests were sent, and no answer came.
	UnknownOutcomes uint64

	// Deduplicated is the number of Publish calls whose event an earlier
	// request of the same call had stored: a request that timed out on
	// the client was run by Redis all the same, and the one sent again
	// found it done.
	Deduplicated uint64

	// Delivered is the number of messages, published by any process, that
	// this process read and delivered to its broker.
	Delivered uint64

	// Recovered is the number of those that were read from a topic's
	// history because the log no longer had them.
	Recovered uint64

	// Lost is the number of times the backend learned that Redis lost
	// messages, or delivery had to skip messages Redis no longer had
	// (each time one or more; see [ErrLost] and [Backend.NotifyLoss]).
	Lost uint64

	// ReadErrors is the number of failed attempts to read the log.
	ReadErrors uint64

	// Reconnects is the number of times reading the log worked again after
	// failures.
	Reconnects uint64

	// Connected says whether the log reader is reading: false from its
	// first failure until it reads again.
	Connected bool

	// LastSeq is the Seq of the last message delivered.
	LastSeq uint64

	// Watched is the number of topics whose messages the backend
	// delivers, with DeliverInterest; 0 with DeliverAll, which delivers
	// every topic's.
	Watched int

	// Reregistered is the number of times, with DeliverInterest, the
	// process found it no longer counted as alive (it had been cut off
	// from Redis for Publish to stop copying messages into its inbox, or
	// Redis lost its keys) and registered again, reading what it missed
	// from the topics' histories.
	Reregistered uint64
}

// Stats returns the backend's counters; publish them beside the broker's,
// with expvar for example.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	last := b.delivered
	started := b.started
	b.mu.Unlock()
	return Stats{
		Published:       b.published.Load(),
		PublishErrors:   b.publishErrors.Load(),
		UnknownOutcomes: b.unknown.Load(),
		Deduplicated:    b.deduplicated.Load(),
		Delivered:       b.deliveredN.Load(),
		Recovered:       b.recovered.Load(),
		Lost:            b.lost.Load(),
		ReadErrors:      b.readErrors.Load(),
		Reconnects:      b.reconnects.Load(),
		Connected:       started && !b.closed.Load() && !b.down.Load(),
		LastSeq:         last,
		Watched:         int(b.watchedN.Load()),
		Reregistered:    b.reregistered.Load(),
	}
}

var (
	_ broker.Backend      = (*Backend)(nil)
	_ broker.Syncer       = (*Backend)(nil)
	_ broker.LossNotifier = (*Backend)(nil)
	_ broker.Interested   = (*Backend)(nil)
)

// newEpoch returns {P}:epoch, setting it to a new random value first if
// Redis does not have it: it changes only when Redis loses its keys, which
// every process then sees.
func (b *Backend) newEpoch(ctx context.Context) (string, error) {
	if err := b.client.SetNX(ctx, b.keys.epoch, strconv.FormatUint(rand.Uint64(), 36), 0).Err(); err != nil {
		return "", fmt.Errorf("redisbroker: %w", err)
	}
	epoch, err := b.client.Get(ctx, b.keys.epoch).Result()
	if err != nil {
		return "", fmt.Errorf("redisbroker: %w", err)
	}
	return epoch, nil
}
