package natsbroker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// Headers of a stored message; the event's data is the message's body.
const (
	hdrPrev    = "Echosse-Prev" // the stream sequence of the topic's previous message, 0 if none
	hdrID      = "Echosse-Id"   // a caller-set event ID
	hdrType    = "Echosse-Type"
	hdrRetry   = "Echosse-Retry" // milliseconds
	hdrComment = "Echosse-Comment"
	hdrTopic   = "Echosse-Topic"
	metaBase   = "echosse-base" // stream metadata: the Seq of stream sequence 0
)

// maxIDLen is the longest event ID or Last-Event-ID the backend handles.
const maxIDLen = 256

// A Backend is a [broker.Backend] on a NATS JetStream stream: processes
// connected to the same NATS system (and Config.Stream) share topics,
// histories and event IDs. It is [broker.Interested]: a process receives
// the messages of the topics its broker watches only. All its methods are
// safe for concurrent use.
type Backend struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    Config
	stream jetstream.Stream
	base   uint64 // Seq = base + stream sequence

	instance string
	calls    atomic.Uint64

	// mu orders delivery: the consumer's handler holds it while it
	// delivers, and Watch, Unwatch and Sync read the position under it.
	mu        sync.Mutex
	deliver   func(broker.Message)
	pos       uint64 // every watched message up to this stream sequence is delivered
	subjects  map[string]bool
	all       bool // the live consumer takes every subject: more than MaxFilterSubjects are watched
	cc        jetstream.ConsumeContext
	cons      jetstream.Consumer
	gen       uint64        // the consumer's generation: older handlers deliver nothing
	advanced  chan struct{} // closed and replaced when pos grows
	closed    bool
	quit      chan struct{} // closed by Close: the watchdog stops
	dogDone   chan struct{}
	restarts  atomic.Uint64
	consConns uint64         // the connection's reconnect count when the consumer was made
	stops     sync.WaitGroup // consumers stopping, and their Info calls
	delivered atomic.Uint64
	dropped   atomic.Uint64
	published atomic.Uint64
	dups      atomic.Uint64
	unknown   atomic.Uint64
	failed    atomic.Uint64
}

// New returns a Backend on the stream Config.Stream of the JetStream nc
// reaches, creating the stream if it does not exist (with cfg's limits;
// an existing stream keeps its own), or an error saying what to fix. The
// connection stays the caller's: close it after the broker.
func New(nc *nats.Conn, cfg Config) (*Backend, error) {
	if nc == nil {
		return nil, errors.New("natsbroker: New needs a connection")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	b := &Backend{nc: nc, js: js, cfg: cfg, instance: strconv.FormatUint(rand.Uint64(), 36),
		subjects: map[string]bool{}, advanced: make(chan struct{}), quit: make(chan struct{}), dogDone: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 4*cfg.RequestTimeout)
	defer cancel()
	if b.stream, err = b.openStream(ctx); err != nil {
		return nil, err
	}
	info := b.stream.CachedInfo()
	b.base, err = strconv.ParseUint(info.Config.Metadata[metaBase], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: stream %s has no %s metadata: not one of this package's", cfg.Stream, metaBase)
	}
	return b, nil
}

// openStream returns the stream, created if it does not exist. Its base
// is the time of its creation in microseconds, so that the IDs of a
// stream created anew (after its loss) are greater than every ID of the
// old one, and those of two streams seldom meet.
func (b *Backend) openStream(ctx context.Context) (jetstream.Stream, error) {
	for attempt := 0; ; attempt++ {
		s, err := b.js.Stream(ctx, b.cfg.Stream)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) || attempt == 3 {
			return nil, fmt.Errorf("natsbroker: stream %s: %w", b.cfg.Stream, err)
		}
		storage := jetstream.FileStorage
		if b.cfg.MemoryStorage {
			storage = jetstream.MemoryStorage
		}
		age := b.cfg.HistoryAge
		window := max(2*b.cfg.PublishTimeout, 2*time.Minute)
		if age < 0 {
			age = 0
		} else {
			window = min(window, age) // JetStream's rule
		}
		s, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:              b.cfg.Stream,
			Subjects:          []string{b.cfg.Subject + ".>"},
			MaxMsgsPerSubject: int64(b.cfg.HistorySize),
			MaxAge:            age,
			Discard:           jetstream.DiscardOld,
			Storage:           storage,
			Replicas:          b.cfg.Replicas,
			Duplicates:        window,
			Metadata:          map[string]string{metaBase: strconv.FormatInt(time.Now().UnixMicro(), 10)},
		})
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("natsbroker: creating stream %s: %w", b.cfg.Stream, err)
		}
		// Another process created it first: take that one.
	}
}

