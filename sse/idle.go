package sse

// This file owns what a Server does for its idle streams: one goroutine,
// the sweeper, runs while the Server has a stream open. Every
// PingInterval/8 it pokes each stream idle for PingInterval less that
// period to write a heartbeat, so that none is silent for longer than
// PingInterval, with no timer per stream (a compressed stream keeps one,
// which also tells it when to give its compressor back). And while
// taken-over streams have written lately, every parkAfter/2 it asks those
// idle for parkAfter to park (park.go).

import (
	"sync"
	"sync/atomic"
	"time"
)

// parkAfter is how long a taken-over stream whose handler has returned
// stays idle before its pump's goroutine gives way to a parking group's
// (park.go), as a time.Duration. Atomic only for tests, which change it.
var parkAfter atomic.Int64

func init() { parkAfter.Store(int64(200 * time.Millisecond)) }

// sweeper is a Server's sweeper goroutine and the streams it may park.
type sweeper struct {
	mu      sync.Mutex
	running bool
	wake    chan struct{} // capacity 1: the last stream ended, or the first candidate came
	idle    []*Stream     // taken-over streams that may park: see list
}

// sweep starts the sweeper, unless it runs already or need not run (the
// Server's streams neither send heartbeats nor take connections over); a
// stream has opened.
func (srv *Server) sweep() {
	if srv.cfg.PingInterval <= 0 && !srv.cfg.Takeover {
		return
	}
	sw := &srv.sweeper
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.running {
		sw.running = true
		go srv.runSweeper()
	}
}

// runSweeper walks the streams for heartbeats every PingInterval/8, and
// looks at the candidates to park every parkAfter/2 while there are any,
// until the Server has no stream open. A Server whose streams are all
// parked, or on net/http's path, wakes only for the walks.
func (srv *Server) runSweeper() {
	pi := srv.cfg.PingInterval
	// A heartbeat is due after 7/8 of PingInterval idle (beatDue), and
	// the walks come every 1/8 of it: no stream stays idle for longer
	// than PingInterval.
	walk := max(pi/8, time.Millisecond)
	next := time.Since(epoch) + walk // the next walk
	t := time.NewTimer(walk)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-srv.sweeper.wake:
		}
		if srv.sweeperDone() {
			return
		}
		now := time.Since(epoch)
		wait := time.Hour // until woken, with neither walks nor candidates
		if pi > 0 {
			if now >= next {
				srv.beat(now)
				for next <= now { // walks keep their phase
					next += walk
				}
			}
			wait = next - now
		}
		if srv.parkIdle(now) {
			wait = min(wait, max(time.Duration(parkAfter.Load())/2, time.Millisecond))
		}
		t.Reset(wait)
	}
}

// beat pokes every stream without a timer of its own that is due for a
// heartbeat at now, to write it.
func (srv *Server) beat(now time.Duration) {
	srv.servers.each(func(s *Stream) {
		if s.gz == nil && s.beatDue(now) {
			s.tick.Store(true)
			s.poke()
		}
	})
}

// beatDue reports whether s, idle since it last wrote, may get a
// heartbeat at now: it has been idle for 7/8 of PingInterval.
func (s *Stream) beatDue(now time.Duration) bool {
	pi := s.srv.cfg.PingInterval
	return pi > 0 && now-time.Duration(s.wrote.Load()) >= pi-pi/8
}

// sweeperDone reports whether the sweeper stops: no stream is open. A
// stream that opens after counts itself in before it calls sweep, which
// then starts a new one.
func (srv *Server) sweeperDone() bool {
	sw := &srv.sweeper
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if srv.clients.Load() > 0 {
		return false
	}
	sw.running = false
	clear(sw.idle)
	sw.idle = sw.idle[:0]
	return true
}

// ended tells the sweeper that a stream ended, leaving open streams in
// all: with none, it stops.
func (srv *Server) ended(open int64) {
	if open == 0 {
		srv.sweeper.poke()
	}
}

// poke wakes the sweeper, unless a wake-up is pending already.
func (sw *sweeper) poke() {
	select {
	case sw.wake <- struct{}{}:
	default:
	}
}

// list makes the taken-over stream s, whose handler has returned and
// which has just written, a candidate to park once idle, unless it is
// one already.
func (s *Stream) list() {
	if s.listed.Load() || !s.listed.CompareAndSwap(false, true) {
		return
	}
	sw := &s.srv.sweeper
	sw.mu.Lock()
	first := len(sw.idle) == 0
	sw.idle = append(sw.idle, s)
	sw.mu.Unlock()
	if first {
		sw.poke() // to look again in parkAfter/2
	}
}

// parkIdle asks every candidate idle for parkAfter at now to park, keeps
// the others for the next look, and reports whether any are left.
func (srv *Server) parkIdle(now time.Duration) (left bool) {
	sw := &srv.sweeper
	sw.mu.Lock()
	idle := sw.idle
	sw.idle = nil
	sw.mu.Unlock()
	keep := idle[:0]
	after := time.Duration(parkAfter.Load())
	for _, s := range idle {
		switch {
		case s.finished.Load() || s.state.Load()&parkedBit != 0:
			s.listed.Store(false)
		case now-time.Duration(s.wrote.Load()) >= after:
			s.listed.Store(false)
			s.parkReq.Store(true)
			s.poke()
		default:
			keep = append(keep, s)
		}
	}
	clear(idle[len(keep):])
	sw.mu.Lock()
	// Candidates listed during the walk join the ones kept.
	sw.idle = append(keep, sw.idle...)
	left = len(sw.idle) > 0
	sw.mu.Unlock()
	return left
}
