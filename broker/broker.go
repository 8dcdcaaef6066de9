package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// A Broker sends the events published on a topic to every stream
// subscribed to it, and replays to a reconnecting stream the events it
// missed. All its methods are safe for concurrent use.
type Broker struct {
	cfg     Config
	backend Backend

	mu         sync.Mutex
	last       uint64 // the Seq of the last message delivered
	topics     map[string]*topic
	subs       map[chan<- event.Event]*sub
	maxPending int // how many events a catching-up stream may fall behind
	closed     atomic.Bool

	published   atomic.Uint64
	replayed    atomic.Uint64
	slowClients atomic.Uint64
	dropped     atomic.Uint64
	gaps        atomic.Uint64
	lost        atomic.Uint64

	quit        chan struct{} // closed by Close: the janitor stops
	janitorDone chan struct{}

	// overflowing holds the live streams whose buffer was full when an
	// event came: their events wait in sub.pending, and the janitor
	// moves them on (kicked through kick) as the buffers empty.
	overflowing map[*sub]struct{}
	kick        chan struct{}

	// problems are the errors for Config.ErrorHandler met while b.mu was
	// held; the janitor (kicked through report) hands them over.
	problems []error
	report   chan struct{}

	removeSteps int // memberships taken out of topics, for tests; b.mu

	// With an Interested backend: the topics it watches, each with when it
	// was watched or last had no subscriber left (b.mu); imu makes one
	// Watch or sweep at a time, and is taken before b.mu.
	interested Interested
	imu        sync.Mutex
	watched    map[string]time.Time
	watchQueue []*watchRequest // b.mu
	watchCalls int             // Watch calls that succeeded, for tests; b.mu
}

// topic is the set of streams subscribed to one topic.
type topic struct {
	name string
	subs []member
}

// member is a stream in a topic's set. What Publish reads for each
// subscriber sits in this array, so that it touches little else.
type member struct {
	c        chan<- event.Event
	s        *sub
	k        int32 // the index of this membership in s.in
	catching bool  // the stream's replay is being sent: see sub.pending
}

// sub is one subscribed stream. (Its flags are last, together: a
// subscription is the size every subscriber pays for.)
type sub struct {
	c    chan<- event.Event
	st   target
	in   []membership // the topics it is subscribed to
	stop func() bool  // unregisters the context.AfterFunc

	// While its replay is being sent (member.catching), or while its
	// buffer overflows (overflow), live events wait in pending instead of
	// going to c.
	pending queue
	// While s overflows, pending is also moved on by the stream's pump
	// (refill), which takes pmu and never b.mu: so Publish holds pmu too
	// when it touches pending of a stream that overflows, and whoever
	// empties pending holds both. behind is overflow, for the pump to read
	// without b.mu.
	pmu    sync.Mutex
	behind atomic.Bool

	removed  bool
	overflow bool
	// refills: the stream's pump calls refill (an *sse.Stream), so that
	// the janitor leaves pending to it while its buffer holds events.
	refills bool
}

// queue is a FIFO of events that reuses its array: events taken from the
// front leave room that is reclaimed once it is half the array, instead of
// a trail of garbage behind a moving slice. It holds pointers: every
// subscriber that falls behind on an event shares one copy of it.
type queue struct {
	evs  []*event.Event
	head int // evs[head:] are queued
}

func (q *queue) len() int { return len(q.evs) - q.head }

func (q *queue) push(ev *event.Event) {
	if q.evs == nil {
		if p, ok := queueArrays.Get().(*[]*event.Event); ok {
			q.evs = *p
		}
	}
	if len(q.evs) == cap(q.evs) && q.head >= cap(q.evs)/2 {
		n := copy(q.evs, q.evs[q.head:])
		clear(q.evs[n:])
		q.evs, q.head = q.evs[:n], 0
	}
	q.evs = append(q.evs, ev)
}

// front returns the first event; the queue must not be empty.
func (q *queue) front() event.Event { return *q.evs[q.head] }

// pop drops the first event; the queue must not be empty. The array goes
// when the queue is empty.
func (q *queue) pop() {
	q.evs[q.head] = nil
	q.head++
	if q.head == len(q.evs) {
		q.reset()
	}
}