// subject returns topic's subject.
func (b *Backend) subject(topic string) string {
	return b.cfg.Subject + "." + base64.RawURLEncoding.EncodeToString([]byte(topic))
}

// Start implements [broker.Backend]. It delivers nothing until the broker
// watches a topic.
func (b *Backend) Start(deliver func(broker.Message)) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
	defer cancel()
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsbroker: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deliver != nil {
		return 0, errors.New("natsbroker: backend already started")
	}
	b.deliver = deliver
	b.pos = info.State.LastSeq
	go b.watchdog()
	return b.base + b.pos, nil
}

// watchdogEvery is how often the watchdog looks at the live consumer, and
// blindAfter how long it lets it deliver nothing while the stream grows
// before it replaces it though the consumer says nothing is pending.
const (
	watchdogEvery = time.Second
	blindAfter    = 5 * time.Second
)

// resetAttempts is how many times the library's ordered consumer tries to
// recreate itself after a failure before it gives up and the watchdog
// replaces it. The library's default is to try forever, and while it
// tries (the stream without a leader, each attempt waiting up to 10 s)
// it holds the consumer's lock, which the consumer's Info and Stop wait
// for: the watchdog, asking Info, stopped with it, and the instance
// delivered nothing more.
const resetAttempts = 2

// errNoAnswer says a consumer's Info did not return in time.
var errNoAnswer = errors.New("natsbroker: the consumer's info did not come")

