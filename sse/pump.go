package sse

// This file owns the pump: the one goroutine at a time that reads the
// stream's channel and writes to the response, first a goroutine of its
// own while the handler runs, then the handler's goroutine in Wait; what
// wakes it (events, the client leaving, heartbeats, cancellation); and what
// it does when code it calls panics.

import (
	"fmt"
	"log"
	"runtime/debug"
	"time"

	"github.com/echosse/echo-sse/event"
)

// pumpDelay is how long a handler may run after Open before its stream
// gets a pump goroutine: until then, events wait in the channel's buffer.
// A variable only for tests, which set it before any stream opens.
var pumpDelay = time.Millisecond

// pumpWhileHandlerRuns pumps in its own goroutine until the handler
// returns, unless it has returned already.
func (s *Stream) pumpWhileHandlerRuns() {
	s.mu.Lock()
	if s.returned {
		s.mu.Unlock()
		return
	}
	s.pumper = make(chan struct{})
	s.mu.Unlock()
	defer close(s.pumper)
	if err, handedOff := s.pump(true, pending{}); !handedOff && err != errParked {
		s.ended = true
		s.finish(err)
	}
}

// poke wakes the pump, unless a wake-up is pending already; a parked
// stream's group starts a pump (park.go).
func (s *Stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if old := s.state.Or(wokenBit); old == parkedBit {
		s.group.release(s)
	}
}

// onTimer runs when a compressed stream's timer fires: time for a
// heartbeat, or to give the compressor back.
func (s *Stream) onTimer() {
	s.tick.Store(true)
	s.poke()
}

// pending is an event a parked stream's group received for the pump.
type pending struct {
	ev      event.Event
	ok, has bool
}

// pump writes what arrives on the channel (first the event first holds,
// if any) until the stream ends, or, in the pump goroutine (inGoroutine),
// until the handler has returned; it returns why the stream ended, or
// handedOff, or errParked: the stream parked, and its goroutine must
// return at once.
func (s *Stream) pump(inGoroutine bool, first pending) (err error, handedOff bool) {
	defer func() {
		if r := recover(); r != nil {
			err, handedOff = s.recovered(r), false
		}
	}()
	if first.has {
		if err := s.batch(first.ev, first.ok); err != nil {
			return err, false
		}
	}
	// The request's context is done when the client is gone. A stream
	// that took its connection over watches the connection instead (and
	// saves the context's Done channel).
	var reqDone <-chan struct{}
	if s.conn == nil {
		reqDone = s.reqCtx.Done()
	}
	for {
		select {
		case ev, ok := <-s.ch:
			if err := s.batch(ev, ok); err != nil {
				return err, false
			}
			if s.detached.Load() {
				s.list()
			}
		case <-reqDone:
			return s.clientGone(), false
		case <-s.wake:
			s.state.And(^uint32(wokenBit))
			if s.conn != nil && s.gone.Load() {
				return s.clientGone(), false
			}
			if s.ctx.Err() != nil {
				err := s.cause()
				if err == ErrShutdown {
					// The server is shutting down, the client is not
					// gone: tell it so before the response ends.
					if werr := s.writeControl(s.srv.shutdownFrame()); werr != nil {
						err = werr
					}
				}
				return err, false
			}
			if inGoroutine && s.handOff.Load() {
				return nil, true
			}
			idle := s.parkReq.Swap(false)
			if s.tick.Swap(false) {
				switch {
				case s.release:
					s.idle()
					idle = true // nothing written for CompressIdle
				case s.beatDue(time.Since(epoch)):
					// Due (the sweeper may have looked just before an
					// event was written).
					if err := s.writeControl(s.srv.pingFrame); err != nil {
						return err, false
					}
					s.srv.counters.pings.Add(1)
					idle = true // nothing but a heartbeat for PingInterval
				}
			}
			if idle && s.detached.Load() {
				if s.park() {
					return errParked, false
				}
				s.list() // not now: the sweeper asks again
			}
		}
	}
}

// recovered turns a panic in code the pump called into the reason the
// stream ends, and reports it with its stack.
func (s *Stream) recovered(r any) error {
	err := fmt.Errorf("%w: %v", ErrPumpPanicked, r)
	s.report(fmt.Errorf("%w\n%s", err, debug.Stack()), EndPumpPanic)
	return err
}

// report tells Config.ErrorHandler about err, as errorHandler does, where
// a panic of the ErrorHandler's own cannot be reported to it: that goes to
// the standard logger.
func (s *Stream) report(err error, reason EndReason) {
	defer func() {
		if r := recover(); r != nil {
			log.Printf("echosse: Config.ErrorHandler panicked (%v) while told: %v", r, err)
		}
	}()
	s.errorHandler(err, reason)
}

// goesOn is the reason errorHandler is given for an error that does not
// end the stream.
const goesOn = NumEndReasons

// errorHandler tells the door's error handler, or Config.ErrorHandler,
// about err, in a *StreamError: one that ends the stream for reason, or
// with reason goesOn one that does not.
func (s *Stream) errorHandler(err error, reason EndReason) {
	s.mu.Lock()
	tag, req, lean := s.tag, s.req, s.lean // Wait may change them (a taken-over stream)
	s.mu.Unlock()
	if req == nil {
		req = lean.request(s.ctx)
	}
	err = &StreamError{
		Err:        err,
		Ends:       reason != goesOn,
		Reason:     reason,
		RemoteAddr: req.RemoteAddr,
		Age:        time.Since(epoch) - s.opened,
	}
	if r := s.srv.hooks.Report; r != nil {
		r(tag, req, err)
		return
	}
	s.srv.cfg.ErrorHandler(req, err)
}
