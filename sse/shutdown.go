package sse

// This file owns shutdown: the streams of each http.Server, all told at
// once when it shuts down, before anything registered with AfterFunc runs.

import (
	"net/http"
	"sync"

	"github.com/echosse/echo-sse/event"
)

// servers tracks the open streams of each http.Server a middleware serves,
// so that a server's Shutdown (e.Shutdown in Echo) ends them: an event
// stream is never idle, and without this, Shutdown would wait for its
// deadline and then cut every stream without a word.
type servers struct {
	mu  sync.Mutex
	all map[*http.Server]*serverStreams
}

// serverStreams is the set of open streams of one server.
type serverStreams struct {
	mu      sync.Mutex
	closing bool // the server is shutting down
	streams map[*Stream]struct{}
}

// track adds s to the set of its server's streams, registering a shutdown
// hook the first time it sees the server. A stream opened while its server
// is shutting down ends at once. Requests served without an http.Server
// in their context (a test's handler called directly) share a set that
// no shutdown ends, which the sweeper walks as it does the others.
func (ss *servers) track(s *Stream, r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	ss.mu.Lock()
	set := ss.all[srv]
	if set == nil {
		if ss.all == nil {
			ss.all = make(map[*http.Server]*serverStreams)
		}
		set = &serverStreams{streams: make(map[*Stream]struct{})}
		ss.all[srv] = set
		if srv != nil {
			srv.RegisterOnShutdown(set.shutdown)
		}
	}
	ss.mu.Unlock()

	set.mu.Lock()
	closing := set.closing
	if !closing {
		set.streams[s] = struct{}{}
		s.server = set
	}
	set.mu.Unlock()
	if closing {
		s.cancel(EndShutdown, ErrShutdown)
	}
}

// untrack removes s from its server's set.
func (s *Stream) untrack() {
	if set := s.server; set != nil {
		set.mu.Lock()
		delete(set.streams, s)
		set.mu.Unlock()
	}
}

// shutdown ends every stream of the server, each from its own pump, which
// writes the shutdown frame and ends the response. Every stream's context
// is cancelled before any function registered with AfterFunc starts: those
// run application code (a broker unsubscribing, a page count published to
// the other streams), and a stream not yet told of the shutdown could
// otherwise end for another reason meanwhile, without the shutdown frame.
func (set *serverStreams) shutdown() {
	set.mu.Lock()
	set.closing = true
	var afters []*afterFunc
	for s := range set.streams {
		if a := s.stop(EndShutdown, ErrShutdown); a != nil {
			afters = append(afters, a)
		}
	}
	set.mu.Unlock()
	for _, a := range afters {
		startAfters(a)
	}
}

// told returns once a shutdown of set under way, if any, has cancelled
// every stream's context: the shutdown holds set.mu until then. set may be
// nil (a stream served without an http.Server).
func (set *serverStreams) told() {
	if set != nil {
		set.mu.Lock()
		set.mu.Unlock() // an empty critical section: a barrier
	}
}

// shutdownFrame returns what a stream writes when its server shuts down:
// the close event, or a retry hint when Config.ShutdownRetry is set.
func (srv *Server) shutdownFrame() []byte {
	d := srv.cfg.ShutdownRetry
	if d <= 0 {
		return srv.closeFrame
	}
	b, _ := event.Event{Comment: "server shutting down", Retry: jittered(d)}.AppendTo(nil)
	return b
}
