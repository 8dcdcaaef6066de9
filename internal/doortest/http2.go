package doortest

// This file tests streams over HTTP/2, with TLS and unencrypted (h2c):
// several streams share one connection, and each event arrives at once.

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testHTTP2: two streams on one HTTP/2 connection, with the headers of an
// event stream; the handler sees an HTTP/2 request; each stream's events
// arrive one by one, acknowledged in turn, then the close event.
func testHTTP2(t *testing.T, d Door) {
	const streams, events = 2, 3
	for _, p := range []proto{h2TLS, h2c} {
		t.Run(p.String(), func(t *testing.T) {
			var acks [streams]chan struct{}
			for i := range acks {
				acks[i] = make(chan struct{})
			}
			// The client's address of each stream's connection: one
			// connection carries both. (Counting the server's new
			// connections would also count one the client's transport
			// dials ahead and never uses.)
			var (
				mu      sync.Mutex
				remotes [streams]string
			)
			r := serveProto(t, d, Config{}, func(s *sse.Stream, req *http.Request) error {
				var n int
				if _, err := fmt.Sscan(req.URL.Query().Get("n"), &n); err != nil || n < 0 || n >= streams {
					return fmt.Errorf("doortest: bad stream number %q", req.URL.Query().Get("n"))
				}
				mu.Lock()
				remotes[n] = req.RemoteAddr
				mu.Unlock()
				go func() {
					defer close(s.C)
					if s.Send(event.Event{Type: "proto", Data: req.Proto}) != nil {
						return
					}
					for i := range events {
						select {
						case <-acks[n]:
						case <-s.Context().Done():
							return
						}
						if s.Send(event.Event{Data: fmt.Sprint("tick ", i)}) != nil {
							return
						}
					}
				}()
				return nil
			}, p)
			var decs [streams]*event.Decoder
			for n := range streams {
				res := r.get(t, fmt.Sprint("/events?n=", n))
				if res.ProtoMajor != 2 {
					t.Fatalf("got %s, want HTTP/2", res.Proto)
				}
				expectStream(t, res)
				if got := res.Header.Get("Cache-Control"); got != "no-cache" {
					t.Fatalf("got Cache-Control %q, want no-cache", got)
				}
				decs[n] = event.NewDecoder(res.Body)
				expectEvent(t, decs[n], "proto", "HTTP/2.0")
			}
			for i := range events {
				for n, dec := range decs {
					send(t, acks[n], struct{}{}, "an acknowledgement")
					expectEvent(t, dec, "message", fmt.Sprint("tick ", i))
				}
			}
			for _, dec := range decs {
				expectEvent(t, dec, "close", "")
				expectEnd(t, dec)
			}
			mu.Lock()
			defer mu.Unlock()
			if remotes[0] == "" || remotes[0] != remotes[1] {
				t.Fatalf("the streams came over connections from %q, want them to share one", remotes)
			}
		})
	}
}
