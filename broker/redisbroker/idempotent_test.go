package redisbroker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/faultproxy"
)

// The requests of one Publish call store its event once at most, whenever
// they reach Redis, and never after the call's deadline; within
// publishKeep after it, a late request is told for sure whether the event
// was stored.
func TestPublishScriptIsIdempotent(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, _, _ := startBackend(t, client, Config{Prefix: testPrefix(t)})
	ctx := context.Background()
	serverNow := func() int64 {
		now, err := client.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return now.UnixMicro()
	}
	call := func(deadline int64) (*publishCall, []string, []any) {
		c := &publishCall{deadline: strconv.FormatInt(deadline, 10)}
		keys, args := b.publishRequest("news", event.Event{Data: "x"}, c)
		return c, keys, args
	}
	run := func(keys []string, args []any, c *publishCall) (int64, string) {
		t.Helper()
		status, seq, err := b.runPublish(ctx, keys, args, c)
		if err != nil {
			t.Fatal(err)
		}
		return status, seq
	}
	stored := func() int64 {
		t.Helper()
		n, err := client.XLen(ctx, b.keys.log).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The same request twice, as go-redis sends it again: stored once.
	c, keys, args := call(serverNow() + 200_000)
	st1, seq1 := run(keys, args, c)
	st2, seq2 := run(keys, args, c)
	if st1 != pubStored || st2 != pubFound || seq1 != seq2 || seq1 == "" {
		t.Fatalf("twice: statuses %d, %d and Seqs %q, %q; want stored, then found with the same Seq", st1, st2, seq1, seq2)
	}
	if n := stored(); n != 1 {
		t.Fatalf("the log holds %d entries, want 1", n)
	}
	if n := c.sent.Load(); n != 2 {
		t.Fatalf("%d requests counted, 2 were sent", n)
	}
	ttl, err := client.PTTL(ctx, keys[7]).Result()
	if err != nil || ttl <= publishKeep || ttl > publishKeep+300*time.Millisecond {
		t.Fatalf("the call's key expires in %v (%v), want a little over %v", ttl, err, publishKeep)
	}
	// After the deadline, while the key is kept: found all the same.
	time.Sleep(250 * time.Millisecond)
	if st, seq := run(keys, args, c); st != pubFound || seq != seq1 {
		t.Fatalf("after the deadline: status %d, Seq %q; want found, %q", st, seq, seq1)
	}

	// A request that first reaches Redis after its deadline stores
	// nothing, and says so.
	c, keys, args = call(serverNow() - 1000)
	if st, _ := run(keys, args, c); st != pubLate {
		t.Fatalf("after the deadline: status %d, want late", st)
	}
	c, keys, args = call(serverNow() - publishKeep.Microseconds() - 1000)
	if st, _ := run(keys, args, c); st != pubForgotten {
		t.Fatalf("long after the deadline: status %d, want forgotten", st)
	}
	if n := stored(); n != 1 {
		t.Fatalf("the log holds %d entries, want 1", n)
	}
}

// A publish whose request times out on the client while Redis does not
// answer, and which go-redis sends again, is stored once, and Publish
// returns its ID; one whose ctx ends first returns ErrUnknownOutcome, with
// the ID the caller gave the event, and is not stored when its request
// reaches Redis after the deadline.
func TestPublishThroughAPause(t *testing.T) {
	p, err := faultproxy.Start(shared.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	client := redis.NewClient(&redis.Options{Addr: p.Addr(), ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	direct := newClient(t, shared.Addr)
	cfg := Config{Prefix: testPrefix(t), PublishTimeout: 3 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	b, ch, _ := startBackend(t, client, cfg)
	ctx := context.Background()
	logLen := func() int64 {
		t.Helper()
		n, err := direct.XLen(ctx, b.keys.log).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The log reader has a connection of its own; this publish leaves one
	// in the pool. A request needs one that is ready: a connection made
	// while Redis does not answer never gets past its handshake, and
	// sends nothing.
	if _, err := b.Publish(ctx, "news", event.Event{Data: "warm"}); err != nil {
		t.Fatal(err)
	}
	receive(t, ch, 1)
	t.Cleanup(p.Resume) // before the backend closes: its reader goes through p

	p.Pause()
	type result struct {
		msg broker.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		msg, err := b.Publish(ctx, "news", event.Event{Data: "once"})
		done <- result{msg, err}
	}()
	time.Sleep(600 * time.Millisecond) // 6 timeouts: go-redis has given up, Publish tries again
	p.Resume()
	r := <-done
	if r.err != nil {
		t.Fatalf("Publish through a pause of 6 client timeouts: %v", r.err)
	}
	if n := logLen(); n != 2 {
		t.Fatalf("the log holds %d entries, want 2", n)
	}
	if got := receive(t, ch, 1)[0]; got.Event.ID != r.msg.Event.ID {
		t.Fatalf("delivered %q, Publish returned %q", got.Event.ID, r.msg.Event.ID)
	}
	if st := b.Stats(); st.Published != 2 || st.PublishErrors != 0 {
		t.Fatalf("stats %+v: want 2 published, no error", st)
	}

	p.Pause()
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.Publish(pctx, "news", event.Event{ID: "order-7", Data: "maybe"})
	cancel()
	var pe *broker.PublishError
	if !errors.Is(err, broker.ErrUnknownOutcome) || !errors.As(err, &pe) || pe.ID != "order-7" || pe.Topic != "news" {
		t.Fatalf("Publish while paused, with a deadline: %v, want a PublishError of unknown outcome for order-7", err)
	}
	if !strings.Contains(err.Error(), "or never") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the error does not say by when it is settled: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // past the deadline
	p.Resume()
	// What waited reaches Redis now, and stores nothing; the next publish
	// goes through. Under load, a connection the pool makes now may not
	// get past its handshake within the client's 100 ms: that publish
	// sends nothing and says so, and is tried again (the log's count below
	// shows that it stored nothing).
	failed := 0
	for {
		_, err := b.Publish(ctx, "news", event.Event{Data: "after"})
		if err == nil {
			break
		}
		if failed++; errors.Is(err, broker.ErrUnknownOutcome) || failed == 5 {
			t.Fatal(err)
		}
		t.Logf("publishing after the pause, attempt %d: %v", failed, err)
	}
	if got := receive(t, ch, 1)[0]; got.Event.Data != "after" {
		t.Fatalf("delivered %+v, want the publish after the pause", got)
	}
	if n := logLen(); n != 3 {
		t.Fatalf("the log holds %d entries, want 3: the one of unknown outcome came after its deadline", n)
	}
	if st := b.Stats(); st.UnknownOutcomes != 1 || st.PublishErrors != 1+uint64(failed) {
		t.Fatalf("stats %+v: want %d errors, 1 of unknown outcome", st, 1+failed)
	}
}
