// Package brokertest is the conformance suite of [broker.Backend]: what
// every backend must do for a [broker.Broker] on it to keep its promises
// (every event once, in order, to every subscriber; replay after a
// Last-Event-ID; [broker.ErrGap] whenever replay cannot be exact), checked
// through brokers, over HTTP streams, as a handler would use them.
//
// A backend's own tests run it with a [Harness] that says how to make a
// broker on a new backend:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, brokertest.Harness{
//			New: func(t testing.TB, o brokertest.Options) broker.Config {
//				b, err := mybackend.New(o.Addr, o.Scope, o.HistorySize, o.HistoryAge)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return broker.Config{Backend: b}
//			},
//			Addr:   serverAddr, // a server the test started: the fault cases run
//			Shared: true,       // brokers of one Scope share topics
//		})
//	}
//
// A backend that talks to a server over TCP gives its address in
// Harness.Addr: the fault cases then put a proxy between the backend and
// the server and pause it, cut and reset its connections, and slow it
// down, while publishers publish and subscribers read, and count what
// Publish said against what each subscriber received. A backend without a
// network (the in-memory history) leaves Addr empty, and those cases are
// skipped.
package brokertest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// A Harness tells the suite how to make brokers on the backend under test.
type Harness struct {
	// New returns the config of a broker on a new backend, not started,
	// configured by o (Config.Backend nil is the in-memory history). The
	// suite passes it to [broker.New] and closes the broker, which closes
	// the backend, before the test ends. Backends made with the same
	// o.Scope share topics, histories and IDs, as processes sharing a
	// server do; those of different scopes share nothing. Call t.Fatal if
	// the backend cannot be made. Required.
	New func(t testing.TB, o Options) broker.Config

	// Addr is the TCP address (host:port) of the server the backends talk
	// to, which the test started. The fault cases start a proxy in front
	// of it and give its address to New in Options.Addr. Empty: the
	// backend has no network, and the fault cases are skipped.
	Addr string

	// Shared says whether brokers of one Scope share topics (a distributed
	// backend): the cases with several brokers run only then.
	Shared bool

	// Settle is how long after a Publish call returned an error wrapping
	// [broker.ErrUnknownOutcome] the backend may still store its event, and
	// deliver it: the fault cases wait that long before they count what
	// subscribers received. Zero: 5 seconds.
	Settle time.Duration

	// Lose, if not nil, makes the server lose everything the backends of
	// scope stored (Redis: delete their keys, as a FLUSHALL or a restart
	// without persistence would), without the backends being told. The
	// loss case then checks that every subscription ends, that a client
	// coming back with an ID from before the loss gets [broker.ErrGap],
	// and that delivery goes on.
	Lose func(t testing.TB, scope string)
}

// Options configure one backend for a case of the suite.
type Options struct {
	// Scope names the world the backend lives in (Redis: its key prefix):
	// a different one for every case, the same for the brokers of one case.
	Scope string

	// Addr is the address of the server to connect to: Harness.Addr, or
	// that of the fault proxy in front of it.
	Addr string

	// HistorySize is how many events each topic keeps for replay; zero:
	// the backend's default.
	HistorySize int

	// HistoryAge is how long an event stays in its topic's history; zero:
	// the backend's default.
	HistoryAge time.Duration

	// Timeout, in the fault cases, is how long the backend's client waits
	// for the server's answer before it gives up on a request (go-redis's
	// ReadTimeout and WriteTimeout, say); zero: the backend's default.
	Timeout time.Duration
}

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("brokertest: Harness.New is required")
	}
	if h.Settle <= 0 {
		h.Settle = 5 * time.Second
	}
	r := &runner{h: h}
	t.Run("OrderAcrossTopics", r.orderAcrossTopics)
	t.Run("ExactlyOnceAcrossInstances", r.exactlyOnceAcrossInstances)
	t.Run("ReplayAfterID", r.replayAfterID)
	t.Run("ReplayOnAnotherInstance", r.replayOnAnotherInstance)
	t.Run("NewTopicHandover", r.newTopicHandover)
	t.Run("GapTrimmedBySize", r.gapTrimmedBySize)
	t.Run("GapTrimmedByAge", r.gapTrimmedByAge)
	t.Run("GapUnknownID", r.gapUnknownID)
	t.Run("GapNeverAssignedID", r.gapNeverAssignedID)
	t.Run("Close", r.close)
	t.Run("ConcurrentSubscribePublishClose", r.concurrent)
	t.Run("Loss", r.loss)
	t.Run("Faults", r.faults)
}

type runner struct {
	h      Harness
	scopes atomic.Int64
}

// scope returns a Scope no other case uses.
func (r *runner) scope(t testing.TB) string {
	return "brokertest-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(r.scopes.Add(1), 10)
}

// instance is one process of an app: a broker, and an HTTP server whose
// GET /events?topic=a&topic=b subscribes a stream to the topics given.
// After Subscribe the handler sends an event of type "ready", or "gap"
// when Subscribe returned ErrGap; neither has an ID, so the client's
// Last-Event-ID stays what it was.
type instance struct {
	b   *broker.Broker
	srv *httptest.Server
}

