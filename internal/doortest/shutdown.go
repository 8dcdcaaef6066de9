package doortest

// This file tests the end of a server: http.Server.Shutdown ends every
// open stream with the close event, promptly, and the streams learn why.

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testShutdown: Shutdown of a server with open, idle streams returns
// without waiting for its deadline; each client gets the close event and
// the end of the response; each stream ends with ErrShutdown.
func testShutdown(t *testing.T, d Door) {
	const clients = 3
	streams := make(chan *sse.Stream, clients)
	r := serve(t, d, Config{}, streamsTo(streams, func(*sse.Stream, *http.Request) error {
		return nil // the stream stays open, idle, until something ends it
	}))
	var decs []*event.Decoder
	for range clients {
		res := r.get(t, "/events")
		expectStream(t, res) // the stream is open, and known to its server
		decs = append(decs, event.NewDecoder(res.Body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	start := time.Now()
	if err := r.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after %v: %v", time.Since(start), err)
	}
	for _, dec := range decs {
		expectEvent(t, dec, "close", "")
		expectEnd(t, dec)
	}
	for range clients {
		expectReason(t, ended(t, receive(t, streams, "a stream")), sse.ErrShutdown)
	}
}