// take returns the queued events and empties the queue, which gives up
// its array to the caller.
func (q *queue) take() []*event.Event {
	evs := q.evs[q.head:]
	*q = queue{}
	return evs
}

// reset empties the queue and gives its array to the next queue that
// needs one.
func (q *queue) reset() {
	if c := cap(q.evs); c > 0 && c <= maxPooledQueue {
		clear(q.evs[q.head:])
		evs := q.evs[:0]
		queueArrays.Put(&evs)
	}
	*q = queue{}
}

// queueArrays holds the arrays of emptied queues: streams fall behind and
// catch up all the time on a busy server, and each episode would
// otherwise allocate its own.
var queueArrays sync.Pool

// maxPooledQueue bounds the arrays queueArrays keeps, in events.
const maxPooledQueue = 8192

type membership struct {
	t *topic
	i int // the sub's index in t.subs
}

// target is what the broker needs of a stream besides its channel;
// *sse.Stream has it, and benchmarks use a lighter one.
type target interface {
	Context() context.Context
	LastEventID() string
	Abort(cause error)
}

// refiller is a target whose pump asks for held-back events when its
// buffer runs empty, as an *sse.Stream does (sse.Stream.SetRefill).
type refiller interface{ SetRefill(f func()) }

// afterFunc calls f in its own goroutine once st's context is done, through
// st's own AfterFunc when it has one (an *sse.Stream does: lighter than
// registering with its context), and returns the function that stops it.
func afterFunc(st target, ctx context.Context, f func()) (stop func() bool) {
	if a, ok := st.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// New returns a Broker configured by cfg, whose zero fields take their
// values from [DefaultConfig], or an error saying what to fix. It starts one
// goroutine, which trims the history periodically; [Broker.Close] stops it.
func New(cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:         cfg,
		backend:     cfg.Backend,
		topics:      make(map[string]*topic),
		subs:        make(map[chan<- event.Event]*sub),
		maxPending:  cfg.MaxBehind,
		quit:        make(chan struct{}),
		janitorDone: make(chan struct{}),
		overflowing: make(map[*sub]struct{}),
		kick:        make(chan struct{}, 1),
		report:      make(chan struct{}, 1),
	}
	if b.backend == nil {
		m := newMemory(cfg.HistorySize, cfg.HistoryAge, cfg.timeNow)
		m.topicBytes, m.totalBytes = cfg.HistoryBytes, cfg.TotalHistoryBytes
		b.backend = m
	}
	if n, ok := b.backend.(LossNotifier); ok {
		n.NotifyLoss(b.lose)
	}
	if in, ok := b.backend.(Interested); ok {
		b.interested = in
		b.watched = make(map[string]time.Time)
	}
	if b.last, err = b.backend.Start(b.deliver); err != nil {
		return nil, fmt.Errorf("broker: starting the backend: %w", err)
	}
	go b.janitor(trimInterval(cfg))
	return b, nil
}

// trimInterval is how often the janitor trims the history: often enough
// that an idle topic outlives its age limit by half of it at most.
func trimInterval(cfg Config) time.Duration {
	if cfg.Backend != nil || cfg.HistoryAge <= 0 {
		return time.Minute
	}
	return min(max(cfg.HistoryAge/2, time.Second), time.Minute)
}

