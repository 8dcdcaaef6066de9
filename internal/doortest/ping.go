package doortest

// This file tests heartbeats: an idle stream sends ": ping" comments every
// Config.PingInterval, and every event restarts the wait.
//
// Timers never fire early, and the server and the client share the
// process's monotonic clock, so the lower bounds below hold however loaded
// the machine is: they are measured from a moment the server's wait cannot
// have started before. There are no upper bounds but the suite's waitLimit.

import (
	"net/http"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testPing: with a short PingInterval, an idle stream sends nothing but
// pings, no sooner than 7/8 of an interval apart (the sweeper's
// resolution: see Config.PingInterval); the ping after an event comes no
// sooner than that after it.
func testPing(t *testing.T, d Door) {
	const (
		interval = 50 * time.Millisecond
		slack    = 10 * time.Millisecond // clock granularity, not load
	)
	trigger := make(chan struct{})
	sentAt := make(chan time.Time, 1)
	r := serve(t, d, Config{Config: sse.Config{PingInterval: interval}}, func(s *sse.Stream, _ *http.Request) error {
		go func() {
			defer close(s.C)
			select {
			case <-trigger:
			case <-s.Context().Done():
				return
			}
			at := time.Now() // before the event is written, so before the wait restarts
			if s.Send(event.Event{Data: "x"}) == nil {
				sentAt <- at
			}
			<-s.Context().Done()
		}()
		return nil
	})
	start := time.Now()
	res := r.get(t, "/events")
	expectStream(t, res)
	lines := newLineReader(res.Body)
	// An idle stream: the first lines are pings.
	for range 3 {
		lines.expect(t, ": ping")
		lines.expect(t, "")
	}
	soonest := interval - interval/8
	if took := time.Since(start); took < 3*soonest-slack {
		t.Fatalf("3 pings within %v, want none sooner than every %v", took, soonest)
	}
	// Half an interval after a ping, an event: the next ping waits 7/8
	// of an interval after it at least, not the half left.
	time.Sleep(interval / 2)
	send(t, trigger, struct{}{}, "the trigger")
	at := receive(t, sentAt, "the event to be sent")
	for {
		// On a loaded machine the trigger may come late: pings before
		// the event are fine.
		line := lines.next(t)
		if line == ": ping" {
			lines.expect(t, "")
			continue
		}
		if line != "data: x" {
			t.Fatalf("got line %q, want a ping or the event", line)
		}
		lines.expect(t, "")
		break
	}
	lines.expect(t, ": ping")
	if gap := time.Since(at); gap < soonest-slack {
		t.Fatalf("a ping %v after an event, want the event to restart the wait of %v", gap, soonest)
	}
}
