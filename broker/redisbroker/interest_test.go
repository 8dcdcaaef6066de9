package redisbroker

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/faultproxy"
	"github.com/echosse/echo-sse/internal/redistest"
)

// With DeliverInterest, an instance reads the events of the topics its
// streams subscribe to, and no others: each of two instances delivers
// its own topic's events only, while one with DeliverAll, on the same
// Prefix, delivers both. Once its last subscriber has gone (and the
// broker's linger has passed), the instance is out of the topic's
// watchers in Redis, and delivers no more of its events.
func TestInterestDeliversWatchedTopicsOnly(t *testing.T) {
	client := newClient(t, shared.Addr)
	prefix := testPrefix(t)
	interest := Config{Prefix: prefix, Delivery: DeliverInterest}
	a, b := newInstance(t, client, interest), newInstance(t, client, interest)
	all := newInstance(t, client, Config{Prefix: prefix})
	sa, sb, sall := a.dial(t, "", "a"), b.dial(t, "", "b"), all.dial(t, "", "a", "b")
	for _, in := range []*instance{a, b, all} {
		eventually(t, "the subscriptions", func() bool { return in.b.Stats().Subscribers == 1 })
	}
	var want []string
	for i := range 20 {
		topic := []string{"a", "b"}[i%2]
		all.publish(t, topic, topic+strconv.Itoa(i))
		want = append(want, topic+strconv.Itoa(i))
	}
	read := func(s *session, n int) []string {
		var got []string
		for range n {
			got = append(got, s.next(t).Data.(string))
		}
		return got
	}
	only := func(topic string) []string {
		var out []string
		for _, w := range want {
			if w[:1] == topic {
				out = append(out, w)
			}
		}
		return out
	}
	if got := read(sa, 10); !slices.Equal(got, only("a")) {
		t.Fatalf("A's stream got %q, want %q", got, only("a"))
	}
	if got := read(sb, 10); !slices.Equal(got, only("b")) {
		t.Fatalf("B's stream got %q, want %q", got, only("b"))
	}
	if got := read(sall, 20); !slices.Equal(got, want) {
		t.Fatalf("the DeliverAll stream got %q, want %q", got, want)
	}
	if sta, stb, stall := a.backend.Stats(), b.backend.Stats(), all.backend.Stats(); sta.Delivered != 10 || stb.Delivered != 10 || stall.Delivered != 20 || sta.Watched != 1 {
		t.Fatalf("delivered: A %d, B %d, DeliverAll %d (want 10, 10, 20); A watches %d topics", sta.Delivered, stb.Delivered, stall.Delivered, sta.Watched)
	}

	// A's subscriber leaves: within the broker's linger (5 s) and a sweep,
	// A unwatches "a".
	ctx := context.Background()
	sa.close()
	eventually(t, "A to have no subscriber", func() bool { return a.b.Stats().Subscribers == 0 })
	deadline := time.Now().Add(10 * time.Second)
	for a.backend.Stats().Watched != 0 {
		if time.Now().After(deadline) {
			t.Fatal("A still watches its topic 10 s after its subscriber left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if in, err := client.SIsMember(ctx, a.backend.keys.watch+"a", a.backend.instance).Result(); err != nil || in {
		t.Fatalf("A is still a watcher of a in Redis (%v, %v)", in, err)
	}
	all.publish(t, "a", "after")
	if got := read(sall, 1); got[0] != "after" {
		t.Fatalf("the DeliverAll stream got %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if st := a.backend.Stats(); st.Delivered != 10 {
		t.Fatalf("A delivered %d events, want 10: it read a topic it no longer watches", st.Delivered)
	}
}

// An instance that no longer counts as alive in Redis (cut off from it for
// longer than it counts as alive) gets none of its topics' events in its
// inbox meanwhile. When it is back, it registers again and reads what it
// missed from the topics' histories: its streams receive every event once,
// in order. A Subscribe to a new topic while it is not alive waits for that
// registration, so that no event of the topics watched before is dropped.
func TestInterestRegistersAgainAfterExpiry(t *testing.T) {
	p, err := faultproxy.Start(shared.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	viaProxy := redis.NewClient(&redis.Options{Addr: p.Addr()})
	t.Cleanup(func() { viaProxy.Close() })
	client := newClient(t, shared.Addr)
	prefix := testPrefix(t)
	cfg := Config{Prefix: prefix, Delivery: DeliverInterest, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	cfg.aliveFor = 500 * time.Millisecond
	a := newInstance(t, viaProxy, cfg)
	pub := newInstance(t, client, Config{Prefix: prefix})
	s := a.dial(t, "", "a")
	eventually(t, "the subscription", func() bool { return a.b.Stats().Subscribers == 1 })

	var want []string
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			pub.publish(t, "a", strconv.Itoa(i))
			want = append(want, strconv.Itoa(i))
		}
	}
	publish(0, 10)
	// Cut off for four times what it counts as alive, while events are
	// published: Publish stops copying them into its inbox.
	p.Pause()
	publish(10, 20)
	time.Sleep(2 * time.Second)
	publish(20, 30)
	if n, err := client.XLen(context.Background(), a.backend.keys.inbox+a.backend.instance).Result(); err != nil || n >= 30 {
		t.Fatalf("the inbox holds %d entries (%v): Publish went on copying into the inbox of a process not alive", n, err)
	}
	p.Resume()
	publish(30, 40)
	var got []string
	for len(got) < len(want) {
		ev, err := s.dec.Decode()
		if err != nil {
			t.Fatalf("reading the stream after %q: %v (told: %v)", got, err, a.errs.errs)
		}
		got = append(got, ev.Data.(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q,\nwant %q", got, want)
	}
	st := a.backend.Stats()
	if st.Reregistered == 0 || st.Lost != 0 || st.Recovered == 0 {
		t.Fatalf("A's stats %+v: want a registration again, events recovered from the history, none lost", st)
	}

	// Not alive again, as Redis sees it, with events on "a" meanwhile;
	// then a stream subscribes to "b" at A: its Watch finds A not alive,
	// and waits for the reader to register it again and deliver what
	// "a" missed.
	ctx := context.Background()
	if err := client.ZAdd(ctx, a.backend.keys.alive, redis.Z{Score: 0, Member: a.backend.instance}).Err(); err != nil {
		t.Fatal(err)
	}
	publish(40, 50)
	sb := a.dial(t, "", "b")
	eventually(t, "the second subscription", func() bool { return a.b.Stats().Subscribers == 2 })
	pub.publish(t, "b", "b0")
	if ev := sb.next(t); ev.Data != "b0" {
		t.Fatalf("the stream on b got %+v", ev)
	}
	for len(got) < len(want) {
		got = append(got, s.next(t).Data.(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q,\nwant %q", got, want)
	}
	if st2 := a.backend.Stats(); st2.Reregistered <= st.Reregistered || st2.Lost != 0 {
		t.Fatalf("A's stats %+v: want one more registration, none lost", st2)
	}
}

// A process that closes takes its inbox and its interest out of Redis, and
// Trim deletes those of a process that has not counted as alive for a
// while (it died without closing).
func TestInterestInboxesOfGoneProcessesAreDeleted(t *testing.T) {
	client := newClient(t, shared.Addr)
	ctx := context.Background()
	cfg := Config{Prefix: testPrefix(t), Delivery: DeliverInterest}
	a, _, _ := startBackend(t, client, cfg)
	if _, err := a.Watch(ctx, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	pub(t, a, "x", event.Event{Data: "1"})
	k := a.keys
	exists := func(keys ...string) int64 {
		n, err := client.Exists(ctx, keys...).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := exists(k.inbox+a.instance, k.watch+"x", k.watching+a.instance); n != 3 {
		t.Fatalf("%d of the inbox, watchers and watching keys exist, want 3", n)
	}
	a.Close()
	if n := exists(k.inbox+a.instance, k.watch+"x", k.watching+a.instance); n != 0 {
		t.Fatalf("%d of the inbox, watchers and watching keys are left after Close", n)
	}

	// One that died: its alive time is long past.
	b, _, _ := startBackend(t, client, cfg)
	if _, err := b.Watch(ctx, []string{"y"}); err != nil {
		t.Fatal(err)
	}
	pub(t, b, "y", event.Event{Data: "1"})
	if err := client.ZAdd(ctx, k.alive, redis.Z{Score: 1, Member: "gone"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.SAdd(ctx, k.watch+"y", "gone").Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.SAdd(ctx, k.watching+"gone", "y").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if members, _ := client.SMembers(ctx, k.watch+"y").Result(); !slices.Equal(members, []string{b.instance}) {
		t.Fatalf("y's watchers after Trim: %q, want only the live process", members)
	}
	if n := exists(k.watching + "gone"); n != 0 {
		t.Fatal("the dead process's watching set is left after Trim")
	}
	if _, err := client.ZScore(ctx, k.alive, b.instance).Result(); err != nil {
		t.Fatalf("Trim dropped the live process: %v", err)
	}
}

// With DeliverInterest, a reader that finds Redis at its memory limit
// (noeviction), which refuses the write that says the process is alive,
// goes on delivering what its inbox holds: the process still counts as
// alive from its last refresh. Its connection paused while events are
// published and Redis is then put over its limit, it reads them once
// resumed.
func TestInterestReadsAtMemoryLimit(t *testing.T) {
	srv, err := redistest.Start(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	p, err := faultproxy.Start(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	viaProxy := redis.NewClient(&redis.Options{Addr: p.Addr()})
	t.Cleanup(func() { viaProxy.Close() })
	client := newClient(t, srv.Addr)
	a := newInstance(t, viaProxy, Config{Prefix: "oom", Delivery: DeliverInterest})
	pub := newInstance(t, client, Config{Prefix: "oom"})
	s := a.dial(t, "", "a")
	eventually(t, "the subscription", func() bool { return a.b.Stats().Subscribers == 1 })

	var want []string
	for i := range 30 {
		if i == 10 {
			p.Pause() // what comes next waits in the inbox
		}
		want = append(want, strconv.Itoa(i))
		pub.publish(t, "a", want[i])
	}
	// Over its limit for good: every write is refused, reads are not.
	ctx := context.Background()
	if err := client.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.Set(ctx, "probe", "x", 0).Err(); !redis.IsOOMError(err) {
		t.Fatalf("a write to Redis over its limit: %v, want its OOM error", err)
	}
	time.Sleep(600 * time.Millisecond) // past the reader's next look
	p.Resume()
	got := make(chan string, len(want))
	go func() {
		defer close(got)
		for range want {
			ev, err := s.dec.Decode()
			if err != nil {
				return
			}
			got <- ev.Data.(string)
		}
	}()
	var read []string
	timeout := time.After(10 * time.Second)
	for len(read) < len(want) {
		select {
		case d, ok := <-got:
			if !ok {
				t.Fatalf("the stream ended after %q", read)
			}
			read = append(read, d)
		case <-timeout:
			t.Fatalf("after 10 s at Redis's memory limit the stream had %q of %d events (told: %v)", read, len(want), a.errs.all())
		}
	}
	if !slices.Equal(read, want) {
		t.Fatalf("got %q,\nwant %q", read, want)
	}
	// Whether the reader looked while Redis was over its limit depends on
	// the scheduler (a loaded machine may deliver first): logged, not
	// asserted. Before the fix, a look there stopped the stream above.
	t.Logf("the reader was told: %v", a.errs.all())
}