// consumerInfo asks cons for its info, giving up when ctx is done or after
// RequestTimeout and a little more: the library's Info waits for the
// consumer's lock, which its reset holds for as long as it tries. The
// call goes on, on a goroutine of its own, that Close waits for.
func (b *Backend) consumerInfo(ctx context.Context, cons jetstream.Consumer) (*jetstream.ConsumerInfo, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, broker.ErrClosed
	}
	type answer struct {
		info *jetstream.ConsumerInfo
		err  error
	}
	ch := make(chan answer, 1)
	b.stops.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
		defer cancel()
		info, err := cons.Info(ctx)
		ch <- answer{info, err}
	})
	b.mu.Unlock()
	t := time.NewTimer(b.cfg.RequestTimeout + 100*time.Millisecond)
	defer t.Stop()
	select {
	case a := <-ch:
		return a.info, a.err
	case <-t.C:
		return nil, errNoAnswer
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// watchdog replaces the live consumer when it is stuck: the consumer has
// messages pending for it, cannot be asked, or the connection reconnected
// since it was made, and it delivered nothing for two looks in a row; or
// topics are watched and making their consumer failed. The ordered
// consumer recreates itself after most failures; this covers the others
// (its server killed while the stream had no leader, say), from the last
// message delivered.
func (b *Backend) watchdog() {
	defer close(b.dogDone)
	t := time.NewTicker(watchdogEvery)
	defer t.Stop()
	var lastPos uint64
	stuck, still := 0, time.Now()
	for {
		select {
		case <-t.C:
		case <-b.quit:
			return
		}
		b.mu.Lock()
		cons, pos, conns := b.cons, b.pos, b.consConns
		if cons == nil && len(b.subjects) > 0 && !b.closed {
			// Topics are watched but no consumer delivers them: making
			// one failed (the stream had no leader, say). Try again.
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
			if err := b.restartLocked(ctx); err != nil {
				b.cfg.ErrorHandler(fmt.Errorf("natsbroker: starting live delivery again: %w", err))
			} else {
				b.restarts.Add(1)
			}
			cancel()
		}
		b.mu.Unlock()
		if cons == nil {
			stuck = 0
			continue
		}
		info, err := b.consumerInfo(context.Background(), cons)
		reconnected := b.nc.Stats().Reconnects != conns
		if pos != lastPos {
			lastPos, stuck, still = pos, 0, time.Now()
			continue
		}
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && !reconnected {
			stuck = 0
			// A consumer whose server died may say nothing pending: once
			// nothing came for blindAfter while the stream grew, replace
			// it all the same (one consumer made, per blindAfter at most).
			if time.Since(still) < blindAfter {
				continue
			}
			still = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
			sinfo, err := b.stream.Info(ctx)
			cancel()
			if err == nil && sinfo.State.LastSeq <= pos {
				continue
			}
		} else if stuck++; stuck < 2 {
			continue
		}
		stuck = 0
		b.mu.Lock()
		if b.cons == cons && !b.closed {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
			if err := b.restartLocked(ctx); err != nil {
				b.cfg.ErrorHandler(fmt.Errorf("natsbroker: replacing a stuck consumer: %w", err))
			} else {
				b.restarts.Add(1)
			}
			cancel()
		}
		b.mu.Unlock()
	}
}

// Publish implements [broker.Backend]. It reads the topic's last stream
// sequence and publishes the event with it (Nats-Expected-Last-Subject-
// Sequence, read again if another publish came first), so that every
// message names its topic's previous one and Replay knows when the history
// lost some; and with a Nats-Msg-Id of the call's own, sent again until
// an acknowledgement comes or Config.PublishTimeout passes, so that the
// stream stores it once. An error wrapping [broker.ErrUnknownOutcome] (a
// [*broker.PublishError]) says no acknowledgement came: the event is
// stored once or not at all.
func (b *Backend) Publish(ctx context.Context, topic string, ev event.Event) (broker.Message, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return broker.Message{}, broker.ErrClosed
	}
	ev, err := broker.MarshalData(ev)
	if err != nil {
		return broker.Message{}, err
	}
	if len(ev.ID) > maxIDLen {
		return broker.Message{}, fmt.Errorf("natsbroker: event ID longer than %d bytes", maxIDLen)
	}
	probe := ev
	if probe.ID == "" {
		probe.ID = "0"
	}
	if _, err := probe.AppendTo(nil); err != nil {
		return broker.Message{}, err
	}
	msg := nats.NewMsg(b.subject(topic))
	msg.Header.Set(hdrTopic, topic)
	if ev.ID != "" {
		msg.Header.Set(hdrID, ev.ID)
	}
	if ev.Type != "" {
		msg.Header.Set(hdrType, ev.Type)
	}
	if ev.Retry > 0 {
		msg.Header.Set(hdrRetry, strconv.FormatInt(ev.Retry.Milliseconds(), 10))
	}
	if ev.Comment != "" {
		msg.Header.Set(hdrComment, ev.Comment)
	}
	switch d := ev.Data.(type) {
	case string:
		msg.Data = []byte(d)
	case []byte:
		msg.Data = d
	case json.RawMessage:
		msg.Data = d
	}
	id := b.instance + "." + strconv.FormatUint(b.calls.Add(1), 36)
	deadline := time.Now().Add(b.cfg.PublishTimeout)
	maybe := false // an attempt may have reached the stream
	var last error
	for attempt := 1; ; attempt++ {
		ack, err := b.publishOnce(ctx, msg, id)
		if err == nil {
			if ack.Duplicate {
				b.dups.Add(1)
			}
			b.published.Add(1)
			seq := b.base + ack.Sequence
			if ev.ID == "" {
				ev.ID = strconv.FormatUint(seq, 10)
			}
			if ev, err = ev.Prepare(); err != nil {
				return broker.Message{}, err
			}
			return broker.Message{Topic: topic, Seq: seq, Time: time.Now(), Event: ev}, nil
		}
		last = err
		var apiErr *jetstream.APIError
		definite := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
			errors.As(err, &apiErr) && apiErr.ErrorCode != 0
		if !definite {
			maybe = true
		}
		if errors.Is(err, nats.ErrConnectionClosed) || ctx.Err() != nil || !time.Now().Add(b.backoff(attempt)).Before(deadline) {
			break
		}
		t := time.NewTimer(b.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if maybe {
		b.unknown.Add(1)
		return broker.Message{}, &broker.PublishError{Topic: topic, ID: ev.ID, Err: fmt.Errorf(
			"natsbroker: %w: no acknowledgement from the stream: %w", broker.ErrUnknownOutcome, last)}
	}
	b.failed.Add(1)
	return broker.Message{}, fmt.Errorf("natsbroker: publishing on %q: %w", topic, last)
}

// publishOnce reads the topic's last sequence and publishes msg after it,
// reading it again as long as another publish comes first.
func (b *Backend) publishOnce(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		prev := uint64(0)
		last, err := b.stream.GetLastMsgForSubject(rctx, msg.Subject)
		switch {
		case err == nil:
			prev = last.Sequence
		case errors.Is(err, jetstream.ErrMsgNotFound):
		default:
			cancel()
			return nil, err
		}
		msg.Header.Set(hdrPrev, strconv.FormatUint(prev, 10))
		ack, err := b.js.PublishMsg(rctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(prev))
		cancel()
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			continue
		}
		return ack, err
	}
}

