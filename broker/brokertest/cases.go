package brokertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// Publishers on two goroutines, on three topics; subscribers on all
// three, on one, and on the other two. Each receives the events of its
// topics once, in one order for all: the all-topics subscriber's, filtered;
// each publisher's events come in the order it published them.
func (r *runner) orderAcrossTopics(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t)})
	all := in.subscribe(t, "", "a", "b", "c")
	justA := in.subscribe(t, "", "a")
	bc := in.subscribe(t, "", "b", "c")
	const per = 150
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range per {
				topic := string(rune('a' + (i+g)%3))
				if _, err := in.b.Publish(context.Background(), topic, event.Event{Type: topic, Data: fmt.Sprintf("%d-%03d", g, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := all.waitN(2*per, 10*time.Second)
	checkOnce(t, "the subscriber on a, b and c", got, 2*per)
	for g := range 2 {
		var mine []string
		for _, d := range datas(got) {
			if d[0] == byte('0'+g) {
				mine = append(mine, d)
			}
		}
		if !slices.IsSorted(mine) {
			t.Errorf("publisher %d's events out of order: %q", g, mine)
		}
	}
	for _, s := range []struct {
		name   string
		st     *stream
		topics string
	}{{"the subscriber on a", justA, "a"}, {"the subscriber on b and c", bc, "bc"}} {
		var want []string
		for _, ev := range got {
			if slices.Contains([]byte(s.topics), ev.Type[0]) {
				want = append(want, ev.Data.(string))
			}
		}
		if have := datas(s.st.waitN(len(want), 10*time.Second)); !slices.Equal(have, want) {
			t.Errorf("%s: got %d events, want %d in the order the others received them\n got %q\nwant %q", s.name, len(have), len(want), have, want)
		}
	}
}

// checkOnce fails t unless evs are n events, each data once.
func checkOnce(t *testing.T, who string, evs []event.Event, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, d := range datas(evs) {
		seen[d]++
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	if len(evs) != n || dups != 0 {
		t.Errorf("%s received %d events (%d distinct, %d duplicates), want %d once each", who, len(evs), len(seen), dups, n)
	}
}

// Three brokers of one scope, a publisher on each and subscribers on each:
// every subscriber receives every event once, all in the same order, with
// the ID Publish returned.
func (r *runner) exactlyOnceAcrossInstances(t *testing.T) {
	if !r.h.Shared {
		t.Skip("the backend does not share topics between brokers (Harness.Shared)")
	}
	scope := r.scope(t)
	ins := []*instance{r.start(t, Options{Scope: scope}), r.start(t, Options{Scope: scope}), r.start(t, Options{Scope: scope})}
	var subs []*stream
	for _, in := range ins {
		subs = append(subs, in.subscribe(t, "", "a", "b"))
	}
	const per = 100
	var mu sync.Mutex
	ids := map[string]string{} // data -> ID
	var wg sync.WaitGroup
	for p, in := range ins {
		wg.Go(func() {
			for i := range per {
				topic := []string{"a", "b"}[(i*7+p)%2]
				data := fmt.Sprintf("%d-%03d", p, i)
				id, err := in.b.Publish(context.Background(), topic, event.Event{Type: topic, Data: data})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[data] = id
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var first []string
	for i, s := range subs {
		got := s.waitN(3*per, 10*time.Second)
		checkOnce(t, fmt.Sprintf("the subscriber on instance %d", i), got, 3*per)
		for _, ev := range got {
			if want := ids[ev.Data.(string)]; ev.ID != want {
				t.Errorf("instance %d: event %q has ID %q, Publish returned %q", i, ev.Data, ev.ID, want)
				break
			}
		}
		if i == 0 {
			first = datas(got)
		} else if !slices.Equal(datas(got), first) {
			t.Errorf("the subscriber on instance %d received the events in another order than on instance 0", i)
		}
	}
}

// A client that reconnects with the ID of an event receives, on its
// topics, every event published after it, in order, then live events.
func (r *runner) replayAfterID(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t)})
	var ids []string
	for i := range 10 {
		ids = append(ids, in.publish(t, "a", "a"+strconv.Itoa(i)))
		in.publish(t, "b", "b"+strconv.Itoa(i))
	}
	s := in.subscribe(t, ids[3], "a")
	if s.Gap() != "" {
		t.Fatalf("a gap after an ID the history covers: %s", s.Gap())
	}
	in.publish(t, "a", "a10")
	want := []string{"a4", "a5", "a6", "a7", "a8", "a9", "a10"}
	if got := datas(s.waitN(len(want), 10*time.Second)); !slices.Equal(got, want) {
		t.Errorf("replay on a after a3, then live: got %q, want %q", got, want)
	}
	both := in.subscribe(t, ids[7], "a", "b")
	want = []string{"b7", "a8", "b8", "a9", "b9", "a10"}
	if got := datas(both.waitN(len(want), 10*time.Second)); !slices.Equal(got, want) {
		t.Errorf("replay on a and b after a7: got %q, want %q", got, want)
	}
	last := in.subscribe(t, both.LastID(), "a", "b")
	if last.Gap() != "" || len(last.waitN(1, 200*time.Millisecond)) != 0 {
		t.Errorf("replay after the last event: got %q, gap %q; want nothing", datas(last.events()), last.Gap())
	}
}

// A client that received events through one broker reconnects to another
// of the same scope, which replays what it missed.
func (r *runner) replayOnAnotherInstance(t *testing.T) {
	if !r.h.Shared {
		t.Skip("the backend does not share topics between brokers (Harness.Shared)")
	}
	scope := r.scope(t)
	a, b := r.start(t, Options{Scope: scope}), r.start(t, Options{Scope: scope})
	s := a.subscribe(t, "", "t")
	a.publish(t, "t", "1")
	b.publish(t, "t", "2")
	if got := datas(s.waitN(2, 10*time.Second)); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("live on A: got %q", got)
	}
	s.close()
	a.publish(t, "t", "3")
	b.publish(t, "t", "4")
	again := b.subscribe(t, s.LastID(), "t")
	if again.Gap() != "" {
		t.Fatalf("reconnecting to B: gap %s", again.Gap())
	}
	if got := datas(again.waitN(2, 10*time.Second)); !slices.Equal(got, []string{"3", "4"}) {
		t.Errorf("replay on B: got %q, want [3 4]", got)
	}
}

// HistorySize 3: a client whose ID is older than the three events kept
// gets a gap, one whose ID is the newest dropped gets the three.
func (r *runner) gapTrimmedBySize(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t), HistorySize: 3})
	var ids []string
	for i := range 6 {
		ids = append(ids, in.publish(t, "a", strconv.Itoa(i)))
	}
	if s := in.subscribe(t, ids[1], "a"); s.Gap() == "" {
		t.Errorf("after the second of 6 events, 3 kept: got %q and no gap", datas(s.waitN(4, 200*time.Millisecond)))
	}
	if s := in.subscribe(t, ids[1], "a", "untouched"); s.Gap() == "" {
		t.Errorf("on a and a topic never published: got no gap")
	}
	s := in.subscribe(t, ids[2], "a")
	if s.Gap() != "" {
		t.Fatalf("after the third of 6 events, 3 kept: gap %s", s.Gap())
	}
	if got := datas(s.waitN(3, 10*time.Second)); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Errorf("after the third: got %q, want [3 4 5]", got)
	}
}

