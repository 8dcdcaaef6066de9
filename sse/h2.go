package sse

// This file owns HTTP/2's write stalls: the guard that closes a
// connection whose client reads nothing, which a write deadline alone
// cannot end.

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Over HTTP/2 a write deadline does not end a write by itself. When it
// passes, net/http's server queues a RST_STREAM frame for the stream
// (http2stream.onWriteTimeout), and the handler's write returns only once
// that frame is on the wire (wroteFrame, then closeStream). Frames go out
// one at a time (writeFrameAsync), and without HTTP2Config.WriteByteTimeout,
// which is unset by default, the connection's own write has no deadline:
// when the client stops reading the connection, that write blocks for good,
// the reset is never sent, and every stream on the connection stays blocked
// in its write (writeDataFromHandler), whatever its deadline.
//
// The library cannot reach the connection, but the server ends one whose
// client lets frames pile up: past maxQueuedControlFrames (10000) queued
// control frames, RST_STREAM included, it closes the connection, which ends
// every write on it. So a stream whose write is still blocked one
// WriteTimeout after its deadline passed (the reset had that long to go out,
// ahead of all data) takes the connection for stalled and queues resets for
// itself, through ResponseController.SetWriteDeadline with a time in the
// past, until its write returns. The other streams on that connection could
// not have written either: they end as their client is gone.

// maxQueuedControlFrames is net/http's HTTP/2 server's bound on queued
// control frames (http2maxQueuedControlFrames), past which it closes the
// connection.
const maxQueuedControlFrames = 10000

// stallGuard watches a stream's writes over HTTP/2 and ends the connection
// when one outlives its deadline by a write timeout. The pump arms it when
// it sets a deadline and disarms it when the write returns; it acts only in
// between, so it never touches the response after the handler returns.
type stallGuard struct {
	rc    *http.ResponseController
	timer *time.Timer

	done atomic.Bool // the write has returned: stop queueing resets

	mu     sync.Mutex // held while acting, so that disarm waits for it
	armed  bool
	fireAt time.Time
}

// armStall arms the stream's stall guard to act at the current deadline
// plus a write timeout.
func (s *Stream) armStall() {
	g := s.stall
	at := s.due.Add(s.srv.cfg.WriteTimeout)
	if g == nil {
		g = &stallGuard{rc: s.rc}
		s.stall = g
	}
	g.mu.Lock()
	g.done.Store(false)
	g.armed, g.fireAt = true, at
	if g.timer == nil {
		g.timer = time.AfterFunc(time.Until(at), g.fire)
	} else {
		g.timer.Reset(time.Until(at))
	}
	g.mu.Unlock()
}

// disarmStall tells the stall guard the write has returned, and waits for
// it if it is acting.
func (s *Stream) disarmStall() {
	g := s.stall
	if g == nil {
		return
	}
	g.done.Store(true)
	g.mu.Lock()
	if g.armed {
		g.armed = false
		g.timer.Stop()
	}
	g.mu.Unlock()
}

// fire runs when the guard's timer fires: if the write it was armed for is
// still blocked, the connection takes no bytes; have the server close it.
func (g *stallGuard) fire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.armed || time.Now().Before(g.fireAt) {
		return // disarmed, or re-armed for a later write
	}
	g.armed = false
	past := time.Unix(1, 0)
	for range maxQueuedControlFrames + 1 {
		if g.done.Load() || g.rc.SetWriteDeadline(past) != nil {
			return
		}
	}
}

// overdue reports whether the write under way has passed its deadline.
func (s *Stream) overdue() bool {
	return !s.due.IsZero() && !time.Now().Before(s.due)
}