// backoff returns how long to wait after the n-th failed attempt.
func (b *Backend) backoff(n int) time.Duration {
	d := 50 * time.Millisecond << min(n-1, 5)
	return d/2 + rand.N(d/2+1)
}

// decode returns the message a stored one holds.
func (b *Backend) decode(seq uint64, h nats.Header, data []byte, at time.Time) (broker.Message, uint64, error) {
	topic := h.Get(hdrTopic)
	if topic == "" {
		return broker.Message{}, 0, fmt.Errorf("natsbroker: stream sequence %d is not an event of this package", seq)
	}
	prev, _ := strconv.ParseUint(h.Get(hdrPrev), 10, 64)
	ev := event.Event{ID: h.Get(hdrID), Type: h.Get(hdrType), Comment: h.Get(hdrComment), Data: string(data)}
	if ms, err := strconv.ParseInt(h.Get(hdrRetry), 10, 64); err == nil {
		ev.Retry = time.Duration(ms) * time.Millisecond
	}
	if ev.ID == "" {
		ev.ID = strconv.FormatUint(b.base+seq, 10)
	}
	ev, err := ev.Prepare()
	if err != nil {
		return broker.Message{}, 0, err
	}
	return broker.Message{Topic: topic, Seq: b.base + seq, Time: at, Event: ev}, prev, nil
}