// HistoryAge 300 ms: events older than that leave the history, and a
// client that missed them gets a gap.
func (r *runner) gapTrimmedByAge(t *testing.T) {
	const age = 300 * time.Millisecond
	in := r.start(t, Options{Scope: r.scope(t), HistoryAge: age})
	first := in.publish(t, "a", "1")
	second := in.publish(t, "a", "2")
	time.Sleep(age + 200*time.Millisecond)
	in.publish(t, "a", "3")
	if s := in.subscribe(t, first, "a"); s.Gap() == "" {
		t.Errorf("after an event whose successor aged out: got %q and no gap", datas(s.waitN(2, 200*time.Millisecond)))
	}
	s := in.subscribe(t, second, "a")
	if s.Gap() != "" {
		t.Fatalf("after the last event that aged out: gap %s", s.Gap())
	}
	if got := datas(s.waitN(1, 10*time.Second)); !slices.Equal(got, []string{"3"}) {
		t.Errorf("after the last event that aged out: got %q, want [3]", got)
	}
}

// IDs that name no event of the history are gaps: malformed, out of
// range, newer than every event.
func (r *runner) gapUnknownID(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t)})
	last := in.publish(t, "a", "1")
	ids := []string{"nope", "99999999999999999999", "-1", "1.5"}
	if n, err := strconv.ParseUint(last, 10, 64); err == nil {
		ids = append(ids, strconv.FormatUint(n+1_000_000_000, 10)) // newer than every event
	}
	for _, id := range ids {
		if s := in.subscribe(t, id, "a"); s.Gap() == "" {
			t.Errorf("Last-Event-ID %q: no gap", id)
		}
	}
}

// A well-formed ID that was never assigned, though it falls between IDs
// that were, is unknown: a gap, not a replay from wherever it falls. One
// case uses an ID of another scope, assigned between two of this one's;
// when IDs are numbers with room between two of them, another uses a
// number in between.
func (r *runner) gapNeverAssignedID(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t)})
	other := r.start(t, Options{Scope: r.scope(t)})
	first := in.publish(t, "a", "1")
	time.Sleep(3 * time.Millisecond)
	foreign := other.publish(t, "a", "x")
	time.Sleep(3 * time.Millisecond)
	second := in.publish(t, "a", "2")
	time.Sleep(3 * time.Millisecond)
	in.publish(t, "a", "3")
	cases := map[string]string{"an ID of another scope": foreign}
	x, err1 := strconv.ParseUint(first, 10, 64)
	y, err2 := strconv.ParseUint(second, 10, 64)
	if err1 == nil && err2 == nil && y > x+1 && foreign != strconv.FormatUint(x+(y-x)/2, 10) {
		cases["a number between two IDs"] = strconv.FormatUint(x+(y-x)/2, 10)
	}
	for name, id := range cases {
		if s := in.subscribe(t, id, "a"); s.Gap() == "" {
			t.Errorf("%s (%s, between %s and %s): no gap, got %q", name, id, first, second, datas(s.waitN(2, 200*time.Millisecond)))
		}
	}
}

