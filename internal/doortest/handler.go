package doortest

// This file tests a handler that fails after it opened its stream: by
// returning an error, or by panicking. Either way the stream ends, with
// that reason, without the close event (the client reconnects), and its
// slot is freed.

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// failingHandle returns a Handle that, for a request with the query key
// "fail", sends an event and fails with fail; and for others ends the
// stream at once with the close event.
func failingHandle(streams chan<- *sse.Stream, fail func() error) Handle {
	return streamsTo(streams, func(s *sse.Stream, r *http.Request) error {
		if !r.URL.Query().Has("fail") {
			close(s.C)
			return nil
		}
		if err := s.Send(event.Event{Data: "partial"}); err != nil {
			return err
		}
		return fail()
	})
}

// expectFailed reads the stream of a failed handler to its end, which may
// be cut, and checks that it had no more than the one event sent and no
// close event.
func expectFailed(t *testing.T, res *http.Response) {
	t.Helper()
	evs, err := readEvents(res.Body)
	if err != nil {
		t.Logf("the response ended with %v", err)
	}
	if got := summary(evs); got != "" && got != "message:partial" {
		t.Fatalf("got events %q, want at most the one sent and no close event", got)
	}
}

// expectSlotFree checks, with MaxClients 1, that a new client gets a
// stream, whole.
func expectSlotFree(t *testing.T, r *rig) {
	t.Helper()
	res := r.get(t, "/events")
	expectStream(t, res)
	if got, want := summary(decodeAll(t, res.Body)), "close:"; got != want {
		t.Fatalf("the next client got events %q, want %q", got, want)
	}
}

// testHandlerError: a handler that returns an error after Open ends its
// stream with that error, and frees its slot.
func testHandlerError(t *testing.T, d Door) {
	boom := errors.New("doortest: the handler failed")
	streams := make(chan *sse.Stream, 2)
	r := serve(t, d, Config{Config: sse.Config{MaxClients: 1}}, failingHandle(streams, func() error { return boom }))
	res := r.get(t, "/events?fail")
	expectStream(t, res)
	expectFailed(t, res)
	expectReason(t, ended(t, receive(t, streams, "the stream")), boom)
	expectSlotFree(t, r)
}

// testHandlerPanic: a handler that panics after Open ends its stream with
// ErrHandlerPanicked and frees its slot, and the server serves on.
func testHandlerPanic(t *testing.T, d Door) {
	streams := make(chan *sse.Stream, 2)
	r := serve(t, d, Config{Config: sse.Config{MaxClients: 1}}, failingHandle(streams, func() error {
		panic("doortest: a handler bug")
	}), func(srv *httptest.Server) {
		// net/http logs a panic it recovers, with its stack: this one
		// is meant.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	})
	if res, err := r.do(t, "/events?fail"); err != nil {
		t.Logf("the request failed: %v", err) // the connection may be cut
	} else {
		expectStream(t, res)
		expectFailed(t, res)
	}
	expectReason(t, ended(t, receive(t, streams, "the stream")), sse.ErrHandlerPanicked)
	expectSlotFree(t, r)
}
