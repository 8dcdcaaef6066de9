package doortest

// This file tests what a stream sends when it opens: the response's status
// and headers, sent at once, before any event, with Config.Retry's retry
// field when it is set.

import (
	"net/http"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testHeaders: a stream answers 200 with the headers of an event stream
// (no Content-Length: it is chunked), then its events.
func testHeaders(t *testing.T, d Door) {
	r := serve(t, d, Config{}, sendThenClose(event.Event{Data: "hello"}))
	res := r.get(t, "/events")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Content-Length":    "",
		"Connection":        "", // hop-by-hop, and forbidden over HTTP/2
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if res.ContentLength != -1 {
		t.Errorf("got a Content-Length of %d, want none", res.ContentLength)
	}
	if got, want := summary(decodeAll(t, res.Body)), "message:hello close:"; got != want {
		t.Fatalf("got events %q, want %q", got, want)
	}
}

// testFirstFlush: the headers arrive while the sender has sent nothing, and
// with Config.Retry set the retry field arrives with them, before any
// event; behind the door's compression middleware too, which the retry
// field, a first byte of the body, makes send the headers.
func testFirstFlush(t *testing.T, d Door) {
	for _, tc := range []struct {
		name  string
		retry time.Duration
		gzip  bool
	}{
		{"headers", 0, false},
		{"retry", 1500 * time.Millisecond, false},
		{"retry behind gzip", 1500 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			cfg := Config{Config: sse.Config{Retry: tc.retry}, Gzip: tc.gzip}
			r := serve(t, d, cfg, func(s *sse.Stream, _ *http.Request) error {
				go func() {
					defer close(s.C)
					select { // nothing is sent until the client has the headers
					case <-release:
					case <-s.Context().Done():
						return
					}
					s.Send(event.Event{Data: "first"})
				}()
				return nil
			})
			// Do returns with the headers: they came before any event.
			res := r.get(t, "/events", "Accept-Encoding", "gzip")
			expectStream(t, res)
			if tc.gzip {
				expectGzip(t, res)
			}
			lines := newLineReader(bodyOf(res))
			if tc.retry > 0 {
				lines.expect(t, "retry: 1500")
				lines.expect(t, "")
			}
			close(release)
			dec := event.NewDecoder(lines.r)
			expectEvent(t, dec, "message", "first")
			expectEvent(t, dec, "close", "")
			expectEnd(t, dec)
		})
	}
}
