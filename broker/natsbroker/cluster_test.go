package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/natstest"
	"github.com/echosse/echo-sse/sse"
)

// A 3-node JetStream cluster, the stream replicated 3 times, two
// instances (one publishing) with a subscriber each: the stream's leader
// is killed (SIGKILL) while events are published. Nothing acknowledged is
// lost, nothing is delivered twice, and the streams on both instances go
// on; the figures say how long delivery paused.
func TestClusterLeaderKill(t *testing.T) {
	servers, err := natstest.StartCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Stop()
		}
	})
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL
	}
	cfg := natsbroker.Config{Stream: "KILL", Subject: "kill", Replicas: 3, PublishTimeout: 5 * time.Second,
		ErrorHandler: func(err error) { t.Logf("natsbroker: %v", err) }}
	var ins []*clusterInstance
	var backends []*natsbroker.Backend
	for i := range 2 {
		// Each instance first talks to a server of its own, and to the
		// others once that one is gone.
		order := append(append([]string(nil), urls[i:]...), urls[:i]...)
		nc := connect(t, strings.Join(order, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		var b *natsbroker.Backend
		deadline := time.Now().Add(20 * time.Second)
		for { // the cluster elects its JetStream meta leader first
			if b, err = natsbroker.New(nc, cfg); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, b)
		ins = append(ins, startInstance(t, broker.Config{Backend: b}))
	}
	var subs []*reader
	for i, in := range ins {
		subs = append(subs, in.read(t, fmt.Sprintf("on instance %d", i), "news"))
	}

	js, err := jetstream.New(connect(t, strings.Join(urls, ",")))
	if err != nil {
		t.Fatal(err)
	}
	o := brokertest.NewOutcomes()
	var killedAt time.Time
	var elected time.Duration
	brokertest.PublishDuring(ins[0].b, "news", o, cfg.PublishTimeout+time.Second, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "KILL")
		if err != nil {
			t.Errorf("stream info: %v", err)
			return
		}
		leader := st.CachedInfo().Cluster.Leader
		for _, s := range servers {
			if s.Name == leader {
				killedAt = time.Now()
				s.Kill()
			}
		}
		// Publishing goes on until the cluster has elected another
		// leader, and a second more.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := st.Info(ctx)
			cancel()
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader {
				elected = time.Since(killedAt)
				t.Logf("killed the stream's leader %s; %s took over %v later", leader, info.Cluster.Leader, elected.Round(time.Millisecond))
				break
			}
		}
		time.Sleep(time.Second)
	})
	if elected == 0 {
		t.Fatal("no new leader elected in 30 s")
	}
	if killedAt.IsZero() {
		t.Fatal("the stream's leader was not found")
	}
	for _, r := range subs {
		deadline := time.Now().Add(20 * time.Second)
		for !r.has(o) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // for anything received twice
	for _, r := range subs {
		r.mu.Lock()
		f := o.Count(r.count, r.gaps > 0)
		f.Reconnects, f.Gaps = r.reconnects, r.gaps
		pause := r.longestPause(killedAt.Add(-time.Second))
		r.mu.Unlock()
		brokertest.Report(t, "stream leader killed", r.name, f, fmt.Sprintf(" | new leader after %v | delivery paused %v", elected.Round(time.Millisecond), pause.Round(time.Millisecond)))
		if f.MissingTold > 0 {
			t.Errorf("%s: %d acknowledged events missing", r.name, f.MissingTold)
		}
	}
	if msgs := o.Errors(6); msgs != "" {
		t.Logf("errors Publish returned:\n%s", msgs)
	}
	for i, b := range backends {
		t.Logf("instance %d: %+v", i, b.Stats())
	}
	// The streams go on: an event published now reaches both.
	id, err := ins[0].b.Publish(context.Background(), "news", event.Event{Data: "after"})
	if err != nil {
		t.Fatalf("publishing after the failover: %v", err)
	}
	for _, r := range subs {
		deadline := time.Now().Add(10 * time.Second)
		for !r.got("after") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !r.got("after") {
			t.Errorf("%s: the event published after the failover (%s) did not come", r.name, id)
		}
	}
}

// A clusterInstance is a broker and an HTTP server whose GET /events
// subscribes a stream to the topics given.
type clusterInstance struct {
	b   *broker.Broker
	srv *httptest.Server
}

func startInstance(t *testing.T, cfg broker.Config) *clusterInstance {
	cfg.ErrorHandler = func(err error) { t.Logf("broker: %v", err) }
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	core, err := sse.New(sse.Config{ErrorHandler: func(*http.Request, error) {}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", core.Handler(func(s *sse.Stream, req *http.Request) error {
		err := b.Subscribe(s, req.URL.Query()["topic"]...)
		switch {
		case errors.Is(err, broker.ErrGap):
			return s.Send(event.Event{Type: "gap", Data: ""})
		case err != nil:
			return err
		}
		return s.Send(event.Event{Type: "ready", Data: ""})
	}))
	in := &clusterInstance{b: b, srv: httptest.NewServer(mux)}
	t.Cleanup(func() {
		b.Close()
		in.srv.CloseClientConnections()
		in.srv.Close()
	})
	return in
}

// A reader is a browser-like client: it reads a stream, reconnects with
// its Last-Event-ID when the stream ends, and counts what it receives.
type reader struct {
	name string

	mu         sync.Mutex
	count      map[string]int
	times      []time.Time // when each event came
	gaps       int
	reconnects int
	ready      chan struct{}
}

func (in *clusterInstance) read(t *testing.T, name, topic string) *reader {
	r := &reader{name: name, count: map[string]int{}, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		last := ""
		first := true
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.srv.URL+"/events?topic="+topic, nil)
			if last != "" {
				req.Header.Set("Last-Event-ID", last)
			}
			resp, err := in.srv.Client().Do(req)
			if err == nil {
				dec := event.NewDecoder(resp.Body)
				for {
					ev, err := dec.Decode()
					if err != nil {
						break
					}
					r.mu.Lock()
					switch ev.Type {
					case "ready", "gap":
						if ev.Type == "gap" {
							r.gaps++
						}
						if first {
							close(r.ready)
							first = false
						}
					default:
						d, _ := ev.Data.(string)
						r.count[d]++
						r.times = append(r.times, time.Now())
						last = dec.LastEventID()
					}
					r.mu.Unlock()
				}
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
				r.mu.Lock()
				r.reconnects++
				r.mu.Unlock()
			}
		}
	}()
	select {
	case <-r.ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no ready event in 10 s", name)
	}
	return r
}

func (r *reader) has(o *brokertest.Outcomes) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return o.ReceivedAll(r.count)
}

func (r *reader) got(data string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[data] > 0
}

// longestPause returns the longest time between two events received
// after since. r.mu is held.
func (r *reader) longestPause(since time.Time) time.Duration {
	var longest time.Duration
	var prev time.Time
	for _, at := range r.times {
		if at.Before(since) {
			continue
		}
		if !prev.IsZero() {
			longest = max(longest, at.Sub(prev))
		}
		prev = at
	}
	return longest
}
