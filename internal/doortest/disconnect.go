package doortest

// This file tests clients that go away: one that disconnects, whose slot
// is freed and whose senders are unblocked, and one that stops reading,
// dropped once a write has waited Config.WriteTimeout.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testClientGone: when the client disconnects, a sender blocked in Send
// gets ErrClientGone, the stream ends with it, and its slot is free: with
// MaxClients 1, the next client gets a stream.
func testClientGone(t *testing.T, d Door) {
	streams := make(chan *sse.Stream, 2)
	senderErrs := make(chan error, 2)
	cfg := Config{Config: sse.Config{MaxClients: 1, BufferSize: 1}}
	r := serve(t, d, cfg, streamsTo(streams, func(s *sse.Stream, _ *http.Request) error {
		// Faster than any client: the sender spends its time blocked
		// in Send.
		go flood(s, event.Event{Data: strings.Repeat("x", 1<<10)}, senderErrs)
		return nil
	}))
	res := r.get(t, "/events")
	expectStream(t, res)
	nextEvent(t, event.NewDecoder(res.Body))
	s := receive(t, streams, "the stream")
	res.Body.Close() // not read to its end: the connection closes
	expectReason(t, receive(t, senderErrs, "the sender to be unblocked"), sse.ErrClientGone)
	expectReason(t, ended(t, s), sse.ErrClientGone)

	res = r.get(t, "/events")
	expectStream(t, res)
	if _, err := event.NewDecoder(res.Body).Decode(); err != nil {
		t.Fatalf("the next client got no event (%v): the slot is still held", err)
	}
}

// testWriteTimeout: a client that never reads is dropped once a write has
// waited WriteTimeout: the stream ends with ErrWriteTimeout, which the
// error handler is told, and its slot is free.
func testWriteTimeout(t *testing.T, d Door) {
	const writeTimeout = 200 * time.Millisecond
	streams := make(chan *sse.Stream, 2)
	senderErrs := make(chan error, 1)
	errs := &errLog{}
	cfg := Config{Config: sse.Config{MaxClients: 1, WriteTimeout: writeTimeout}, OnError: errs.add}
	r := serve(t, d, cfg, streamsTo(streams, func(s *sse.Stream, req *http.Request) error {
		if req.URL.Query().Has("reader") {
			close(s.C)
			return nil
		}
		go flood(s, event.Event{Data: strings.Repeat("x", 64<<10)}, senderErrs)
		return nil
	}), func(srv *httptest.Server) {
		// Small buffers on both sides: the server's writes block
		// after a few kilobytes.
		srv.Listener = smallSendBuffers{srv.Listener}
	})
	conn, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: doortest\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	s := receive(t, streams, "the stream")
	expectReason(t, ended(t, s), sse.ErrWriteTimeout)
	expectReason(t, receive(t, senderErrs, "the sender to be unblocked"), sse.ErrWriteTimeout)
	told := false
	for _, err := range errs.all() {
		told = told || errors.Is(err, sse.ErrWriteTimeout)
	}
	if !told {
		t.Fatalf("the error handler was told %v, want ErrWriteTimeout", errs.all())
	}

	res := r.get(t, "/events?reader")
	expectStream(t, res)
	if got, want := summary(decodeAll(t, res.Body)), "close:"; got != want {
		t.Fatalf("after the drop: got events %q, want %q", got, want)
	}
}
