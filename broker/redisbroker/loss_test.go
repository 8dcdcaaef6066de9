package redisbroker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/redistest"
)

// follower is a browser-like subscriber: when its stream ends it comes
// back, as EventSource does, with the last ID it saw; it counts what it
// receives by data, and the gap events its handler sent (ErrGap).
type follower struct {
	name string
	in   *instance

	mu         sync.Mutex
	count      map[string]int
	gaps       int
	reconnects int
	last       time.Time // when it last received something

	stop, done chan struct{}
}

func follow(t *testing.T, name string, in *instance, topics ...string) *follower {
	t.Helper()
	want := in.b.Stats().Subscribers + 1
	sess, err := in.open("", topics...)
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{name: name, in: in, count: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			ev, err := sess.dec.Decode()
			if err == nil {
				sess.seen = true
				f.mu.Lock()
				if ev.Type == "gap" {
					f.gaps++
				} else if s, ok := ev.Data.(string); ok {
					f.count[s]++
				}
				f.last = time.Now()
				f.mu.Unlock()
				continue
			}
			last := sess.lastID()
			sess.close()
			for {
				select {
				case <-f.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if sess, err = in.open(last, topics...); err == nil {
					break
				}
			}
			f.mu.Lock()
			f.reconnects++
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(f.stop)
		sess.close() // the goroutine's current one, or a closed one
		<-f.done
	})
	eventually(t, name+"'s subscription", func() bool { return in.b.Stats().Subscribers >= want })
	return f
}

// settled reports whether f received every accepted event, or was told of
// a gap and has received nothing for a while.
func (f *follower) settled(o *brokertest.Outcomes) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gaps > 0 && time.Since(f.last) > 700*time.Millisecond {
		return true
	}
	return o.ReceivedAll(f.count)
}

// Redis loses data in the middle of a stream of publishes (kill -9 and a
// restart, with and without an append-only file; FLUSHALL): every
// subscriber receives every event Publish accepted once, or, for those
// Redis lost, is told: its subscription ends, and it comes back to a gap.
// No event is received twice or missed silently.
func TestLoss(t *testing.T) { inEachMode(t, testLoss) }

func testLoss(t *testing.T, mode Delivery) {
	for _, tt := range []struct {
		name    string
		persist bool
		options []string
		fault   func(t *testing.T, srv *redistest.Server, admin *redis.Client)
	}{
		{"kill -9, AOF always", true, nil, killAndRestart},
		{"kill -9, AOF everysec", true, []string{"--appendfsync", "everysec"}, killAndRestart},
		{"kill -9, no AOF", false, nil, killAndRestart},
		{"FLUSHALL", false, nil, func(t *testing.T, _ *redistest.Server, admin *redis.Client) {
			if err := admin.FlushAll(context.Background()).Err(); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := redistest.Start(t.TempDir(), tt.persist, tt.options...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Stop() })
			lossRun(t, mode, tt.name, srv, func() { tt.fault(t, srv, newClient(t, srv.Addr)) })
		})
	}
}

func killAndRestart(t *testing.T, srv *redistest.Server, _ *redis.Client) {
	if err := srv.Kill(); err != nil {
		t.Error(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Error(err)
	}
}

func lossRun(t *testing.T, mode Delivery, fault string, srv *redistest.Server, lose func()) {
	opts := &redis.Options{Addr: srv.Addr, DialerRetryTimeout: 10 * time.Millisecond}
	clientA, clientB := redis.NewClient(opts), redis.NewClient(opts)
	t.Cleanup(func() { clientA.Close(); clientB.Close() })
	cfg := Config{Delivery: mode, Prefix: "loss", PublishTimeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	a, b := newInstance(t, clientA, cfg), newInstance(t, clientB, cfg)
	fs := []*follower{follow(t, "on the publisher", a, "news"), follow(t, "on another instance", b, "news")}

	o := brokertest.NewOutcomes()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	unknown := false
	var mu sync.Mutex
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				data := fmt.Sprintf("%d-%d", g, i)
				id, err := a.b.Publish(ctx, "news", event.Event{Data: data})
				cancel()
				o.Record(data, id, err)
				if isUnknownOutcome(err) {
					mu.Lock()
					unknown = true
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	lose()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if unknown {
		time.Sleep(settleAfter(cfg))
	}
	for _, f := range fs {
		deadline := time.Now().Add(15 * time.Second)
		for !f.settled(o) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, f := range fs {
		f.mu.Lock()
		fig := o.Count(f.count, f.gaps > 0)
		fig.Reconnects, fig.Gaps = f.reconnects, f.gaps
		f.mu.Unlock()
		brokertest.Report(t, fault, f.name, fig, fmt.Sprintf(" | backend lost %d, broker lost %d", f.in.backend.Stats().Lost, f.in.b.Stats().Lost))
	}
	if msgs := o.Errors(8); msgs != "" {
		t.Logf("%s: errors Publish returned:\n%s", fault, msgs)
	}
	// Whatever was lost, a client with an ID from before the loss is told.
	if lostAny := a.backend.Stats().Lost > 0; lostAny {
		for _, in := range []*instance{a, b} {
			s := in.dial(t, "1796000000000000", "news")
			if ev := s.next(t); ev.Type != "gap" {
				t.Errorf("an ID from before the loss: got %+v, want a gap", ev)
			}
		}
	}
}