// Replay implements [broker.Backend]: for each topic it reads the first
// message kept after lastEventID, whose previous message must not be
// newer than lastEventID (else the history lost some: ErrGap), then reads
// the messages of all topics in stream order with one ordered consumer
// filtered on their subjects. A topic with no message kept after
// lastEventID lost none unless the stream's age limit removed messages
// after it; a message older than Config.HistoryAge by this process's
// clock counts as removed, though the server may keep it a moment longer.
// Last-Event-IDs are the decimal Seqs this backend assigns; others are
// unknown (ErrGap).
func (b *Backend) Replay(ctx context.Context, topics []string, lastEventID string, upTo uint64) ([]broker.Message, error) {
	n, err := strconv.ParseUint(lastEventID, 10, 64)
	switch {
	case err != nil || len(lastEventID) > maxIDLen:
		return nil, fmt.Errorf("%w: unknown Last-Event-ID %q", broker.ErrGap, lastEventID)
	case n > upTo:
		return nil, fmt.Errorf("%w: unknown Last-Event-ID %q (newer than every message delivered)", broker.ErrGap, lastEventID)
	case n <= b.base:
		return nil, fmt.Errorf("%w: unknown Last-Event-ID %q (not from this stream)", broker.ErrGap, lastEventID)
	}
	after, end := n-b.base, upTo-b.base
	if after == end {
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	info, err := b.stream.Info(rctx)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: replay: %w", err)
	}
	subjects := make([]string, len(topics))
	any := false
	for i, t := range topics {
		subjects[i] = b.subject(t)
		first, err := b.stream.GetMsg(rctx, after+1, jetstream.WithGetMsgSubject(subjects[i]))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			if info.State.FirstSeq > after+1 {
				return nil, fmt.Errorf("%w: events of topic %q published after Last-Event-ID %q may have aged out of the history", broker.ErrGap, t, lastEventID)
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("natsbroker: replay: %w", err)
		}
		// The server removes aged messages a little late: one that is
		// due counts as removed.
		if b.cfg.HistoryAge > 0 && first.Time.Before(time.Now().Add(-b.cfg.HistoryAge)) {
			return nil, fmt.Errorf("%w: events of topic %q published after Last-Event-ID %q have aged out of the history", broker.ErrGap, t, lastEventID)
		}
		if prev, _ := strconv.ParseUint(first.Header.Get(hdrPrev), 10, 64); prev > after {
			return nil, fmt.Errorf("%w: events of topic %q published after Last-Event-ID %q are no longer in the history", broker.ErrGap, t, lastEventID)
		}
		any = any || first.Sequence <= end
	}
	if !any {
		return nil, nil
	}
	cons, err := b.stream.OrderedConsumer(rctx, orderedConfig(subjects, after+1))
	if err != nil {
		return nil, fmt.Errorf("natsbroker: replay: %w", err)
	}
	defer b.deleteConsumer(cons)
	var out []broker.Message
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(b.cfg.RequestTimeout))
		if err != nil {
			return nil, fmt.Errorf("natsbroker: replay: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("natsbroker: replay: %w", err)
			}
			if md.Sequence.Stream > end {
				return out, nil
			}
			msg, _, err := b.decode(md.Sequence.Stream, m.Headers(), m.Data(), md.Timestamp)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
			if md.Sequence.Stream == end || md.NumPending == 0 {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("natsbroker: replay: %w", err)
		}
		if got == 0 {
			return out, nil
		}
	}
}

// Trim implements [broker.Backend]: the stream trims itself (its
// per-subject and age limits), so Trim does nothing.
func (b *Backend) Trim(ctx context.Context) error { return nil }

// Watch implements [broker.Interested]: it reads the stream's last
// sequence, restarts the live consumer from the position delivered so far
// with the new topics' subjects among its filters (or, when it takes every
// subject, lets it go on), and returns once every watched message up to
// that last sequence, or to the position if that is further, is
// delivered.
func (b *Backend) Watch(ctx context.Context, topics []string) (uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	info, err := b.stream.Info(rctx)
	if err != nil {
		return 0, fmt.Errorf("natsbroker: %w", err)
	}
	b.mu.Lock()
	for _, t := range topics {
		b.subjects[b.subject(t)] = true
	}
	// The new topics' messages are delivered from b.pos+1 on: the live
	// consumer may have passed the last sequence read above, and their
	// messages up to where it is now were not delivered.
	from := max(info.State.LastSeq, b.pos)
	// A consumer that takes every subject delivers them as it is: handle
	// reads b.subjects.
	if !b.all || b.cons == nil || b.closed {
		err = b.restartLocked(rctx)
	}
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if err := b.waitDelivered(ctx, from); err != nil {
		return 0, err
	}
	return b.base + from, nil
}

