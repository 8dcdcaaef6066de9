package broker

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// fakeStream stands in for an *echosse.Stream: a channel, a context and a
// Last-Event-ID, without HTTP. Its Abort cancels the context, as the
// stream's does.
type fakeStream struct {
	ch     chan event.Event
	ctx    context.Context
	cancel context.CancelCauseFunc
	lastID string
}

func newFake(tb testing.TB, buffer int, lastID string) *fakeStream {
	ctx, cancel := context.WithCancelCause(context.Background())
	tb.Cleanup(func() { cancel(nil) })
	return &fakeStream{ch: make(chan event.Event, buffer), ctx: ctx, cancel: cancel, lastID: lastID}
}

func (f *fakeStream) Context() context.Context { return f.ctx }
func (f *fakeStream) LastEventID() string      { return f.lastID }
func (f *fakeStream) Abort(cause error)        { f.cancel(cause) }

func (f *fakeStream) subscribe(b *Broker, topics ...string) error {
	return b.subscribe(f.ch, f, topics)
}

// drain returns what is in the buffer, without waiting.
func (f *fakeStream) drain() []event.Event {
	var evs []event.Event
	for {
		select {
		case ev := <-f.ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// fakeClock is a clock tests move by hand. It starts at the Unix epoch, so
// that the in-memory history's IDs start at 1.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = time.Unix(0, 0)
	}
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.now()
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newBroker returns a broker on a fake clock, closed when the test ends.
func newBroker(tb testing.TB, cfg Config) (*Broker, *fakeClock) {
	tb.Helper()
	clk := &fakeClock{}
	if cfg.timeNow == nil {
		cfg.timeNow = clk.now
	}
	b, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b, clk
}

// publish publishes data on topic and returns the ID.
func publish(tb testing.TB, b *Broker, topic string, data string) string {
	tb.Helper()
	id, err := b.Publish(context.Background(), topic, event.Event{Data: data})
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// datas returns the Data of each event, as strings.
func datas(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		s, _ := ev.Data.(string)
		out[i] = s
	}
	return out
}

// ids returns the ID of each event.
func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// seqIDs returns the IDs "from" to "to" as decimal strings.
func seqIDs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// eventually waits until cond holds, failing the test after 5 seconds.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// liveHeap returns the bytes of the heap's live objects, after a
// collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