func (b *Broker) janitor(every time.Duration) {
	defer close(b.janitorDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	var sweepC <-chan time.Time
	if b.interested != nil {
		sweep := time.NewTicker(max(b.cfg.interestLinger/4, time.Millisecond))
		defer sweep.Stop()
		sweepC = sweep.C
	}
	var drain *time.Ticker // runs while some stream overflows
	var drainC <-chan time.Time
	defer func() {
		if drain != nil {
			drain.Stop()
		}
	}()
	for {
		select {
		case <-t.C:
			if err := b.backend.Trim(ctx); err != nil {
				b.cfg.ErrorHandler(fmt.Errorf("broker: trimming the history: %w", err))
			}
		case <-sweepC:
			b.sweepInterest(b.interested)
		case <-b.report:
			b.mu.Lock()
			problems := b.problems
			b.problems = nil
			b.mu.Unlock()
			for _, err := range problems {
				b.cfg.ErrorHandler(err)
			}
		case <-b.kick:
			if drain == nil {
				drain = time.NewTicker(drainEvery)
				drainC = drain.C
			}
		case <-drainC:
			if !b.drainAll() {
				drain.Stop()
				drain, drainC = nil, nil
			}
		case <-b.quit:
			return
		}
	}
}

// drainEvery is how often the janitor moves the events of overflowing
// streams into their buffers.
const drainEvery = 5 * time.Millisecond

// drainAll moves what it can of every overflowing stream's pending events
// into its buffer, and reports whether some stream still overflows.
func (b *Broker) drainAll() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.overflowing {
		// A pump with events in its buffer takes pending when it has
		// written them (refill): moving them on here would only hold
		// b.mu, and Publish with it, for every stream behind.
		if s.refills && len(s.c) > 0 {
			continue
		}
		b.drain(s)
	}
	return len(b.overflowing) > 0
}

// drain moves s's pending events into its buffer, in order, as far as
// there is room; once none is left, s is live again. b.mu is held.
func (b *Broker) drain(s *sub) {
	s.pmu.Lock()
	empty, closed := s.moveOn()
	if empty && !closed {
		s.overflow = false
		s.behind.Store(false)
	}
	s.pmu.Unlock()
	switch {
	case closed:
		b.channelClosed(s)
	case empty:
		delete(b.overflowing, s)
	}
}

// moveOn moves s's pending events into its buffer, in order, as far as
// there is room, and reports whether none is left, or that the buffer's
// channel is closed. s.pmu is held.
func (s *sub) moveOn() (empty, closed bool) {
	for s.pending.len() > 0 {
		sent, closed := offer(s.c, s.pending.evs[s.pending.head])
		if closed || !sent {
			return false, closed
		}
		s.pending.pop()
	}
	return true, false
}

// refill is what the pump of s's stream calls when it has emptied the
// stream's buffer in the middle of a batch (sse.Stream.SetRefill): while s
// overflows, it moves s's pending events into the buffer then, so that the
// pump writes them with the same flush rather than one buffer's worth per
// Publish or janitor tick. A stream that falls behind then catches up
// with large batches, as cheap per event as its client allows. It takes
// s.pmu, never b.mu, so that a Publish under way (or one the scheduler
// paused while it held b.mu) does not keep the pump from what is waiting;
// it leaves it to the next Publish or the janitor to find s live again,
// or its channel closed.
func (b *Broker) refill(s *sub) {
	if !s.behind.Load() {
		return
	}
	s.pmu.Lock()
	if s.behind.Load() {
		s.moveOn()
	}
	s.pmu.Unlock()
}