// Unwatch implements [broker.Interested]: the live consumer goes on
// without the topics' subjects.
func (b *Backend) Unwatch(topics []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range topics {
		delete(b.subjects, b.subject(t))
	}
	if b.all && b.cons != nil && len(b.subjects) > b.cfg.MaxFilterSubjects/2 {
		return // handle drops them
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
	defer cancel()
	if err := b.restartLocked(ctx); err != nil {
		b.cfg.ErrorHandler(err)
	}
}

// restartLocked replaces the live consumer by one from b.pos+1 on the
// watched subjects (none if there are none). b.mu is held.
func (b *Backend) restartLocked(ctx context.Context) error {
	if b.closed {
		return broker.ErrClosed
	}
	b.stopLocked()
	if len(b.subjects) == 0 {
		return nil
	}
	var subjects []string
	if b.all = b.cfg.MaxFilterSubjects > 0 && len(b.subjects) > b.cfg.MaxFilterSubjects; b.all {
		subjects = []string{b.cfg.Subject + ".>"}
	} else {
		subjects = make([]string, 0, len(b.subjects))
		for s := range b.subjects {
			subjects = append(subjects, s)
		}
		slices.Sort(subjects)
	}
	cons, err := b.stream.OrderedConsumer(ctx, orderedConfig(subjects, b.pos+1))
	if err != nil {
		return fmt.Errorf("natsbroker: starting live delivery: %w", err)
	}
	b.gen++
	gen := b.gen
	// Heartbeats every second, so that a consumer whose server died is
	// noticed and recreated within two (the default is ten).
	cc, err := cons.Consume(func(m jetstream.Msg) { b.handle(gen, m) },
		jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.cfg.ErrorHandler(fmt.Errorf("natsbroker: live delivery: %w", err))
		}))
	if err != nil {
		return fmt.Errorf("natsbroker: starting live delivery: %w", err)
	}
	b.cons, b.cc = cons, cc
	b.consConns = b.nc.Stats().Reconnects
	return nil
}

// stopLocked stops the live consumer. b.mu is held. The consumer stops
// on a goroutine of its own: its Stop may wait for the library's reset
// (recreating the consumer while the stream has no leader), which may
// wait for a handler, which waits for b.mu. Meanwhile what it still hands
// over is dropped: its generation is over.
func (b *Backend) stopLocked() {
	b.gen++
	b.all = false
	if cc, cons := b.cc, b.cons; cc != nil {
		b.stops.Go(func() {
			cc.Stop()
			b.deleteConsumer(cons)
		})
		b.cc, b.cons = nil, nil
	}
}

// consumerIdle is how long the server keeps a consumer nobody pulls from,
// for when deleteConsumer could not reach it. (The library's default is
// five minutes: an instance whose topics come and go would leave the
// server a consumer per Watch, each filtered on every watched subject.)
const consumerIdle = 30 * time.Second

// orderedConfig configures an ordered consumer, live or a replay's, of
// subjects from stream sequence start on.
func orderedConfig(subjects []string, start uint64) jetstream.OrderedConsumerConfig {
	return jetstream.OrderedConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		MaxResetAttempts:  resetAttempts,
		InactiveThreshold: consumerIdle,
	}
}

// deleteConsumer deletes a stopped consumer from the server, which would
// keep it for consumerIdle otherwise.
func (b *Backend) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
	defer cancel()
	_ = b.js.DeleteConsumer(ctx, b.cfg.Stream, info.Name)
}

