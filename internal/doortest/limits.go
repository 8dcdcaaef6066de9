package doortest

// This file tests who gets a stream: Config.MaxClients, counted exactly
// however many clients connect at once and answered as Config.Overflow
// says, and Config.MatchQuery, which keeps streams to requests that ask for
// one.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testMaxClients: of many clients connecting at once, exactly MaxClients
// get a stream; the others get 200 and a stream holding only a retry field
// (OverflowRetry) or 503 with Retry-After (OverflowUnavailable), within
// RetryAfter and twice it. Once the streams end, every slot is free: a
// second wave gets exactly as many.
func testMaxClients(t *testing.T, d Door) {
	const max, clients = 4, 16
	const retryAfter = time.Second
	for _, mode := range []sse.Overflow{sse.OverflowRetry, sse.OverflowUnavailable} {
		t.Run(map[sse.Overflow]string{sse.OverflowRetry: "retry", sse.OverflowUnavailable: "unavailable"}[mode], func(t *testing.T) {
			var release atomic.Pointer[chan struct{}] // closed to end the wave's streams
			cfg := Config{Config: sse.Config{MaxClients: max, Overflow: mode, RetryAfter: retryAfter}}
			r := serve(t, d, cfg, func(s *sse.Stream, _ *http.Request) error {
				done := *release.Load()
				go func() {
					defer close(s.C)
					if s.Send(event.Event{Data: "in"}) != nil { // tells the client it is in
						return
					}
					select {
					case <-done:
					case <-s.Context().Done():
					}
				}()
				return nil
			})
			for wave := range 2 {
				done := make(chan struct{})
				release.Store(&done)
				in := maxClientsWave(t, r, mode, clients, retryAfter)
				if len(in) != max {
					t.Fatalf("wave %d: %d of %d clients got a stream, want exactly %d", wave, len(in), clients, max)
				}
				close(done)
				for _, dec := range in {
					expectEvent(t, dec, "close", "")
					expectEnd(t, dec)
				}
			}
		})
	}
}

// maxClientsWave connects n clients at once and returns, for those that
// got a stream, its decoder, past its first event; it fails the test for
// any answer but a stream or the refusal mode says.
func maxClientsWave(t *testing.T, r *rig, mode sse.Overflow, n int, retryAfter time.Duration) []*event.Decoder {
	t.Helper()
	var (
		mu       sync.Mutex
		in       []*event.Decoder
		problems []string
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			dec, problem := maxClientsAnswer(t, r, mode, retryAfter)
			mu.Lock()
			defer mu.Unlock()
			if problem != "" {
				problems = append(problems, problem)
			} else if dec != nil {
				in = append(in, dec)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.FailNow()
	}
	return in
}

// maxClientsAnswer connects one client and returns its stream's decoder,
// or nil for a refusal as mode says, or what is wrong with the answer.
func maxClientsAnswer(t *testing.T, r *rig, mode sse.Overflow, retryAfter time.Duration) (*event.Decoder, string) {
	res, err := r.do(t, "/events")
	if err != nil {
		return nil, err.Error()
	}
	if mode == sse.OverflowUnavailable && res.StatusCode == http.StatusServiceUnavailable {
		b, _ := io.ReadAll(res.Body)
		secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if lo, hi := int(retryAfter/time.Second), int(2*retryAfter/time.Second); err != nil || secs < lo || secs > hi {
			return nil, fmt.Sprintf("refused with Retry-After %q, want %d to %d seconds", res.Header.Get("Retry-After"), lo, hi)
		}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			return nil, fmt.Sprintf("refused with 503 and an event stream: %q", b)
		}
		return nil, ""
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		return nil, fmt.Sprintf("got status %d, Content-Type %q (%q)", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	var raw bytes.Buffer
	dec := event.NewDecoder(io.TeeReader(res.Body, &raw))
	ev, err := dec.Decode()
	switch {
	case err == nil && ev.Data == "in":
		return dec, ""
	case err == nil:
		return nil, fmt.Sprintf("got event %v, want the stream's first or none", ev)
	case err != io.EOF:
		return nil, fmt.Sprintf("reading the stream: %v (%q)", err, raw.String())
	case mode != sse.OverflowRetry:
		return nil, fmt.Sprintf("got a stream that ended at once (%q), want 503", raw.String())
	}
	// Refused with a retry field alone.
	if got := dec.Retry(); got < retryAfter || got > 2*retryAfter {
		return nil, fmt.Sprintf("refused with retry %v (%q), want %v to %v", got, raw.String(), retryAfter, 2*retryAfter)
	}
	for line := range strings.SplitSeq(raw.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, ":") && !strings.HasPrefix(line, "retry: ") {
			return nil, fmt.Sprintf("refused with %q, want only a retry field", raw.String())
		}
	}
	return nil, ""
}

// testMatchQuery: with MatchQuery set, a request without the key gets 400
// and no stream (the handler is not called); one with it, whatever its
// value, gets a stream.
func testMatchQuery(t *testing.T, d Door) {
	var handled atomic.Int64
	r := serve(t, d, Config{Config: sse.Config{MatchQuery: "stream"}}, func(s *sse.Stream, req *http.Request) error {
		handled.Add(1)
		return sendThenClose(event.Event{Data: "live"})(s, req)
	})
	t.Run("without the key", func(t *testing.T) {
		for _, path := range []string{"/events", "/events?other=1", "/events?streams"} {
			before := handled.Load()
			expectNoStream(t, r.get(t, path), http.StatusBadRequest)
			if handled.Load() != before {
				t.Fatalf("%s: the handler got a stream", path)
			}
		}
	})
	t.Run("with the key", func(t *testing.T) {
		for _, path := range []string{"/events?stream", "/events?stream=", "/events?x=2&stream=1"} {
			before := handled.Load()
			res := r.get(t, path)
			expectStream(t, res)
			if got, want := summary(decodeAll(t, res.Body)), "message:live close:"; got != want {
				t.Fatalf("%s: got events %q, want %q", path, got, want)
			}
			if handled.Load() != before+1 {
				t.Fatalf("%s: the handler did not get the stream", path)
			}
		}
	})
}
