package doortest

// This file tests the http.Server's own WriteTimeout, which must not cut a
// stream: over HTTP/1 it is a deadline on the connection, over HTTP/2 a
// timer that resets the stream, and the door clears both.

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testServerWriteTimeout: a stream outlives its server's WriteTimeout
// several times over, idle in between, and its later events arrive; with
// the door's own per-write deadlines (Config.WriteTimeout) and without
// them, which would otherwise hide a server deadline left in place.
func testServerWriteTimeout(t *testing.T, d Door) {
	const serverTimeout = 50 * time.Millisecond
	for _, p := range []proto{http1, h2c} {
		for _, wt := range []struct {
			name    string
			timeout time.Duration
		}{
			{"write timeout", 0},
			{"no write timeout", -1},
		} {
			t.Run(p.String()+"/"+wt.name, func(t *testing.T) {
				testOutliveServerTimeout(t, d, p, Config{Config: sse.Config{WriteTimeout: wt.timeout}}, serverTimeout)
			})
		}
	}
}

func testOutliveServerTimeout(t *testing.T, d Door, p proto, cfg Config, serverTimeout time.Duration) {
	more := make(chan struct{})
	r := serveProto(t, d, cfg, func(s *sse.Stream, _ *http.Request) error {
		go func() {
			defer close(s.C)
			if s.Send(event.Event{Data: "early"}) != nil {
				return
			}
			select {
			case <-more:
			case <-s.Context().Done():
				return
			}
			s.Send(event.Event{Data: "late"})
		}()
		return nil
	}, p, func(srv *httptest.Server) { srv.Config.WriteTimeout = serverTimeout })
	res := r.get(t, "/events")
	expectStream(t, res)
	dec := event.NewDecoder(res.Body)
	expectEvent(t, dec, "message", "early")
	// Not a synchronisation: time passing is what is tested.
	time.Sleep(3 * serverTimeout)
	send(t, more, struct{}{}, "the go-ahead")
	expectEvent(t, dec, "message", "late")
	expectEvent(t, dec, "close", "")
	expectEnd(t, dec)
}