// Publish sends ev to every stream subscribed to topic, and keeps it in the
// topic's history for streams that reconnect. It returns the event's ID:
// the one ev has, or else one the broker assigns (with the default
// backend, a decimal number greater than every ID assigned before it, on
// any topic). Give events your own IDs only if they are unique: a client
// resumes from the newest event in the history that has its Last-Event-ID.
//
// Publish never waits for a subscriber: a stream whose buffer is full is
// handled as Config.SlowClient says. With the default backend, every
// stream subscribed to topic has the event in its buffer (or was found
// slow) when Publish returns, and all streams receive events in the order
// of their IDs.
//
// It returns an error, and publishes nothing, when topic is empty, when ev
// cannot be encoded (an [*event.FieldError]), when ctx is done, or after
// Close ([ErrClosed]); with a distributed backend, also when the backend
// refused the event or could not be reached. When such a backend sent the
// event but got no answer, the event may have been published all the
// same: then the error is a [*PublishError] wrapping [ErrUnknownOutcome],
// with the event's ID if the caller set one. The default backend never
// returns one.
func (b *Broker) Publish(ctx context.Context, topic string, ev event.Event) (id string, err error) {
	if topic == "" {
		return "", errors.New("broker: Publish needs a topic")
	}
	if b.closed.Load() {
		return "", ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	msg, err := b.backend.Publish(ctx, topic, ev)
	if err != nil {
		return "", err
	}
	b.published.Add(1)
	return msg.Event.ID, nil
}

// deliver sends msg to the subscribers of its topic. The backend calls it
// one message at a time, in Seq order; holding b.mu while sending keeps
// that order for every stream, whatever its topics.
func (b *Broker) deliver(msg Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if msg.Seq <= b.last || b.closed.Load() {
		return
	}
	b.last = msg.Seq
	t := b.topics[msg.Topic]
	if t == nil {
		return
	}
	var ev *event.Event // msg.Event on the heap, once a subscriber must wait for it
	// Backwards, so that removing a subscriber (which moves the last one
	// into its place) skips no one.
	for i := len(t.subs) - 1; i >= 0; {
		i = b.fanOut(t, i, &msg.Event, &ev)
	}
}

// fanOut sends ev to t.subs[from], t.subs[from-1], and so on to t.subs[0],
// and returns -1; *heap is ev's copy on the heap, made once some
// subscriber must wait for it. If a subscriber's channel turns out to be
// closed, it ends that subscription (see offer) and returns the index to
// go on from: so the guard costs one deferred call per Publish, not one
// per subscriber. b.mu is held.
func (b *Broker) fanOut(t *topic, from int, ev *event.Event, heap **event.Event) (next int) {
	i := from
	defer func() {
		if r := recover(); r != nil && closedSend(r) { // the send to t.subs[i].c
			b.channelClosed(t.subs[i].s)
			next = i - 1
		}
	}()
	for ; i >= 0; i-- {
		m := &t.subs[i]
		s := m.s
		if s.removed {
			continue // its stream has ended: removeLater is taking it out
		}
		if s.overflow {
			b.drain(s)
			if s.removed {
				continue // its channel was closed
			}
		}
		if !m.catching && !s.overflow {
			select {
			case m.c <- *ev:
				continue
			default:
			}
			// The buffer is full. A stream that falls behind for a
			// moment (a burst, a busy server) is not slow yet: its
			// events wait, as a replay's do, up to the same bound.
			if b.cfg.SlowClient == SlowClientDrop || s.st.Context().Err() != nil {
				b.full(s)
				continue
			}
			s.pmu.Lock()
			s.overflow = true
			s.behind.Store(true)
			s.pmu.Unlock()
			b.overflowing[s] = struct{}{}
			select {
			case b.kick <- struct{}{}:
			default:
			}
		}
		s.pmu.Lock()
		if s.pending.len() < b.maxPending {
			if *heap == nil {
				*heap = new(event.Event) // one copy for every subscriber that needs it
				**heap = *ev
			}
			s.pending.push(*heap)
			s.pmu.Unlock()
			continue
		}
		s.pmu.Unlock()
		b.full(s)
	}
	return -1
}

// lose ends the subscriptions of the topics of l (of every topic if
// l.Topics is nil), aborting their streams with ErrLost: the backend lost
// events they may have missed.
func (b *Broker) lose(l Loss) {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return
	}
	var ended []*sub
	if l.Topics == nil {
		for _, s := range b.subs {
			ended = append(ended, s)
		}
	} else {
		seen := make(map[*sub]bool)
		for _, name := range l.Topics {
			if t := b.topics[name]; t != nil {
				for _, m := range t.subs {
					if !seen[m.s] {
						seen[m.s] = true
						ended = append(ended, m.s)
					}
				}
			}
		}
	}
	for _, s := range ended {
		b.remove(s)
	}
	b.mu.Unlock()
	b.lost.Add(uint64(len(ended)))
	cause := ErrLost
	if l.Err != nil {
		cause = fmt.Errorf("%w: %w", ErrLost, l.Err)
	}
	for _, s := range ended {
		s.st.Abort(cause)
	}
}

// full applies the slow-client policy to s, whose buffer is full.
func (b *Broker) full(s *sub) {
	if s.st.Context().Err() != nil {
		// The stream has ended and its AfterFunc is on its way: the
		// client is gone, not slow.
		b.remove(s)
		return
	}
	b.dropped.Add(1)
	if b.cfg.SlowClient == SlowClientDrop {
		return
	}
	b.slowClients.Add(1)
	b.remove(s)
	s.st.Abort(ErrSlowClient)
}

