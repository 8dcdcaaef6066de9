package sse_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// A sender that holds events back while the buffer is full gives them to
// the pump through SetRefill: the pump asks each time it has emptied the
// buffer in the middle of a batch, and writes all it got with one flush,
// in order, however small the buffer.
func TestRefillFeedsOneBatch(t *testing.T) {
	srv, err := sse.New(sse.Config{BufferSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var calls atomic.Int64
	h := srv.Handler(func(s *sse.Stream, r *http.Request) error {
		var mu sync.Mutex // the handler sends first, the pump's refills after
		next := 0
		send := func() { // what fits, without waiting
			mu.Lock()
			defer mu.Unlock()
			if next == n {
				return
			}
			for next < n {
				select {
				case s.C <- event.Event{ID: fmt.Sprint(next), Data: "x"}:
					next++
				default:
					return
				}
			}
			close(s.C)
		}
		s.SetRefill(func() {
			calls.Add(1)
			send()
		})
		send()
		return nil
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	before := srv.Stats().Flushes
	flushesBefore := sum(before[:])

	client := &http.Client{Timeout: 10 * time.Second} // a pump that never asks leaves the stream open
	res, err := client.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	d := event.NewDecoder(res.Body)
	var got []string
	for {
		ev, err := d.Decode()
		if err != nil {
			break
		}
		if ev.Type != "close" {
			got = append(got, ev.ID)
		}
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got IDs %q, want 0 to %d in order", got, n-1)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Open > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c := calls.Load(); c < n/2-1 {
		t.Errorf("the pump asked for more %d times, want at least %d (one per buffer's worth)", c, n/2-1)
	}
	// The headers' flush and one batch, the close event with it: without
	// refills, the pump would flush once per buffer's worth, 20 times.
	after := srv.Stats().Flushes
	if f := sum(after[:]) - flushesBefore; f > 2 {
		t.Errorf("%d flushes for %d events in a buffer of 2, want at most 2", f, n)
	}
}
