// Package doortest is the behaviour suite every front door of the core
// passes: written once, run by each door's tests (echosse for Echo v4,
// echosse5 for Echo v5, and package sse's own net/http door) through a
// small adapter, a [Door].
//
// Every case serves the door on a real loopback server (httptest, over
// HTTP/1.1 unless it says otherwise) and reads it with real clients: the
// net/http client and the event package's Decoder. Every wait is bounded.
package doortest

import (
	"net/http"
	"testing"

	"github.com/echosse/echo-sse/sse"
)

// A Door is one front door under test.
type Door struct {
	// Name names the door in test names: "echo4", "echo5", "nethttp".
	Name string

	// Serve returns an http.Handler that serves a stream, opened through
	// the door with cfg, for every request on every path and method, and
	// hands it to handle on the request's goroutine. The suite calls it
	// once per server, with t the test that server belongs to.
	//
	// An error handle returns is the handler's error (an Echo handler
	// returns it; the net/http door ends the stream with it): the suite
	// expects the stream to end with it as its reason ([sse.Stream.Err])
	// and its slot to be freed, and does not look at what the door does
	// with it next.
	//
	// handle may panic (after Open): the handler must then not take the
	// process down. The door recovers the panic, or the adapter puts a
	// recovering middleware outermost (Echo's Recover, as Echo users
	// do), or it leaves it to net/http's per-request recovery, which
	// closes the connection (the suite discards the server's error log for
	// that case). The suite expects the stream to end with
	// [sse.ErrHandlerPanicked], its slot to be freed and the server to
	// serve on; how the response ends, cleanly or cut, is the door's.
	//
	// A request for which no stream opens is answered as the door answers
	// it, handle not called: 400 for [sse.ErrNotRequested], 503 with
	// Retry-After or a stream holding only a retry field over MaxClients
	// (Config.Overflow), 500 for [sse.ErrDoubleCompression] and the
	// others.
	Serve func(t testing.TB, cfg Config, handle Handle) http.Handler
}

// Handle is what a test does with a stream once it is open; r is the
// stream's request, whose context is the stream's.
type Handle func(s *sse.Stream, r *http.Request) error

// Config configures a door for one test.
type Config struct {
	// Config is the door's Config fields, Skipper aside. Its ErrorHandler
	// is not used: see OnError.
	sse.Config

	// OnError, when set, is the door's ErrorHandler (called with the
	// error only). The suite always sets it.
	OnError func(err error)

	// Gzip puts the compression middleware users of the door put in
	// front: Echo's Gzip for the Echo doors, gzhttp for net/http. The
	// suite expects every event to be flushed through it at once, and the
	// response to decode after one gunzip; not that the headers go out
	// before the first byte of the body (gzhttp sends nothing until
	// then). With Config.Compress as well, the door either refuses the
	// stream with 500 ([sse.ErrDoubleCompression], Echo's Gzip, which
	// would compress it again) or compresses it once (gzhttp, which
	// leaves alone a response whose Content-Encoding is set).
	Gzip bool
}

// Run runs the behaviour suite against d, each case a subtest of one
// named after the door.
func Run(t *testing.T, d Door) {
	t.Helper()
	if d.Name == "" || d.Serve == nil {
		t.Fatal("doortest: a Door needs a Name and a Serve function")
	}
	t.Run(d.Name, func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.run(t, d) })
		}
	})
}

// RunTakeover runs the suite on d with Config.Takeover on in every case,
// as the subtest d.Name + "/takeover": over HTTP/1 the streams take their
// connections over, and the cases that put a wrapping middleware in front
// or speak HTTP/2 check that those streams stay on net/http's path.
func RunTakeover(t *testing.T, d Door) {
	t.Helper()
	serve := d.Serve
	d.Name += "/takeover"
	d.Serve = func(t testing.TB, cfg Config, handle Handle) http.Handler {
		cfg.Takeover = true
		return serve(t, cfg, handle)
	}
	Run(t, d)
}

// cases are the suite's tests, one per behaviour, each in the file of its
// concept.
var cases = []struct {
	name string
	run  func(t *testing.T, d Door)
}{
	// open.go: what a stream sends when it opens.
	{"Headers", testHeaders},
	{"FirstFlush", testFirstFlush},
	// close.go: the end a sender chooses.
	{"CloseEvent", testCloseEvent},
	// ping.go: heartbeats.
	{"Ping", testPing},
	// limits.go: who gets a stream.
	{"MaxClients", testMaxClients},
	{"MatchQuery", testMatchQuery},
	// disconnect.go: clients that leave or stop reading.
	{"ClientGone", testClientGone},
	{"WriteTimeout", testWriteTimeout},
	{"FlushTimeout", testFlushTimeout}, // stall.go
	// events.go: what the sender sends.
	{"InvalidEvent", testInvalidEvent},
	// servertimeout.go: the http.Server's own deadline.
	{"ServerWriteTimeout", testServerWriteTimeout},
	// compress.go: compression in front and by the core.
	{"GzipInFront", testGzipInFront},
	{"Compress", testCompress},
	{"CompressBehindGzip", testCompressBehindGzip},
	// http2.go: HTTP/2 over TLS and h2c.
	{"HTTP2", testHTTP2},
	// shutdown.go: http.Server.Shutdown.
	{"Shutdown", testShutdown},
	// handler.go: a handler that fails after Open.
	{"HandlerError", testHandlerError},
	{"HandlerPanic", testHandlerPanic},
	// counters.go: Config.Counters.
	{"Counters", testCounters},
}
