package redisbroker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/redistest"
)

// gated is a Backend whose deliveries can be held: while hold blocks, its
// log reader waits in the delivery, reading nothing more from Redis.
type gated struct {
	*Backend
	hold func(broker.Message)
}

func (g gated) Start(deliver func(broker.Message)) (uint64, error) {
	return g.Backend.Start(func(m broker.Message) {
		g.hold(m)
		deliver(m)
	})
}

// snapshot returns a function that puts every key of prefix back as it is
// now, deleting those made since: Redis loses the writes in between, as a
// replica that was behind loses them when it takes over.
func snapshot(t *testing.T, admin *redis.Client, prefix string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	pattern := "{" + prefix + "}:*"
	names, err := admin.Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	dumps := make(map[string]string, len(names))
	ttls := make(map[string]time.Duration, len(names))
	for _, k := range names {
		if dumps[k], err = admin.Dump(ctx, k).Result(); err != nil {
			t.Fatal(err)
		}
		if ttls[k], err = admin.PTTL(ctx, k).Result(); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		now, err := admin.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(now) > 0 {
			if err := admin.Del(ctx, now...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for k, d := range dumps {
			ttl := max(ttls[k], 0)
			if err := admin.Restore(ctx, k, ttl, d).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Redis loses the last events a process published, before that process's
// log reader has read them and before anything shows it in Redis's last
// Seq or in the log's chain: a replica that was behind takes over while
// every log reader is a little behind, and the publishes that follow lift
// the last Seq past the lost ones at once (TestClusterFailover found it
// once).
// The process that published them finds the loss, by its next Publish or
// within a second or so by itself: nothing is missed silently.
func TestLossOfAcknowledgedEvents(t *testing.T) { inEachMode(t, testLossOfAcknowledgedEvents) }

func testLossOfAcknowledgedEvents(t *testing.T, mode Delivery) {
	for _, next := range []string{"the same process", "another process"} {
		t.Run("next published by "+strings.ReplaceAll(next, " ", "_"), func(t *testing.T) {
			srv, err := redistest.Start(t.TempDir(), false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Stop() })
			admin := newClient(t, srv.Addr)
			cfg := Config{Delivery: mode, Prefix: testPrefix(t), PublishTimeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}

			// Both processes' readers wait in the delivery of x while
			// the events that Redis then loses are published.
			release := make(chan struct{})
			var holding sync.WaitGroup
			holding.Add(2)
			gate := func(b *Backend) broker.Backend {
				var once sync.Once
				return gated{b, func(m broker.Message) {
					if m.Event.Data == "x" {
						once.Do(holding.Done)
						<-release
					}
				}}
			}
			a := newInstanceWith(t, newClient(t, srv.Addr), cfg, gate)
			b := newInstanceWith(t, newClient(t, srv.Addr), cfg, gate)
			t.Cleanup(func() {
				select {
				case <-release:
				default:
					close(release)
				}
			})
			fs := []*follower{follow(t, "on the publisher", a, "news"), follow(t, "on another instance", b, "news")}

			o := brokertest.NewOutcomes()
			pub := func(in *instance, data string) string {
				id, err := in.b.Publish(context.Background(), "news", event.Event{Data: data})
				o.Record(data, id, err)
				if err != nil {
					t.Errorf("publishing %s: %v", data, err)
				}
				return id
			}
			x := pub(a, "x")
			holding.Wait()
			restore := snapshot(t, admin, cfg.Prefix)
			pub(a, "lost 1")
			lost := pub(a, "lost 2")
			restore()
			close(release)
			if next == "the same process" {
				pub(a, "y")
			} else {
				pub(b, "y")
			}
			for _, f := range fs {
				deadline := time.Now().Add(10 * time.Second)
				for !f.settled(o) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			for _, f := range fs {
				f.mu.Lock()
				fig := o.Count(f.count, f.gaps > 0)
				fig.Reconnects, fig.Gaps = f.reconnects, f.gaps
				f.mu.Unlock()
				brokertest.Report(t, "lost acknowledged events", f.name, fig, fmt.Sprintf(" | backend lost %d, broker lost %d", f.in.backend.Stats().Lost, f.in.b.Stats().Lost))
			}
			if a.backend.Stats().Lost == 0 {
				t.Error("the publishing process did not find the loss")
			}
			if n := a.errs.count(ErrLost); n == 0 {
				t.Errorf("the publishing process told its ErrorHandler of no loss: %v", a.errs.all())
			}
			// An ID from before the loss, or of a lost event, is a gap.
			for _, in := range []*instance{a, b} {
				for _, id := range []string{x, lost} {
					s := in.dial(t, id, "news")
					if ev := s.next(t); ev.Type != "gap" {
						t.Errorf("Last-Event-ID %s: got %+v, want a gap", id, ev)
					}
					s.close()
				}
			}
		})
	}
}
