package broker

import (
	"strconv"
	"testing"

	"github.com/echosse/echo-sse/event"
)

// TestQueueKeepsOrderAndReusesItsArray pushes and pops in a steady state
// with a backlog: the events come out in order, and the array stops
// growing instead of being reallocated as the backlog moves along it.
func TestQueueKeepsOrderAndReusesItsArray(t *testing.T) {
	var q queue
	next, want := 0, 0
	push := func() { q.push(&event.Event{ID: strconv.Itoa(next)}); next++ }
	pop := func() {
		if got := q.front().ID; got != strconv.Itoa(want) {
			t.Fatalf("popped %s, want %d", got, want)
		}
		q.pop()
		want++
	}
	for range 100 { // a backlog of 100
		push()
	}
	maxCap := 0
	for i := range 100_000 {
		push()
		pop()
		if i > 1000 {
			maxCap = max(maxCap, cap(q.evs))
		}
	}
	if q.len() != 100 {
		t.Fatalf("len %d, want 100", q.len())
	}
	if maxCap > 400 {
		t.Errorf("the array grew to %d events for a backlog of 100", maxCap)
	}
	rest := q.take()
	if len(rest) != 100 || rest[0].ID != strconv.Itoa(want) || q.len() != 0 || q.evs != nil {
		t.Fatalf("take returned %d events from %s; queue left with %d", len(rest), rest[0].ID, q.len())
	}
	want = next
	push()
	pop()
	if q.evs != nil {
		t.Error("an emptied queue keeps its array")
	}
}
