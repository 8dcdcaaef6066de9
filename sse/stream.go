package sse

// This file owns a stream's life: the Stream a handler holds, its context
// and the functions that run when it is cancelled, the senders' side
// (Send, Abort), and how it ends (Wait, finish).

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echosse/echo-sse/event"
)

// A Stream is one client's open event stream. Values sent on C are written
// to the client in order, each flushed at once; a stream ends when the
// sender closes C (the client then receives the close event), when the
// client goes away, when a write times out, when its server shuts down, or
// when the handler fails.
//
// A Stream outlives its handler: business goroutines may keep it, and all
// its methods are safe for concurrent use.
type Stream struct {
	// C takes the events to send. The sender owns it: it is the only one
	// that closes it, once, to end the stream; the stream never closes it.
	// A send blocks while the buffer (Config.BufferSize) is full, so a
	// sender that may outlive the stream selects on Context().Done() too,
	// or uses [Stream.Send].
	C chan<- event.Event

	ch          <-chan event.Event
	ctx         context.Context         // the stream's: see Context
	cancelCtx   context.CancelCauseFunc // only cancel calls it
	reqCtx      context.Context
	lastEventID string
	finished    atomic.Bool // the stream has ended: see Done

	mu       sync.Mutex
	canceled bool          // the context is cancelled
	reason   EndReason     // why, once canceled
	returned bool          // Wait was called: the handler is returning; no pump goroutine will start
	done     chan struct{} // Done's channel, made when first asked for
	afters   *afterFunc    // see AfterFunc, the last registered first; nil once the context is cancelled
	pumper   chan struct{} // closed when the pump goroutine, if one ran, has stopped
	starter  *time.Timer   // starts the pump goroutine if the handler is still running

	// wake tells the pump to look at the flags below and at the context:
	// one channel for every reason but events and the client leaving, so
	// that an idle pump waits on three channels. A parked stream (park.go)
	// has no pump: poke tells its group instead.
	wake     chan struct{} // capacity 1
	state    atomic.Uint32 // parkedBit, wokenBit: see park.go
	tick     atomic.Bool   // time for a heartbeat (the sweeper or the timer), or to give the compressor back
	handOff  atomic.Bool   // the handler has returned: the pump goroutine hands over
	detached atomic.Bool   // a taken-over stream whose handler has returned: it may park
	listed   atomic.Bool   // in the sweeper's candidates to park
	parkReq  atomic.Bool   // the sweeper asks the pump to park
	wrote    atomic.Int64  // when the last write began, since epoch
	group    *parkGroup    // the group the stream parked with last

	refill atomic.Pointer[func()] // see SetRefill; nil unless set

	// The pump's state, used by one goroutine at a time: the pump
	// goroutine while the handler runs, the request goroutine after.
	// (The flags are last, together: a Stream is the size an idle
	// stream pays for.)
	srv     *Server
	req     *http.Request // the request, with the stream's context
	tag     any           // the door's, for its error handler
	out     io.Writer     // what the stream writes through: the response, or the connection taken over
	rc      *http.ResponseController
	timer   *time.Timer    // a compressed stream's heartbeat and compressor release (sets tick); nil if not compressed
	gz      *gzipStream    // nil unless the stream compresses
	due     time.Time      // the write deadline set last; zero when none
	stall   *stallGuard    // over HTTP/2, ends a connection that takes no bytes (h2.go)
	server  *serverStreams // the set this stream is in, if any
	opened  time.Duration  // when Open opened it, since epoch
	counts  streamCounts   // what it wrote, for Stats
	conn    net.Conn       // the connection, taken over (Config.Takeover); nil if not
	watched chan struct{}  // closed when the taken-over connection's reader has stopped; nil when the poller watches it
	pollID  uint64         // the poller's key for the taken-over connection
	lean    *leanRequest   // for a taken-over stream whose handler returned: what is left of req, which is nil
	release bool           // the timer is set to release the compressor
	h2      bool           // the request came over HTTP/2
	ended   bool           // the pump goroutine ended the stream
	gone    atomic.Bool    // the client of the taken-over connection left
}

// Context returns the stream's context, which senders select on. It is
// cancelled when the stream ends, or as soon as the client is gone. It is
// also c.Request().Context() from [Open] on, and carries the request's
// values. [Stream.Err], and context.Cause, tell why the stream ended.
func (s *Stream) Context() context.Context { return s.ctx }

