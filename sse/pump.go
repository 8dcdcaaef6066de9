package sse

// This file owns the pump: the one goroutine at a time that reads the
// stream's channel and writes to the response, first a goroutine of its
// own while the handler runs, then the handler's goroutine in Wait; what
// wakes it (events, the client leaving, the timer, cancellation); and what
// it does when code it calls panics.

import (
	"fmt"
	"log"
	"runtime/debug"
	"time"
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
	s.parked = make(chan struct{})
	s.mu.Unlock()
	defer close(s.parked)
	if err, handedOff := s.pump(true); !handedOff {
		s.ended = true
		s.finish(err)
	}
}

// poke wakes the pump, unless a wake-up is pending already.
func (s *Stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// onTimer runs when the timer fires: time for a heartbeat, or to give the
// compressor back.
func (s *Stream) onTimer() {
	s.tick.Store(true)
	s.poke()
}

// pump writes what arrives on the channel until the stream ends, or, in the
// pump goroutine (inGoroutine), until the handler has returned; it returns why
// the stream ended, or handedOff.
func (s *Stream) pump(inGoroutine bool) (err error, handedOff bool) {
	defer func() {
		if r := recover(); r != nil {
			err, handedOff = s.recovered(r), false
		}
	}()
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
		case <-reqDone:
			return s.clientGone(), false
		case <-s.wake:
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
			if !s.tick.Swap(false) {
				continue
			}
			if s.release {
				s.idle()
				continue
			}
			if err := s.writeControl(s.srv.pingFrame); err != nil {
				return err, false
			}
			s.srv.counters.pings.Add(1)
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
