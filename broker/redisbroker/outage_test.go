package redisbroker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/redistest"
)

// Redis stops in the middle of a stream and comes back on the same port
// with its data (append-only file). Publishing fails while it is away,
// with an error; the subscriber stays connected, and receives, on the same
// connection, every event accepted before the outage and after it, once
// and in order; the failure and the recovery are told to the error hook
// and counted.
func TestRedisRestartMidStream(t *testing.T) { inEachMode(t, testRedisRestartMidStream) }

func testRedisRestartMidStream(t *testing.T, mode Delivery) {
	srv, err := redistest.Start(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	// go-redis's defaults, but for the pause between dial attempts (100 ms),
	// which makes each publish in the outage take over a second.
	opts := &redis.Options{Addr: srv.Addr, DialerRetryTimeout: 10 * time.Millisecond}
	clientA, clientB := redis.NewClient(opts), redis.NewClient(opts)
	t.Cleanup(func() { clientA.Close(); clientB.Close() })
	cfg := Config{Delivery: mode, Prefix: "app", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	a, b := newInstance(t, clientA, cfg), newInstance(t, clientB, cfg)

	sess := a.dial(t, "", "news")
	eventually(t, "the subscription on A", func() bool { return a.b.Stats().Subscribers == 1 })
	var want, ids []string
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			ids = append(ids, b.publish(t, "news", strconv.Itoa(i)))
			want = append(want, strconv.Itoa(i))
		}
	}
	// A burst, and Redis stops at once: A may not have read all of it yet.
	publish(0, 50)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	for i := range 5 {
		_, err := b.b.Publish(context.Background(), "news", event.Event{Data: "lost " + strconv.Itoa(i)})
		if err == nil || !strings.Contains(err.Error(), `redisbroker: publishing on "news"`) || isUnknownOutcome(err) {
			t.Fatalf("publishing while Redis is down: got %v, want an error saying nothing was stored (nothing was sent)", err)
		}
	}
	if st := b.backend.Stats(); st.PublishErrors != 5 || st.Published != 50 {
		t.Fatalf("B's stats %+v: want 50 published, 5 errors", st)
	}
	eventually(t, "A to report the failure", func() bool {
		st := a.backend.Stats()
		return !st.Connected && st.ReadErrors > 0 && a.errs.count(nil) > 0
	})
	time.Sleep(300 * time.Millisecond) // a few attempts in the dark

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// go-redis's pool, after failing to dial, tries again on its own
	// schedule (about once a second): publishing fails until then, before
	// anything is sent, so trying again cannot publish twice.
	eventually(t, "B to publish again", func() bool {
		id, err := b.b.Publish(context.Background(), "news", event.Event{Data: "50"})
		if err != nil && !strings.Contains(err.Error(), "dial") {
			t.Fatalf("publishing after the restart: %v", err)
		}
		if err == nil {
			ids, want = append(ids, id), append(want, "50")
		}
		return err == nil
	})
	publish(51, 100)

	var got []string
	for len(got) < len(want) {
		ev := sess.next(t) // the same connection: it never ended
		got = append(got, ev.Data.(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q,\nwant %q", got, want)
	}
	eventually(t, "A to report the recovery", func() bool {
		st := a.backend.Stats()
		return st.Connected && st.Reconnects >= 1 && a.notices.count(ErrRecovered) >= 1
	})
	st := a.backend.Stats()
	if st.Lost != 0 || st.Delivered != 100 {
		t.Fatalf("A's stats %+v: want 100 delivered, none lost", st)
	}
	if n := a.errs.count(ErrRecovered); n != 0 {
		t.Fatalf("ErrorHandler was told %d recovery notices, want them told to NoticeHandler alone", n)
	}
	failures := a.errs.count(nil)
	if uint64(failures) != st.ReadErrors {
		t.Fatalf("%d failures told, %d counted", failures, st.ReadErrors)
	}
	t.Logf("A: %d failed reads, %d reconnects", st.ReadErrors, st.Reconnects)

	// The history survived the restart: a client reconnecting to B with
	// an ID from before the outage gets the rest.
	late := b.dial(t, ids[9], "news")
	for i := 10; i < 100; i++ {
		if ev := late.next(t); ev.Data != strconv.Itoa(i) {
			t.Fatalf("replay after the restart: got %+v, want %d", ev, i)
		}
	}
}