// Subscribe sends to s the events published on topics, until the stream
// ends or the broker closes. Call it from the handler, after it
// opened s through any front door (echosse.Open for Echo v4,
// echosse5.Open for Echo v5, [sse.Server.Open] or [sse.Server.Handler] for
// net/http); it returns once the stream is live. One broker serves streams
// of every door in the process.
//
// When the client reconnects (s.LastEventID() is not empty), Subscribe
// first sends s the events of topics published after that ID, waiting for
// room in the stream's buffer, then goes on with live events: each event
// once, in order, even when Publish runs at the same time. It returns once
// everything it replays is in the stream's buffer and the buffer is half
// empty again, ready for live events. If the history no
// longer covers that ID, or does not know it, Subscribe replays nothing,
// subscribes s to live events all the same, and returns an error wrapping
// [ErrGap]: the handler should send the client a full refresh (or tell it
// to reload), as the client has missed events.
//
// Once subscribed, the broker sends on s.C from Publish's goroutine: the
// handler may still send its own events with [sse.Stream.Send], but
// must not close s.C; it may give them no ID, so that the client keeps the
// last one. (A handler that closes s.C all the same does not make the
// broker panic: the broker ends that subscription, aborts the stream with
// an error wrapping [ErrChannelClosed], tells Config.ErrorHandler, and
// Subscribe returns that error if it has not returned yet.) The subscription ends when the stream does (the client leaves,
// the handler returns an error, the stream is aborted as a slow client) or
// when the broker closes, which aborts the stream with [ErrClosed]; with a
// backend that lost events it had stored ([LossNotifier]), it ends with
// [ErrLost], and the client that comes back with the ID of an event from
// before the loss gets ErrGap.
//
// Subscribe returns nil if the stream ends before it returns, [ErrClosed]
// after Close, [ErrSubscribed] for a stream already subscribed, or an
// error for an empty topic list or topic name.
func (b *Broker) Subscribe(s *sse.Stream, topics ...string) error {
	if s == nil {
		return errors.New("broker: Subscribe needs a stream")
	}
	return b.subscribe(s.C, s, topics)
}

