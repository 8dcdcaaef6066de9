package redisbroker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// Three processes of one app share a Redis: A, B and C, each with its own
// broker and HTTP server. A client on A receives what B and C publish, in
// order; it is cut off while they go on publishing, reconnects to C with
// its Last-Event-ID, and receives every event it missed exactly once, then
// the live ones.
func TestThreeInstancesShareTopics(t *testing.T) { inEachMode(t, testThreeInstancesShareTopics) }

func testThreeInstancesShareTopics(t *testing.T, mode Delivery) {
	client := newClient(t, shared.Addr)
	cfg := Config{Delivery: mode, Prefix: testPrefix(t)}
	a, b, c := newInstance(t, client, cfg), newInstance(t, client, cfg), newInstance(t, client, cfg)
	publishers := []*instance{b, c}

	const total = 120
	var want, wantIDs []string
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			data := strconv.Itoa(i)
			wantIDs = append(wantIDs, publishers[i%2].publish(t, "news", data))
			want = append(want, data)
		}
	}

	sess := a.dial(t, "", "news", "other")
	eventually(t, "the subscription on A", func() bool { return a.b.Stats().Subscribers == 1 })
	publish(0, 40)
	var got, gotIDs []string
	for len(got) < 40 {
		ev := sess.next(t)
		got, gotIDs = append(got, ev.Data.(string)), append(gotIDs, ev.ID)
	}

	// Cut off; B and C go on.
	sess.close()
	eventually(t, "A to notice", func() bool { return a.b.Stats().Subscribers == 0 })
	publish(40, 80)

	// The browser comes back through the load balancer, to C, while B and
	// C keep publishing.
	sess = c.dial(t, sess.lastID(), "news", "other")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 80; i < total; i++ {
			publishers[i%2].b.Publish(context.Background(), "news", event.Event{Data: strconv.Itoa(i)})
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for len(got) < total {
		ev := sess.next(t)
		if ev.Type == "gap" {
			t.Fatalf("gap: %v", ev.Data)
		}
		got, gotIDs = append(got, ev.Data.(string)), append(gotIDs, ev.ID)
	}
	<-done
	for i := 80; i < total; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q,\nwant %q: every event once, in order", got, want)
	}
	if !slices.Equal(gotIDs[:80], wantIDs) {
		t.Fatalf("the client saw IDs %q, the publishers returned %q", gotIDs[:80], wantIDs)
	}
	if st := c.b.Stats(); st.Replayed < 40 || st.Gaps != 0 {
		t.Fatalf("C's stats %+v: want the 40 missed events replayed, no gap", st)
	}
	for name, in := range map[string]*instance{"A": a, "B": b, "C": c} {
		if st := in.backend.Stats(); !st.Connected || st.Lost != 0 || st.ReadErrors != 0 || in.errs.count(nil) != 0 {
			t.Errorf("%s: %+v, errors %v", name, st, in.errs.errs)
		}
	}
}

// slowBackend delivers each message late, as a process that is busy, or
// far from Redis, reads the log late.
type slowBackend struct {
	*Backend // and its Sync
	delay    time.Duration
}

func (s slowBackend) Start(deliver func(broker.Message)) (uint64, error) {
	return s.Backend.Start(func(m broker.Message) {
		time.Sleep(s.delay)
		deliver(m)
	})
}

// A client that received an event through one process and reconnects at
// once to another is not told of a gap, even if that process has not read
// the event from Redis yet: Subscribe syncs with the log first.
func TestReconnectToAnInstanceThatLagsIsNoGap(t *testing.T) {
	inEachMode(t, testReconnectToAnInstanceThatLagsIsNoGap)
}

func testReconnectToAnInstanceThatLagsIsNoGap(t *testing.T, mode Delivery) {
	client := newClient(t, shared.Addr)
	cfg := Config{Delivery: mode, Prefix: testPrefix(t)}
	a := newInstance(t, client, cfg)
	b := newInstanceWith(t, client, cfg, func(b *Backend) broker.Backend { return slowBackend{b, 20 * time.Millisecond} })
	for i := range 5 {
		sess := a.dial(t, "", "news")
		eventually(t, "the subscription", func() bool { return a.b.Stats().Subscribers == 1 })
		id := a.publish(t, "news", strconv.Itoa(i))
		if ev := sess.next(t); ev.ID != id {
			t.Fatalf("got %+v, want %s", ev, id)
		}
		sess.close()
		next := a.publish(t, "news", "next")
		// B has not delivered id yet: it sleeps before each message.
		again := b.dial(t, id, "news")
		if ev := again.next(t); ev.Type == "gap" || ev.ID != next {
			t.Fatalf("round %d: got %+v, want %s", i, ev, next)
		}
		again.close()
		eventually(t, "the clients to leave", func() bool {
			return a.b.Stats().Subscribers == 0 && b.b.Stats().Subscribers == 0
		})
	}
	if st := b.b.Stats(); st.Gaps != 0 {
		t.Fatalf("B's stats %+v, want no gap", st)
	}
}

// Each process reads Redis with one connection of its own, whatever the
// number of subscribers and topics: the broker fans out locally.
func TestOneRedisReaderPerInstance(t *testing.T) {
	client := newClient(t, shared.Addr)
	cfg := Config{Prefix: testPrefix(t)}
	a := newInstance(t, client, cfg)
	clients := func() int {
		list, err := client.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(list, "\n")
	}
	before := clients()
	const n = 200
	var sessions []*session
	for i := range n {
		sessions = append(sessions, a.dial(t, "", "topic-"+strconv.Itoa(i%20)))
	}
	eventually(t, "the subscriptions", func() bool { return a.b.Stats().Subscribers == n })
	for i := range 20 {
		a.publish(t, "topic-"+strconv.Itoa(i), "hello")
	}
	for _, s := range sessions {
		if ev := s.next(t); ev.Data != "hello" {
			t.Fatalf("got %+v", ev)
		}
	}
	if after := clients(); after-before > 2 {
		t.Fatalf("%d Redis connections before %d subscribers on 20 topics, %d after", before, n, after)
	}
}