// AfterFunc arranges to call f in its own goroutine once the stream's
// context is cancelled, as context.AfterFunc(s.Context(), f) does, and
// returns a function that stops it. It costs less than context.AfterFunc
// (no context of its own), so code that keeps many streams, such as a
// broker, learns of their end with it.
func (s *Stream) AfterFunc(f func()) (stop func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled {
		go func() {
			// Not before a server shutdown under way has told every
			// stream of it (see serverStreams.shutdown).
			s.server.told()
			f()
		}()
		return func() bool { return false }
	}
	a := &afterFunc{f: f, s: s, next: s.afters}
	s.afters = a
	return a.stop
}

// afterFunc is a function registered with [Stream.AfterFunc] on s, in a
// list of them; f is nil once stopped.
type afterFunc struct {
	f    func()
	s    *Stream
	next *afterFunc
}

// stop stops a, as the function [Stream.AfterFunc] returns.
func (a *afterFunc) stop() bool {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.s.canceled || a.f == nil {
		return false
	}
	a.f = nil
	return true
}

// cancel cancels the stream's context with cause, for reason, if it is
// not cancelled already, and starts the functions registered with
// AfterFunc.
func (s *Stream) cancel(reason EndReason, cause error) { startAfters(s.stop(reason, cause)) }

// stop cancels the stream's context with cause, for reason, if it is not
// cancelled already, and returns the functions registered with AfterFunc,
// for the caller to start with startAfters. The first cause is the one
// the context keeps, and its reason the one the stream's end is counted
// under: both are set under s.mu.
func (s *Stream) stop(reason EndReason, cause error) *afterFunc {
	defer s.poke()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled {
		return nil
	}
	s.cancelCtx(cause)
	s.canceled = true
	s.reason = reason
	afters := s.afters
	s.afters = nil
	return afters
}

// startAfters starts each function of the list afters that was not
// stopped.
func startAfters(afters *afterFunc) {
	for a := afters; a != nil; a = a.next {
		if a.f != nil {
			go a.f()
		}
	}
}

// LastEventID returns the ID of the last event the client saw, from the
// Last-Event-ID header a browser sends when it reconnects, or else from the
// [LastEventIDQuery] query parameter. It is "" on a first connection.
//
// A value that no event can carry as its ID ([event.CheckID] fails: longer
// than [MaxLastEventID], not UTF-8, with control characters or spaces at
// its ends, as a client of another server or a hand-made URL may send) is
// returned as it came, cut to MaxLastEventID+1 bytes: it names no event, so
// a replay from it finds nothing, and the broker answers it with ErrGap,
// which tells the handler to send the client a full refresh.
func (s *Stream) LastEventID() string { return s.lastEventID }

// Send sends ev on the stream's channel, waiting while the buffer is full.
// It returns nil once ev is queued, or the reason the stream ended if it has
// ended. Send must not be called after C is closed.
func (s *Stream) Send(ev event.Event) error {
	if s.ctx.Err() != nil {
		return s.cause()
	}
	select {
	case s.C <- ev:
		return nil
	case <-s.ctx.Done():
		return s.cause()
	}
}

// Abort ends the stream at once with cause as its reason (if it has not
// ended already), without the close event: events still queued are dropped,
// and the client sees the response end. A browser's EventSource then
// reconnects after its retry delay and sends the Last-Event-ID it last saw,
// so a sender that can replay loses nothing. Use it to drop a client that
// cannot keep up; close C instead to end the stream for good.
func (s *Stream) Abort(cause error) {
	if cause == nil {
		cause = ErrAborted
	}
	s.cancel(EndAborted, cause)
}

// Done returns a channel that is closed when the stream has ended: the last
// bytes are written, the client's slot is free, and the context is
// cancelled.
func (s *Stream) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		// Made when first asked for: most streams never are.
		s.done = make(chan struct{})
		if s.finished.Load() {
			close(s.done)
		}
	}
	return s.done
}

