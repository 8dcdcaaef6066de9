package sse_test

import (
	"net/http"
	"testing"

	"github.com/klauspost/compress/gzhttp"

	"github.com/echosse/echo-sse/internal/doortest"
	"github.com/echosse/echo-sse/sse"
)

// door is the net/http door as the behaviour suite sees it: Server.Handler
// for every path and method, behind gzhttp when the suite asks for
// compression in front. A panic in the handler is left to net/http, which
// recovers it per request and closes the connection; Server.Handler has
// ended the stream by then.
//
// gzhttp needs no options for event streams. Its default content-type
// filter compresses text/event-stream. Its Write holds back up to MinSize
// (1 KB) to decide, but its Flush decides at once (it takes a response
// with no Content-Length for a long one), writes the gzip header and what
// it held, sync-flushes the compressor and flushes the connection, so the
// stream's flush after every batch of events delivers them. Two things it
// does differently from Echo's Gzip: a Flush before anything was written
// does nothing, so the headers go out with the first bytes of the body
// (the first event, heartbeat, or Config.Retry's field), not when the
// stream opens; and a response whose Content-Encoding is set already (the
// core's own, with Config.Compress) is passed through as it is, so the
// core's compression works behind it.
var door = doortest.Door{
	Name: "nethttp",
	Serve: func(t testing.TB, cfg doortest.Config, handle doortest.Handle) http.Handler {
		c := cfg.Config
		c.ErrorHandler = nil
		if cfg.OnError != nil {
			c.ErrorHandler = func(_ *http.Request, err error) { cfg.OnError(err) }
		}
		srv, err := sse.New(c)
		if err != nil {
			t.Fatal(err)
		}
		h := srv.Handler(handle)
		if !cfg.Gzip {
			return h
		}
		wrap, err := gzhttp.NewWrapper()
		if err != nil {
			t.Fatal(err)
		}
		return wrap(h)
	},
}

func TestDoor(t *testing.T) { doortest.Run(t, door) }

func TestDoorTakeover(t *testing.T) { doortest.RunTakeover(t, door) }

// TestDoorParked runs the suite with taken-over streams that park as soon
// as they are idle (at the sweeper's next tick, a millisecond on), so that
// the stream of every case parks, and starts again, between its events.
func TestDoorParked(t *testing.T) {
	sse.SetParkAfter(t, 0)
	before := sse.Parks()
	doortest.RunTakeover(t, door)
	parks := sse.Parks() - before
	t.Logf("%d parks", parks)
	if parks < 20 {
		t.Errorf("streams parked %d times in the suite, want at least 20", parks)
	}
}
