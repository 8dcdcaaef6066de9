package broker

import (
	"slices"
	"sync/atomic"
	"testing"
)

// refillStream is a fakeStream whose pump asks for held-back events, as an
// *sse.Stream does: it keeps the function the broker gives it.
type refillStream struct {
	*fakeStream
	refill atomic.Pointer[func()]
}

func (r *refillStream) SetRefill(f func()) { r.refill.Store(&f) }

// A stream that falls behind gets its held-back events as soon as its pump
// has emptied its buffer and asks (so the pump writes them with the same
// flush), in order, and none twice; once caught up, asking moves nothing,
// and live events go straight to the buffer again.
func TestRefillMovesHeldBackEventsWhenThePumpAsks(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := &refillStream{fakeStream: newFake(t, 4, "")}
	if err := b.subscribe(f.ch, f, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	fp := f.refill.Load()
	if fp == nil {
		t.Fatal("Subscribe did not set the stream's refill function")
	}
	refill := *fp
	refill() // not behind: nothing to do
	if got := f.drain(); len(got) != 0 {
		t.Fatalf("got %d events before any was published", len(got))
	}
	for range 30 {
		publish(t, b, "a", "x")
	}
	var got []string
	for rounds := 0; len(got) < 30; rounds++ {
		if rounds > 30/4 {
			t.Fatalf("after %d refills, got %q", rounds, got)
		}
		evs := f.drain()
		if want := min(4, 30-len(got)); len(evs) != want {
			t.Fatalf("round %d: the buffer held %d events, want %d (full, or the rest)", rounds, len(evs), want)
		}
		got = append(got, ids(evs)...)
		refill()
	}
	if !slices.Equal(got, seqIDs(1, 30)) {
		t.Fatalf("got IDs %q, want 1 to 30 in order", got)
	}
	if evs := f.drain(); len(evs) != 0 {
		t.Fatalf("got %q after the backlog, want nothing", ids(evs))
	}
	refill()
	if evs := f.drain(); len(evs) != 0 {
		t.Fatalf("a refill when caught up moved %q", ids(evs))
	}
	publish(t, b, "a", "x")
	if evs := f.drain(); !slices.Equal(ids(evs), seqIDs(31, 31)) {
		t.Fatalf("got %q, want the live event 31 in the buffer at once", ids(evs))
	}
	if st := b.Stats(); st.SlowClients != 0 || st.Dropped != 0 {
		t.Fatalf("got %+v, want no slow client and nothing dropped", st)
	}
}

// A refill after the stream has ended moves nothing and does not panic.
func TestRefillAfterTheStreamEnded(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := &refillStream{fakeStream: newFake(t, 1, "")}
	if err := b.subscribe(f.ch, f, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		publish(t, b, "a", "x")
	}
	f.cancel(nil)
	eventually(t, "the subscription ends", func() bool { return b.Stats().Subscribers == 0 })
	f.drain()
	(*f.refill.Load())()
	if evs := f.drain(); len(evs) != 0 {
		t.Fatalf("a refill after the end moved %q", ids(evs))
	}
}