// Err returns nil while the stream is open, and once its context is
// cancelled (from the functions registered with [Stream.AfterFunc] on, and
// after [Stream.Done] is closed) the reason it ended, which is also
// context.Cause(s.Context()): [ErrClosed], [ErrClientGone],
// [ErrWriteTimeout], [ErrShutdown], [ErrHandlerPanicked], [ErrPumpPanicked],
// the cause given to [Stream.Abort], or the error the handler returned.
func (s *Stream) Err() error {
	if s.ctx.Err() == nil {
		return nil
	}
	return s.cause()
}

// Wait pumps the stream on the calling goroutine until the stream ends,
// and returns why, as [Stream.Err] does. The handler that opened the
// stream calls it, on its own goroutine, before it returns: net/http ends
// the response when the handler returns, and the stream must have ended by
// then. (The Echo doors' middleware calls it for their handlers.) Until
// Wait is called, a goroutine of the stream's own pumps, from a
// millisecond after Open on; a handler that only hands the stream to its
// senders and calls Wait costs no goroutine but its own. A second call
// waits for the stream to end.
//
// A stream that took its connection over (Config.Takeover) is not
// net/http's any more: Wait returns nil at once, while the stream goes
// on, pumped by a goroutine of its own when it has something to write,
// and parked, with none, when it has not.
func (s *Stream) Wait() error {
	s.mu.Lock()
	if s.returned {
		s.mu.Unlock()
		<-s.Done()
		return s.Err()
	}
	s.returned = true
	if s.conn != nil {
		if h := s.srv.hooks.Detach; h != nil {
			s.tag = h(s.tag)
		}
		s.lean, s.req = lean(s.req), nil
	}
	starter := s.starter
	s.starter = nil
	pumper := s.pumper
	s.mu.Unlock()
	if starter != nil {
		starter.Stop()
	}
	if s.conn != nil {
		// A taken-over connection is not net/http's: the handler's
		// goroutine, with its deep stack, need not stay. The pump
		// goroutine, if one runs, goes on; else the stream parks.
		s.detached.Store(true)
		switch {
		case pumper != nil:
			s.list() // the pump goroutine goes on, and parks once idle
		case !s.park():
			// Events are queued, or it was poked: a pump goroutine
			// sees to them. Else the stream parked at once, and it
			// gets a pump goroutine when something comes.
			go s.pumpDetached(pending{})
		}
		return s.Err()
	}
	if pumper != nil {
		s.handOff.Store(true)
		s.poke()
		<-pumper
	}
	if !s.ended {
		s.poke() // whatever the pump goroutine left unseen
		err, _ := s.pump(false, pending{})
		s.finish(err)
	}
	return s.Err()
}

// end is what a door does once the handler has returned err after it
// opened the stream: end the stream with err, if any, wait for it to end,
// and return err unless it is an ordinary end.
func (s *Stream) end(err error) error {
	if err != nil {
		s.cancel(reasonOf(err, EndHandlerError), err)
	}
	s.Wait()
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrClientGone) || errors.Is(err, ErrShutdown) {
		return nil // an ordinary end, returned from Stream.Err
	}
	return err
}

// endReason returns why the stream ended, once its context is cancelled.
func (s *Stream) endReason() EndReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// cause returns why the stream's context is done.
func (s *Stream) cause() error { return context.Cause(s.ctx) }

// clientGone returns why the request's context is done: the client is
// gone, unless something else cancelled it with a cause of its own.
func (s *Stream) clientGone() error {
	if s.conn != nil {
		return ErrClientGone
	}
	if err := context.Cause(s.reqCtx); err != context.Canceled {
		return err
	}
	return ErrClientGone
}

// finish ends the stream: it frees the slot and cancels the context with
// reason, and closes done.
func (s *Stream) finish(reason error) {
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.gz != nil {
		s.endGzip(reason)
	}
	// Let net/http end the response without the last write deadline.
	s.disarmStall()
	s.setWriteDeadline(time.Time{})
	// The slot is free before a taken-over connection closes: the
	// client, which learns of the end from the close, may come back at
	// once.
	open := s.srv.clients.Add(-1)
	s.closeConn()
	s.untrack()
	s.srv.ended(open)
	s.cancel(reasonOf(reason, EndClientGone), reason)
	s.mu.Lock()
	s.srv.counters.fold(s, s.reason)
	s.finished.Store(true)
	if s.done != nil {
		close(s.done)
	}
	s.mu.Unlock()
}