// Close ends every subscribed stream (the client sees its response end)
// and closes the backend; Publish and Subscribe then return ErrClosed, and
// a second Close returns nil.
func (r *runner) close(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t)})
	s := in.subscribe(t, "", "a")
	in.publish(t, "a", "1")
	s.waitN(1, 10*time.Second)
	if err := in.b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !s.wait(10*time.Second, func() bool { return s.err != nil }) {
		t.Fatal("the stream is still open 10 s after Close")
	}
	if _, err := in.b.Publish(context.Background(), "a", event.Event{Data: "late"}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if late, err := in.open("", "a"); err == nil {
		if late.wait(10*time.Second, func() bool { return late.err != nil }) && late.isReady() {
			t.Errorf("Subscribe after Close said ready")
		}
		late.close()
	}
	if err := in.b.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// Publishers, subscribers that reconnect with the IDs they saw, and Close,
// all at once: nothing panics or hangs, Publish returns nil or ErrClosed,
// and every stream ends.
func (r *runner) concurrent(t *testing.T) {
	in := r.start(t, Options{Scope: r.scope(t)})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := in.b.Publish(context.Background(), []string{"a", "b"}[i%2], event.Event{Data: fmt.Sprintf("%d-%d", g, i)})
				if errors.Is(err, broker.ErrClosed) {
					return
				} else if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	for g := range 4 {
		rng := rand.New(rand.NewPCG(uint64(g), 1))
		wg.Go(func() {
			last := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := in.open(last, []string{"a", "b"}[:1+rng.IntN(2)]...)
				if err != nil {
					return // the server is closing
				}
				s.wait(time.Duration(rng.IntN(20))*time.Millisecond, func() bool { return s.err != nil })
				last = s.LastID()
				s.close()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := in.b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("publishers or subscribers still running 20 s after Close")
	}
}

// Topics no stream of a broker is subscribed to, published on all along
// (through another broker when the backend is shared): a stream that
// subscribes to one on that broker with the ID of one of its events
// receives every event after it once, in order, then every live one; a
// stream with no ID receives, once each and in order, every event from
// some point before its ready event on. A backend that delivers only the
// topics its broker watches ([broker.Interested]) starts delivering each
// of them here, while it is published on.
func (r *runner) newTopicHandover(t *testing.T) {
	scope := r.scope(t)
	sub := r.start(t, Options{Scope: scope})
	pub := sub
	if r.h.Shared {
		pub = r.start(t, Options{Scope: scope})
	}
	type published struct{ data, id string }
	for k := range 4 {
		topic := fmt.Sprintf("new-%d", k)
		var mu sync.Mutex
		var list []published
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(list) }
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := fmt.Sprintf("%s-%04d", topic, i)
				id, err := pub.b.Publish(context.Background(), topic, event.Event{Type: topic, Data: data})
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				list = append(list, published{data, id})
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		})
		stopPublishing := sync.OnceFunc(func() { close(stop); wg.Wait() })
		t.Cleanup(stopPublishing) // if the case fails before it stops them
		eventually(t, 10*time.Second, "10 events published", func() bool { return count() >= 10 })
		mu.Lock()
		from := list[4]
		mu.Unlock()
		resumed := sub.subscribe(t, from.id, topic)
		fresh := sub.subscribe(t, "", topic)
		if resumed.Gap() != "" {
			t.Fatalf("%s: resuming after %s: gap %s", topic, from.id, resumed.Gap())
		}
		n := count()
		eventually(t, 10*time.Second, "20 more events published", func() bool { return count() >= n+20 })
		stopPublishing()
		var want []string
		for _, p := range list[5:] {
			want = append(want, p.data)
		}
		if got := datas(resumed.waitN(len(want), 10*time.Second)); !slices.Equal(got, want) {
			t.Errorf("%s: resumed after event 4: got %d events, want %d in order\n got %q\nwant %q", topic, len(got), len(want), got, want)
		}
		all := make([]string, len(list))
		for i, p := range list {
			all[i] = p.data
		}
		// The n-th event may have been published before the stream was
		// ready, and counted only after: it may miss that one.
		after := len(list) - n - 1
		fresh.waitN(after, 10*time.Second)
		time.Sleep(50 * time.Millisecond)
		got := datas(fresh.events())
		if len(got) < after {
			t.Errorf("%s: the fresh stream received %d events, fewer than the %d published after it was ready", topic, len(got), after)
		} else if !slices.Equal(got, all[len(all)-len(got):]) {
			t.Errorf("%s: the fresh stream's events are not the last %d published, once each, in order\n got %q", topic, len(got), got)
		}
	}
}