// handle delivers a message of the live consumer of generation gen.
func (b *Backend) handle(gen uint64, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen || b.closed || md.Sequence.Stream <= b.pos {
		return
	}
	if b.all && !b.subjects[m.Subject()] {
		b.dropped.Add(1)
		b.advanceLocked(md.Sequence.Stream)
		return
	}
	msg, _, err := b.decode(md.Sequence.Stream, m.Headers(), m.Data(), md.Timestamp)
	if err != nil {
		b.cfg.ErrorHandler(fmt.Errorf("natsbroker: skipping a message: %w", err))
	} else {
		b.delivered.Add(1)
		b.deliver(msg)
	}
	b.advanceLocked(md.Sequence.Stream)
}

// advanceLocked moves the position on to seq. b.mu is held.
func (b *Backend) advanceLocked(seq uint64) {
	if seq > b.pos {
		b.pos = seq
		close(b.advanced)
		b.advanced = make(chan struct{})
	}
}

// waitDelivered returns once every watched message up to stream sequence
// seq is delivered: the position reached it, or the live consumer has
// nothing pending and has handed over all it received.
func (b *Backend) waitDelivered(ctx context.Context, seq uint64) error {
	poll := time.Millisecond
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return broker.ErrClosed
		}
		if b.pos >= seq || b.cons == nil {
			b.advanceLocked(seq)
			b.mu.Unlock()
			return nil
		}
		cons, gen, advanced := b.cons, b.gen, b.advanced
		b.mu.Unlock()
		info, err := b.consumerInfo(ctx, cons)
		if errors.Is(err, broker.ErrClosed) {
			return err
		}
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			b.mu.Lock()
			if gen == b.gen && b.pos >= info.Delivered.Stream {
				b.advanceLocked(seq)
				b.mu.Unlock()
				return nil
			}
			b.mu.Unlock()
		}
		t := time.NewTimer(poll)
		select {
		case <-advanced:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
		poll = min(2*poll, 50*time.Millisecond)
	}
}

// Sync implements [broker.Syncer]: it waits until every message of the
// watched topics published before it was called is delivered.
func (b *Backend) Sync(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	info, err := b.stream.Info(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("natsbroker: %w", err)
	}
	return b.waitDelivered(ctx, info.State.LastSeq)
}

// Close implements [broker.Backend]: it stops live delivery. It does not
// close the connection. Calls after the first return nil.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.stopLocked()
	b.closed = true
	started := b.deliver != nil
	close(b.quit)
	b.mu.Unlock()
	if started {
		<-b.dogDone
	}
	b.stops.Wait()
	b.mu.Lock()
	return nil
}

// Stats are a backend's counters.
type Stats struct {
	// Published is the number of events this process published;
	// Deduplicated those of them that an earlier attempt of the same call
	// had stored (the stream answered with a duplicate acknowledgement).
	Published, Deduplicated uint64
	// UnknownOutcomes and PublishErrors count the Publish calls that
	// returned broker.ErrUnknownOutcome, and the other failed ones.
	UnknownOutcomes, PublishErrors uint64
	// Delivered is the number of messages delivered to the broker: those
	// of watched topics only.
	Delivered uint64
	// Watched is the number of topics delivered.
	Watched int
	// Restarts is the number of times the live consumer was found stuck
	// and replaced.
	Restarts uint64
	// Unfiltered says the live consumer takes every topic's messages:
	// more than Config.MaxFilterSubjects topics are watched. Dropped is
	// the number of messages it read of topics not watched.
	Unfiltered bool
	Dropped    uint64
}

// Stats returns the backend's counters.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	watched, all := len(b.subjects), b.all
	b.mu.Unlock()
	return Stats{Published: b.published.Load(), Deduplicated: b.dups.Load(), UnknownOutcomes: b.unknown.Load(),
		PublishErrors: b.failed.Load(), Delivered: b.delivered.Load(), Watched: watched, Restarts: b.restarts.Load(),
		Unfiltered: all, Dropped: b.dropped.Load()}
}

var (
	_ broker.Backend    = (*Backend)(nil)
	_ broker.Syncer     = (*Backend)(nil)
	_ broker.Interested = (*Backend)(nil)
)
