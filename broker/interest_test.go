package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// A hub stands in for a shared server: one history of every topic (the
// in-memory one) and one log of every message, which each backend on it
// reads on a goroutine of its own, delivering only the topics its broker
// watches, as a distributed Interested backend would.
type hub struct {
	mem *memory

	mu      sync.Mutex
	log     []Message
	changed chan struct{} // closed and replaced when log grows
}

func newHub() *hub {
	h := &hub{mem: newMemory(1000, time.Hour, time.Now), changed: make(chan struct{})}
	h.mem.deliver = func(msg Message) { // under h.mem.mu: in Seq order
		h.mu.Lock()
		h.log = append(h.log, msg)
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
	return h
}

// hubBackend is an Interested, Syncer Backend on a hub.
type hubBackend struct {
	h *hub

	mu        sync.Mutex
	watched   map[string]bool
	processed uint64 // the Seq of the last message of the log read
	delivered int    // messages delivered
	unwatched []string
	advanced  chan struct{}
	quit      chan struct{}
	done      chan struct{}
}

func (h *hub) backend() *hubBackend {
	return &hubBackend{h: h, watched: map[string]bool{}, advanced: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
}

func (b *hubBackend) Start(deliver func(Message)) (uint64, error) {
	b.h.mu.Lock()
	pos := len(b.h.log)
	b.h.mu.Unlock()
	b.h.mem.mu.Lock()
	last := b.h.mem.seq
	b.h.mem.mu.Unlock()
	b.processed = last
	go b.read(deliver, pos)
	return last, nil
}

// read delivers the log's messages of watched topics from pos on, a little
// late, as a network would.
func (b *hubBackend) read(deliver func(Message), pos int) {
	defer close(b.done)
	for {
		b.h.mu.Lock()
		msgs, changed := b.h.log[pos:], b.h.changed
		b.h.mu.Unlock()
		pos += len(msgs)
		for _, msg := range msgs {
			b.mu.Lock() // Watch waits: what it reads of processed is delivered
			if b.watched[msg.Topic] {
				deliver(msg)
				b.delivered++
			}
			b.processed = msg.Seq
			close(b.advanced)
			b.advanced = make(chan struct{})
			b.mu.Unlock()
		}
		select {
		case <-changed:
			time.Sleep(200 * time.Microsecond)
		case <-b.quit:
			return
		}
	}
}

func (b *hubBackend) Watch(ctx context.Context, topics []string) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range topics {
		if b.watched[t] {
			return 0, fmt.Errorf("topic %q watched twice", t)
		}
		b.watched[t] = true
	}
	return b.processed, nil
}

func (b *hubBackend) Unwatch(topics []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range topics {
		delete(b.watched, t)
	}
	b.unwatched = append(b.unwatched, topics...)
}

func (b *hubBackend) Sync(ctx context.Context) error {
	b.h.mem.mu.Lock()
	head := b.h.mem.seq
	b.h.mem.mu.Unlock()
	for {
		b.mu.Lock()
		ok, advanced := b.processed >= head, b.advanced
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *hubBackend) Publish(ctx context.Context, topic string, ev event.Event) (Message, error) {
	select {
	case <-b.quit:
		return Message{}, ErrClosed
	default:
	}
	return b.h.mem.Publish(ctx, topic, ev)
}

func (b *hubBackend) Replay(ctx context.Context, topics []string, lastEventID string, upTo uint64) ([]Message, error) {
	return b.h.mem.Replay(ctx, topics, lastEventID, upTo)
}

func (b *hubBackend) Trim(ctx context.Context) error { return b.h.mem.Trim(ctx) }

func (b *hubBackend) Close() error {
	b.mu.Lock()
	select {
	case <-b.quit:
		b.mu.Unlock()
		return nil
	default:
	}
	close(b.quit)
	b.mu.Unlock()
	<-b.done
	return nil
}

// A broker on an Interested backend has it deliver the topics of its
// streams only, and unwatches a topic once its last stream has been gone
// for the linger time, not before.
func TestInterestWatchUnwatch(t *testing.T) {
	h := newHub()
	back := h.backend()
	const linger = 200 * time.Millisecond
	b, err := New(Config{Backend: back, interestLinger: linger})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	other := h.backend()
	ob, err := New(Config{Backend: other})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()

	s := newFake(t, 100, "")
	if err := s.subscribe(b, "mine"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		for _, topic := range []string{"mine", "theirs"} {
			if _, err := ob.Publish(context.Background(), topic, event.Event{Data: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "50 events delivered", func() bool {
		back.mu.Lock()
		defer back.mu.Unlock()
		return back.delivered == 50
	})
	time.Sleep(20 * time.Millisecond)
	back.mu.Lock()
	delivered := back.delivered
	back.mu.Unlock()
	if delivered != 50 {
		t.Errorf("the backend delivered %d messages, want the 50 of the topic watched", delivered)
	}
	if n := b.Watched(); n != 1 {
		t.Errorf("Watched() = %d, want 1", n)
	}
	s.cancel(nil)
	time.Sleep(linger / 2)
	if n := b.Watched(); n != 1 {
		t.Errorf("Watched() = %d half the linger time after the last stream left, want 1", n)
	}
	eventually(t, "the topic unwatched", func() bool {
		back.mu.Lock()
		defer back.mu.Unlock()
		return slices.Equal(back.unwatched, []string{"mine"})
	})
	if n := b.Watched(); n != 0 {
		t.Errorf("Watched() = %d after the linger time, want 0", n)
	}
}

// Test hooks for the external conformance test (interest_conformance_test.go).

// NewTestHub returns an empty hub.
func NewTestHub(size int, age time.Duration) *hub {
	h := newHub()
	if size > 0 {
		h.mem.size = size
	}
	if age > 0 {
		h.mem.age = age
	}
	return h
}

// Config returns the config of a broker on a new backend on h, whose
// topics stay watched for linger after their last subscriber left.
func (h *hub) Config(linger time.Duration) Config {
	return Config{Backend: h.backend(), interestLinger: linger}
}

// slowWatch is a hubBackend whose Watch takes a while, as a distributed
// backend's does (a round trip, a new consumer), and gives up when its
// context is done. A Watch waits for gate, when it is not nil.
type slowWatch struct {
	*hubBackend
	delay time.Duration
	gate  chan struct{}
	calls sync.Mutex
	sizes []int // the number of topics of each call
}

func (b *slowWatch) Watch(ctx context.Context, topics []string) (uint64, error) {
	b.calls.Lock()
	b.sizes = append(b.sizes, len(topics))
	b.calls.Unlock()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return b.hubBackend.Watch(ctx, topics)
}

// Streams that subscribe to new topics while a Watch runs have theirs
// watched together, by the next call: 100 streams on 100 topics cost a
// few Watch calls, not 100, and every stream gets its topic's events.
func TestInterestWatchBatches(t *testing.T) {
	h := newHub()
	back := &slowWatch{hubBackend: h.backend(), delay: 20 * time.Millisecond}
	b, err := New(Config{Backend: back})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 100
	streams := make([]*fakeStream, n)
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range streams {
		streams[i] = newFake(t, 10, "")
		go func() {
			<-start
			errs <- streams[i].subscribe(b, fmt.Sprint("user-", i))
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	back.calls.Lock()
	sizes := slices.Clone(back.sizes)
	back.calls.Unlock()
	total := 0
	for _, k := range sizes {
		total += k
	}
	if total != n || len(sizes) > 10 {
		t.Errorf("Watch was called %d times with %v topics, want every topic once in at most 10 calls", len(sizes), sizes)
	}
	if w := b.Watched(); w != n {
		t.Errorf("Watched() = %d, want %d", w, n)
	}
	for i := range n {
		publish(t, b, fmt.Sprint("user-", i), fmt.Sprint(i))
	}
	for i, s := range streams {
		eventually(t, fmt.Sprint("stream ", i, "'s event"), func() bool { return len(s.ch) == 1 })
		if got := datas(s.drain()); !slices.Equal(got, []string{fmt.Sprint(i)}) {
			t.Errorf("stream %d got %v, want [%d]", i, got, i)
		}
	}
}

// A Watch that covered another Subscribe's topics but failed because its
// own caller left does not fail the other Subscribe: that one watches its
// topics again.
func TestInterestWatchBatchCallerLeaves(t *testing.T) {
	h := newHub()
	back := &slowWatch{hubBackend: h.backend(), gate: make(chan struct{})}
	b, err := New(Config{Backend: back})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	calls := func() []int {
		back.calls.Lock()
		defer back.calls.Unlock()
		return slices.Clone(back.sizes)
	}
	queued := func(n int) func() bool {
		return func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.watchQueue) == n
		}
	}
	subscribe := func(topic string) (*fakeStream, chan error) {
		s, done := newFake(t, 10, ""), make(chan error, 1)
		go func() { done <- s.subscribe(b, topic) }()
		return s, done
	}
	// The first Subscribe's Watch waits at the gate; the next two queue
	// their topics, the one that made the second call first.
	_, zeroDone := subscribe("z")
	eventually(t, "the first Watch called", func() bool { return len(calls()) == 1 })
	first, firstDone := subscribe("a")
	eventually(t, "a queued", queued(1))
	second, secondDone := subscribe("b")
	eventually(t, "b queued", queued(2))
	// The one queued first takes the next Watch, for both; it is gone.
	first.cancel(nil)
	close(back.gate)
	for _, done := range []chan error{zeroDone, firstDone, secondDone} {
		if err := <-done; err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	}
	if got := calls(); !slices.Equal(got, []int{1, 2, 1}) {
		t.Errorf("Watch calls took %v topics, want [1 2 1]: z, a and b (failed: its caller left), b again", got)
	}
	publish(t, b, "b", "x")
	eventually(t, "the second stream's event", func() bool { return len(second.ch) == 1 })
	if w := b.Watched(); w != 2 {
		t.Errorf("Watched() = %d, want 2 (z and b)", w)
	}
}
