// Package doortest is the behaviour suite every front door of the core
// passes: written once, run by each door's tests (echosse for Echo v4,
// echosse5 for Echo v5, and package sse's own net/http door) through a
// small adapter, a [Door].
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
	// the door with cfg, for every request on every path, and hands it to
	// handle on the request's goroutine. An error handle returns is the
	// handler's error (an Echo handler returns it; the net/http door ends
	// the stream with it). A request for which no stream opens is
	// answered as the door answers it (400 for ErrNotRequested, 503 or a
	// retry stream over MaxClients, 500 ...).
	Serve func(t testing.TB, cfg Config, handle Handle) http.Handler
}

// Handle is what a test does with a stream once it is open; r is the
// stream's request, whose context is the stream's.
type Handle func(s *sse.Stream, r *http.Request) error

// Config configures a door for one test.
type Config struct {
	// Config is the door's Config fields, Skipper aside.
	sse.Config

	// OnError, when set, is the door's ErrorHandler (called with the
	// error only); nil: the door's default.
	OnError func(err error)

	// Gzip puts the compression middleware users of the door put in
	// front: Echo's Gzip for the Echo doors, gzhttp for net/http.
	Gzip bool
}

// Run runs the behaviour suite against d.
func Run(t *testing.T, d Door) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, d) })
	}
}

// cases are the suite's tests, one per behaviour.
var cases = []struct {
	name string
	run  func(t *testing.T, d Door)
}{}
