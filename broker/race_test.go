package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// hookBackend is the in-memory backend with a hook that runs inside
// Replay, after the subscriber is registered and before its replay is
// sent: the window where a Publish races a Subscribe.
type hookBackend struct {
	*memory
	beforeReplay func()
}

func (h *hookBackend) Replay(ctx context.Context, topics []string, lastID string, upTo uint64) ([]Message, error) {
	if h.beforeReplay != nil {
		h.beforeReplay()
	}
	return h.memory.Replay(ctx, topics, lastID, upTo)
}

func newHookBroker(t *testing.T, size int) (*Broker, *hookBackend) {
	t.Helper()
	clk := &fakeClock{}
	hb := &hookBackend{memory: newMemory(size, -1, clk.now)}
	b, err := New(Config{Backend: hb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, hb
}

func TestPublishRacingSubscribeIsDeliveredOnceInOrder(t *testing.T) {
	b, hb := newHookBroker(t, 100)
	for range 3 {
		publish(t, b, "a", "x") // 1..3
	}
	hb.beforeReplay = func() {
		hb.beforeReplay = nil
		publish(t, b, "a", "x") // 4 and 5: published after the subscriber
		publish(t, b, "a", "x") // registered, before its replay is read
	}
	f := newFake(t, 16, "1")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a", "x") // 6, live
	if got, want := ids(f.drain()), seqIDs(2, 6); !slices.Equal(got, want) {
		t.Fatalf("got IDs %q, want %q", got, want)
	}
	if st := b.Stats(); st.Replayed != 2 {
		t.Fatalf("got Replayed %d, want 2 (the rest came live)", st.Replayed)
	}
}

func TestPublishRacingSubscribeWithGap(t *testing.T) {
	b, hb := newHookBroker(t, 100)
	publish(t, b, "a", "x")
	hb.beforeReplay = func() {
		hb.beforeReplay = nil
		publish(t, b, "a", "x")
	}
	f := newFake(t, 16, "bogus")
	if err := f.subscribe(b, "a"); !errors.Is(err, ErrGap) {
		t.Fatalf("got %v, want ErrGap", err)
	}
	// No replay, but what was published once it was registered arrives.
	if got := ids(f.drain()); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("got IDs %q, want [2]", got)
	}
}

func TestCatchingUpTooFarBehindIsSlow(t *testing.T) {
	b, hb := newHookBroker(t, 5000)
	publish(t, b, "a", "x")
	publish(t, b, "a", "x")
	hb.beforeReplay = func() {
		hb.beforeReplay = nil
		for range b.maxPending + 1 {
			publish(t, b, "a", "x")
		}
	}
	f := newFake(t, 16, "1")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatalf("got %v, want nil (the stream ended)", err)
	}
	if cause := context.Cause(f.ctx); !errors.Is(cause, ErrSlowClient) {
		t.Fatalf("got cause %v, want ErrSlowClient", cause)
	}
	if st := b.Stats(); st.SlowClients != 1 || st.Subscribers != 0 {
		t.Fatalf("got %+v", st)
	}
}

func TestCloseDuringReplay(t *testing.T) {
	b, _ := newBroker(t, Config{})
	for range 10 {
		publish(t, b, "a", "x")
	}
	f := newFake(t, 2, "1")
	time.AfterFunc(10*time.Millisecond, func() { b.Close() })
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatalf("got %v, want nil (the stream ended)", err)
	}
	if cause := context.Cause(f.ctx); !errors.Is(cause, ErrClosed) {
		t.Fatalf("got cause %v, want ErrClosed", cause)
	}
}

// failingBackend fails every Replay.
type failingBackend struct{ *memory }

var errBackendDown = errors.New("backend down")

func (failingBackend) Replay(context.Context, []string, string, uint64) ([]Message, error) {
	return nil, errBackendDown
}

func TestReplayFailure(t *testing.T) {
	b, err := New(Config{Backend: failingBackend{newMemory(10, -1, time.Now)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := newFake(t, 4, "1")
	if err := f.subscribe(b, "a"); !errors.Is(err, errBackendDown) {
		t.Fatalf("got %v, want the backend's error", err)
	}
	if st := b.Stats(); st.Subscribers != 0 {
		t.Fatalf("got %d subscribers, want 0", st.Subscribers)
	}
	if _, err := b.Publish(context.Background(), "a", event.Event{Data: "x"}); err != nil {
		t.Fatal(err)
	}
	if len(f.ch) != 0 {
		t.Fatal("an unsubscribed stream received an event")
	}
}

// lagBackend is the in-memory backend with delivery held back until Sync,
// as a distributed backend's is until its log reader has caught up.
type lagBackend struct {
	*memory
	deliver func(Message)
	syncErr error

	mu    sync.Mutex
	held  []Message
	syncs int
}

func (l *lagBackend) Start(deliver func(Message)) (uint64, error) {
	l.deliver = deliver
	return l.memory.Start(func(msg Message) {
		l.mu.Lock()
		l.held = append(l.held, msg)
		l.mu.Unlock()
	})
}

func (l *lagBackend) Sync(ctx context.Context) error {
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.syncs++
	l.mu.Unlock()
	if l.syncErr != nil {
		return l.syncErr
	}
	for _, msg := range held {
		l.deliver(msg)
	}
	return nil
}

func TestSubscribeSyncsABackendThatLags(t *testing.T) {
	clk := &fakeClock{}
	lb := &lagBackend{memory: newMemory(100, -1, clk.now)}
	b, err := New(Config{Backend: lb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for range 3 {
		publish(t, b, "a", "x") // 1..3, published "elsewhere": not delivered yet
	}

	// A client that saw 2 through another process: without Sync, 2 would
	// be beyond what this broker has delivered, and a gap.
	f := newFake(t, 16, "2")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatalf("got %v, want the replay of 3", err)
	}
	if got := ids(f.drain()); !slices.Equal(got, []string{"3"}) {
		t.Fatalf("got IDs %q, want [3]", got)
	}
	// A first connection has nothing to replay: no Sync.
	if err := newFake(t, 16, "").subscribe(b, "a"); err != nil || lb.syncs != 1 {
		t.Fatalf("got %v after %d syncs, want nil after 1", err, lb.syncs)
	}

	lb.syncErr = errors.New("unreachable")
	if err := newFake(t, 16, "3").subscribe(b, "a"); !errors.Is(err, lb.syncErr) {
		t.Fatalf("got %v, want the Sync error", err)
	}
	if n := b.Stats().Subscribers; n != 2 {
		t.Fatalf("%d subscribers, want 2: a failed Sync subscribes nothing", n)
	}
}
