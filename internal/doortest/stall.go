package doortest

// This file tests a client whose connection stops taking bytes at once, so
// that the write timeout is met in a flush rather than in a write.

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/stallnet"
	"github.com/echosse/echo-sse/sse"
)

// testFlushTimeout: a stream whose connection takes no more bytes after
// the first event ends with ErrWriteTimeout once its next flush has
// waited WriteTimeout, and the error handler is told: the door hands the
// core a writer whose flush reports the failure (Echo v5's Response.Flush
// drops it).
func testFlushTimeout(t *testing.T, d Door) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "behind_gzip"}[gz], func(t *testing.T) { testFlushTimeoutGzip(t, d, gz) })
	}
}

// testFlushTimeoutGzip is testFlushTimeout, behind the door's compression
// middleware when gz is set: its writer's Flush reports no error either.
func testFlushTimeoutGzip(t *testing.T, d Door, gz bool) {
	const writeTimeout = 200 * time.Millisecond
	streams := make(chan *sse.Stream, 1)
	next := make(chan struct{})
	errs := &errLog{}
	var stalls *stallnet.Listener
	cfg := Config{Config: sse.Config{WriteTimeout: writeTimeout}, OnError: errs.add, Gzip: gz}
	r := serve(t, d, cfg, streamsTo(streams, func(s *sse.Stream, _ *http.Request) error {
		go func() {
			if s.Send(event.Event{Data: "one"}) != nil {
				return
			}
			select {
			case <-next:
				s.Send(event.Event{Data: "two"}) // short: its flush is what waits
			case <-s.Context().Done():
			}
		}()
		return nil
	}), func(srv *httptest.Server) {
		stalls = stallnet.Wrap(srv.Listener)
		srv.Listener = stalls
	})
	res := r.get(t, "/events", "Accept-Encoding", "gzip")
	expectStream(t, res)
	s := receive(t, streams, "the stream")
	dec := event.NewDecoder(bodyOf(res))
	expectEvent(t, dec, "message", "one")
	stalls.StallAll()
	close(next)
	expectReason(t, ended(t, s), sse.ErrWriteTimeout)
	told := false
	for _, err := range errs.all() {
		told = told || errors.Is(err, sse.ErrWriteTimeout)
	}
	if !told {
		t.Fatalf("the error handler was told %v, want ErrWriteTimeout", errs.all())
	}
}