// start starts an instance on a new backend configured by o.
func (r *runner) start(t testing.TB, o Options) *instance {
	t.Helper()
	if o.Addr == "" {
		o.Addr = r.h.Addr
	}
	return startInstance(t, r.h.New(t, o))
}

// startInstance starts an instance on a broker configured by cfg.
func startInstance(t testing.TB, cfg broker.Config) *instance {
	t.Helper()
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = func(err error) { t.Logf("broker: %v", err) }
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// What the streams' handlers return (ErrClosed after Close, a slow
	// client aborted) is part of the cases, not news.
	core, err := sse.New(sse.Config{ErrorHandler: func(*http.Request, error) {}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", core.Handler(func(s *sse.Stream, req *http.Request) error {
		err := b.Subscribe(s, req.URL.Query()["topic"]...)
		switch {
		case errors.Is(err, broker.ErrGap):
			return s.Send(event.Event{Type: "gap", Data: err.Error()})
		case err != nil:
			return err
		}
		return s.Send(event.Event{Type: "ready", Data: ""})
	}))
	in := &instance{b: b, srv: httptest.NewServer(mux)}
	t.Cleanup(func() {
		b.Close()
		in.srv.CloseClientConnections()
		in.srv.Close()
	})
	return in
}

// publish publishes data on topic and returns the event's ID.
func (in *instance) publish(t testing.TB, topic, data string) string {
	t.Helper()
	id, err := in.b.Publish(context.Background(), topic, event.Event{Type: topic, Data: data})
	if err != nil {
		t.Fatalf("publishing %q on %q: %v", data, topic, err)
	}
	return id
}

// A stream is one connection of a browser-like client, read into a list by
// a goroutine of its own.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	evs    []event.Event // the events with data of their own (no ready, no gap)
	gap    string        // the gap event's data, if one came
	ready  bool          // the ready or the gap event came
	lastID string        // the Last-Event-ID to reconnect with
	err    error         // why the stream ended; nil while it is open
	wake   chan struct{} // closed and replaced at every change
}

// subscribe opens a stream on topics with lastID as its Last-Event-ID (if
// set), waits until the handler said ready or gap, and closes the stream
// when the test ends.
func (in *instance) subscribe(t testing.TB, lastID string, topics ...string) *stream {
	t.Helper()
	s, err := in.open(lastID, topics...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	if !s.wait(10*time.Second, func() bool { return s.ready || s.err != nil }) {
		t.Fatalf("no ready or gap event in 10 s on %v", topics)
	}
	if s.Err() != nil && !s.isReady() {
		t.Fatalf("the stream on %v ended before the handler said ready: %v", topics, s.Err())
	}
	return s
}

// get opens GET /events on topics of in, with Last-Event-ID lastID
// unless it is "", and returns the response, 200 OK, and what cancels it.
func (in *instance) get(lastID string, topics ...string) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.srv.URL+"/events?"+url.Values{"topic": topics}.Encode(), nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := in.srv.Client().Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, nil, errors.New("GET /events: " + resp.Status)
	}
	return resp, cancel, nil
}

func (in *instance) open(lastID string, topics ...string) (*stream, error) {
	resp, cancel, err := in.get(lastID, topics...)
	if err != nil {
		return nil, err
	}
	s := &stream{resp: resp, cancel: cancel, done: make(chan struct{}), lastID: lastID, wake: make(chan struct{})}
	go s.read()
	return s, nil
}

func (s *stream) read() {
	defer close(s.done)
	dec := event.NewDecoder(s.resp.Body)
	for {
		ev, err := dec.Decode()
		s.mu.Lock()
		switch {
		case err != nil:
			s.err = err
		case ev.Type == "ready":
			s.ready = true
		case ev.Type == "gap":
			s.ready = true
			s.gap, _ = ev.Data.(string)
		default:
			s.evs = append(s.evs, ev)
			s.lastID = dec.LastEventID()
		}
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// wait waits up to d until cond holds, under s.mu, and reports whether it
// did.
func (s *stream) wait(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, wake := cond(), s.wake
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-wake:
		case <-deadline.C:
			return false
		}
	}
}

// waitN waits up to d until the stream has received n events (or ended),
// and returns what it has.
func (s *stream) waitN(n int, d time.Duration) []event.Event {
	s.wait(d, func() bool { return len(s.evs) >= n || s.err != nil })
	return s.events()
}

func (s *stream) events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.evs...)
}

func (s *stream) isReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Gap returns the gap event's data, "" if none came.
func (s *stream) Gap() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gap
}

// Err returns why the stream ended, nil while it is open.
func (s *stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LastID returns the Last-Event-ID the client would reconnect with.
func (s *stream) LastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

func (s *stream) close() {
	s.resp.Body.Close()
	s.cancel()
	<-s.done
}

// datas returns the data of evs.
func datas(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i], _ = ev.Data.(string)
	}
	return out
}

// eventually waits until cond holds, failing the test after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