func (b *Broker) subscribe(c chan<- event.Event, st target, topics []string) error {
	if len(topics) == 0 {
		return errors.New("broker: Subscribe needs at least one topic")
	}
	if slices.Contains(topics, "") {
		return errors.New("broker: Subscribe needs non-empty topic names")
	}
	if len(topics) > 1 { // the caller's slice is left alone
		topics = slices.Clone(topics)
		slices.Sort(topics)
		topics = slices.Compact(topics)
	}
	ctx := st.Context()
	lastID := st.LastEventID()

	s := &sub{c: c, st: st}
	catching := lastID != ""
	if sy, ok := b.backend.(Syncer); ok && catching {
		// Let delivery catch up with what other processes published, so
		// that the client's Last-Event-ID is not beyond upTo.
		if err := sy.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("broker: replay: %w", err)
		}
	}
	if b.interested != nil {
		// The topics must be watched before upTo is read: Watch raises
		// b.last to where delivery of the new topics is certain, and the
		// replay covers everything up to it.
		// imu is held until the stream is registered, so that no sweep
		// unwatches its topics meanwhile.
		req := b.queueWatch(topics)
		b.imu.Lock()
		if err := b.watch(ctx, b.interested, topics, req); err != nil {
			b.imu.Unlock()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	b.mu.Lock()
	var refuse error
	switch {
	case b.closed.Load():
		refuse = ErrClosed
	case ctx.Err() != nil:
	case b.subs[c] != nil:
		refuse = ErrSubscribed
	}
	if refuse != nil || ctx.Err() != nil {
		b.mu.Unlock()
		if b.interested != nil {
			b.imu.Unlock()
		}
		return refuse
	}
	upTo := b.last
	b.add(s, topics, catching)
	if r, ok := st.(refiller); ok {
		s.refills = true
		r.SetRefill(func() { b.refill(s) })
	}
	// No goroutine waits for the stream's end: the context runs this
	// when it comes.
	s.stop = afterFunc(st, ctx, func() { b.removeLater(s) })
	b.mu.Unlock()
	if b.interested != nil {
		b.imu.Unlock()
	}
	if !catching {
		return nil
	}

	// Everything up to upTo is in the backend's history; everything after
	// it goes to s.pending, which is sent after the replay.
	msgs, err := b.backend.Replay(ctx, topics, lastID, upTo)
	var gap error
	switch {
	case errors.Is(err, ErrGap):
		gap = err
		b.gaps.Add(1)
	case err != nil:
		b.mu.Lock()
		b.remove(s)
		b.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("broker: replay: %w", err)
	}
	for i := range msgs {
		if sent, closed := send(ctx, c, msgs[i].Event); !sent {
			b.replayed.Add(uint64(i))
			return b.channelClosedUnlocked(s, closed)
		}
	}
	b.replayed.Add(uint64(len(msgs)))
	msgs = nil
	wait := minCatchUpPoll
	for {
		if ctx.Err() != nil {
			return nil
		}
		b.mu.Lock()
		if s.removed {
			b.mu.Unlock()
			return nil
		}
		batch := s.pending.take()
		if len(batch) == 0 && len(c) <= cap(c)/2 {
			for _, m := range s.in {
				m.t.subs[m.i].catching = false
			}
			b.mu.Unlock()
			return gap
		}
		b.mu.Unlock()
		if len(batch) == 0 {
			// The replay filled the buffer: let the stream write some
			// of it before going live, or the next Publish would find
			// it full and take a client that is keeping up for a slow
			// one. Live events wait in s.pending meanwhile.
			time.Sleep(wait)
			wait = min(2*wait, maxCatchUpPoll)
			continue
		}
		for _, ev := range batch {
			if sent, closed := send(ctx, c, *ev); !sent {
				return b.channelClosedUnlocked(s, closed)
			}
		}
		wait = minCatchUpPoll
	}
}

// How often Subscribe looks, after the replay, whether the stream's buffer
// is half empty again: soon at first, less and less often for a stream
// that does not move (its write timeout, or a live event that finds
// s.pending full, ends it).
const (
	minCatchUpPoll = 100 * time.Microsecond
	maxCatchUpPoll = 20 * time.Millisecond
)

// send sends ev on c, waiting for room unless the stream ends first, and
// reports whether it did; closed reports that c was closed (see offer).
func send(ctx context.Context, c chan<- event.Event, ev event.Event) (sent, closed bool) {
	if sent, closed = offer(c, &ev); sent || closed {
		return sent, closed
	}
	defer recoverClosed(&closed)
	select {
	case c <- ev:
		return true, false
	case <-ctx.Done():
		return false, false
	}
}

// offer sends *ev on c if there is room, without waiting, and reports
// whether it did; closed reports that c was closed.
//
// The broker sends on channels it does not own, and the documentation of
// Subscribe forbids closing them; but a handler that does would otherwise
// make the send panic on the goroutine of whoever publishes (with a
// distributed backend, the backend's reader), far from the mistake, and
// take down the whole process with every other stream. So the send, and
// nothing else, is guarded: a panic other than a send on a closed channel
// goes on. The deferred call is open-coded by the compiler: it allocates
// nothing and costs a few nanoseconds per send. Publish's fan-out, where
// those would add up, guards its whole loop once instead (fanOut).
func offer(c chan<- event.Event, ev *event.Event) (sent, closed bool) {
	defer recoverClosed(&closed)
	select {
	case c <- *ev:
		return true, false
	default:
		return false, false
	}
}

// recoverClosed, deferred, stops the panic of a send on a closed channel
// and sets *closed; it lets any other panic go on.
func recoverClosed(closed *bool) {
	if r := recover(); r != nil {
		*closed = closedSend(r)
	}
}

// closedSend reports whether r, recovered, is the panic of a send on a
// closed channel; if it is not, closedSend panics with it again.
func closedSend(r any) bool {
	if err, ok := r.(runtime.Error); !ok || err.Error() != "send on closed channel" {
		panic(r)
	}
	return true
}

// channelClosed ends the subscription of s, whose channel its handler
// closed: it unregisters s, aborts its stream with an error wrapping
// [ErrChannelClosed], has the janitor tell Config.ErrorHandler, and
// returns the error. b.mu is held.
func (b *Broker) channelClosed(s *sub) error {
	what := "a stream"
	if len(s.in) > 0 {
		what = fmt.Sprintf("a stream subscribed to %q", s.in[0].t.name)
		if n := len(s.in) - 1; n > 0 {
			what += fmt.Sprintf(" and %d more topics", n)
		}
	}
	err := fmt.Errorf("%w: %s; its subscription is ended", ErrChannelClosed, what)
	b.remove(s)
	s.st.Abort(err)
	b.problems = append(b.problems, err)
	select {
	case b.report <- struct{}{}:
	default:
	}
	return err
}

// channelClosedUnlocked is what Subscribe returns when a send of its own
// failed: channelClosed's error if the channel was closed, else nil (the
// stream ended). b.mu is not held.
func (b *Broker) channelClosedUnlocked(s *sub, closed bool) error {
	if !closed {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.channelClosed(s)
}

// add registers s on topics. b.mu is held.
func (b *Broker) add(s *sub, topics []string, catching bool) {
	s.in = make([]membership, len(topics))
	for i, name := range topics {
		t := b.topics[name]
		if t == nil {
			t = &topic{name: name}
			b.topics[name] = t
		}
		s.in[i] = membership{t: t, i: len(t.subs)}
		t.subs = append(t.subs, member{c: s.c, catching: catching, s: s, k: int32(i)})
	}
	b.subs[s.c] = s
}

// remove unregisters s at once, if it still is registered. b.mu is held.
func (b *Broker) remove(s *sub) {
	if b.unregister(s) {
		b.leave(s, len(s.in))
	}
}

// removeLater unregisters s, if it still is registered, taking it out of
// its topics removeChunk at a time and letting go of b.mu in between: a
// stream on thousands of topics does not hold up Publish until it is out
// of them all. It is how a stream that ends leaves; b.mu is not held.
func (b *Broker) removeLater(s *sub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.unregister(s) {
		return
	}
	for !b.leave(s, removeChunk) && !b.closed.Load() {
		b.mu.Unlock()
		runtime.Gosched() // a Publish waiting for b.mu goes first
		b.mu.Lock()
	}
}

// removeChunk is how many topics removeLater takes a stream out of at a
// time: a few microseconds' work.
const removeChunk = 256

// unregister marks s removed, so that nothing is sent to it any more, and
// reports whether it was registered. It stays in b.subs and in its topics
// until leave takes it out. b.mu is held.
func (b *Broker) unregister(s *sub) bool {
	if s.removed {
		return false
	}
	s.removed = true
	s.stop()
	s.pmu.Lock()
	s.pending.reset()
	s.overflow = false
	s.behind.Store(false)
	s.pmu.Unlock()
	delete(b.overflowing, s)
	return true
}

// leave takes the unregistered s out of n of its topics at most, the last
// of s.in first, and reports whether it is in none any more (then it is
// out of b.subs too). Each costs O(1): the member that takes s's place in
// a topic's array knows where its own membership is (member.k). b.mu is
// held.
func (b *Broker) leave(s *sub, n int) bool {
	for ; n > 0 && len(s.in) > 0; n-- {
		m := s.in[len(s.in)-1]
		s.in = s.in[:len(s.in)-1]
		b.removeSteps++
		t := m.t
		last := len(t.subs) - 1
		if m.i != last {
			moved := t.subs[last]
			t.subs[m.i] = moved
			moved.s.in[moved.k].i = m.i
		}
		t.subs[last] = member{}
		t.subs = t.subs[:last]
		if last == 0 {
			delete(b.topics, t.name)
			if _, ok := b.watched[t.name]; ok {
				b.watched[t.name] = b.cfg.timeNow() // idle from now: see sweepInterest
			}
		}
	}
	if len(s.in) > 0 {
		return false
	}
	delete(b.subs, s.c)
	return true
}
