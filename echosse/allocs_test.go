//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts only hold without it; scripts/test.sh runs this file in its pass
// without -race.

package echosse_test

import (
	"io"
	"runtime"
	"testing"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// TestAllocsNonePerEventInThePump sends events one at a time through a
// real connection, each read by the client before the next is sent, and
// counts the allocations of every goroutine meanwhile: the pump encodes,
// writes and flushes each without allocating.
func TestAllocsNonePerEventInThePump(t *testing.T) {
	srv, streams := streamApp(t, echosse.Config{}, func(*echosse.Stream) error { return nil })
	res := get(t, srv.URL+"/events")
	s := <-streams
	ev := event.Event{Type: "tick", ID: "1", Data: `{"symbol":"ECHO","price":17.25}`}
	frame, _ := ev.AppendTo(nil)
	buf := make([]byte, 4096)
	roundTrip := func() {
		s.C <- ev
		if _, err := io.ReadFull(res.Body, buf[:len(frame)]); err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 { // warm up: buffers, pools, stacks
		roundTrip()
	}
	// The fewest of three rounds: a stray allocation elsewhere in the
	// process (the runtime, a connection winding down) is not the pump's.
	const n = 5000
	allocs := uint64(1 << 63)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			roundTrip()
		}
		runtime.ReadMemStats(&after)
		allocs = min(allocs, after.Mallocs-before.Mallocs)
	}
	close(s.C)
	t.Logf("%d allocations for %d events", allocs, n)
	if allocs > n/1000 {
		t.Fatalf("got %d allocations for %d events, want none per event", allocs, n)
	}
}
