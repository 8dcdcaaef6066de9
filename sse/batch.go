package sse

// This file owns batching: the pump writes every event already queued in
// one write and one flush, lets fast senders refill the channel before it
// writes (or asks a sender that holds events back for them: SetRefill),
// and writes large prepared events from their own bytes.

import (
	"fmt"
	"runtime"

	"github.com/echosse/echo-sse/event"
)

// maxBatch bounds how many bytes the pump gathers before it writes.
const maxBatch = 32 << 10

// batch encodes ev and whatever else is already queued, writes it all and
// flushes once. After the channel is closed, it writes the close event and
// returns ErrClosed.
func (s *Stream) batch(ev event.Event, ok bool) error {
	bp := getBuf()
	big, tried := false, false // bp is a large buffer; one was asked for
	defer func() {
		if bp != nil { // a panic in an event's MarshalJSON or the ErrorHandler
			putBuffer(bp, big)
		}
	}()
	closed := false
	spilled := 0 // bytes of this batch already handed to the response, unflushed
	n := 0       // events taken since the buffer was last found empty
	events := 0  // valid events in the batch
	// A burst takes a large buffer, if one is free; once per batch.
	tryBig := func() {
		if !tried {
			tried = true
			if b := takeBig(bp); b != nil {
				bp, big = b, true
			}
		}
	}
	for {
		if !ok {
			*bp = append(*bp, s.srv.closeFrame...)
			closed = true
			break
		}
		var err error
		if size, prepared := ev.PreparedLen(); prepared && size >= shareLarge {
			// A large event encoded already, as a broker's is for all
			// its subscribers: written from its own bytes rather than
			// copied into this stream's buffer, so that a stream waiting
			// on a slow client holds no copy of it.
			wrote, err := s.emitShared(*bp, ev)
			if err != nil {
				return err
			}
			*bp = (*bp)[:0]
			spilled += wrote
			events++
		} else if *bp, err = ev.AppendTo(*bp); err != nil {
			s.srv.counters.invalid.Add(1)
			s.errorHandler(fmt.Errorf("echosse: event skipped: %w", err), goesOn)
		} else {
			events++
		}
		n++
		if len(*bp) >= smallBatch/2 {
			tryBig()
		}
		if size := spilled + len(*bp); size >= maxBatch || !big && size >= smallBatch {
			break
		}
		select {
		case ev, ok = <-s.ch:
			continue
		default:
		}
		if f := s.refill.Load(); f != nil {
			// The sender holds back what did not fit in the buffer
			// (see SetRefill): it moves that in now, and this batch
			// writes it with the same flush, without yielding.
			(*f)()
			select {
			case ev, ok = <-s.ch:
				continue
			default:
			}
			break
		}
		// The batch took a whole channel's worth: the senders are
		// faster than the client; let them refill it before writing.
		if n >= cap(s.ch) {
			n = 0
			tryBig()
			if !big {
				// Many streams may be yielding at once: rather than
				// each holding a buffer meanwhile, hand what is gathered
				// to the response's own buffer, unflushed.
				if err := s.emit(*bp); err != nil {
					putBuf(bp)
					bp = nil
					return err
				}
				spilled += len(*bp)
				putBuf(bp)
				runtime.Gosched()
				bp = getBuf()
			} else {
				runtime.Gosched()
			}
			select {
			case ev, ok = <-s.ch:
				continue
			default:
			}
		}
		break
	}
	var err error
	wrote := spilled + len(*bp)
	if len(*bp) > 0 {
		err = s.emit(*bp)
	}
	putBuffer(bp, big)
	bp = nil
	if err == nil && wrote > 0 {
		if err = s.flush(wrote); err == nil {
			s.counts.events.Add(uint64(events))
		}
	}
	if err == nil && closed {
		err = ErrClosed
	}
	return err
}

// shareLarge is the size from which a prepared event is written from its
// own bytes, not copied into the batch.
const shareLarge = 2 * smallBatch

// emitShared writes b, then the prepared event ev from its own bytes, to
// the response without flushing it, and returns how many bytes it wrote.
func (s *Stream) emitShared(b []byte, ev event.Event) (int, error) {
	if len(b) > 0 {
		if err := s.emit(b); err != nil {
			return 0, err
		}
	}
	n, err := ev.WriteTo(emitter{s})
	return len(b) + int(n), err
}

// emitter is the pump's emit as an io.Writer.
type emitter struct{ s *Stream }

// Write implements io.Writer with [Stream.emit].
func (w emitter) Write(b []byte) (int, error) {
	if err := w.s.emit(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// SetRefill sets f, which the stream's pump calls on its own goroutine
// when it has emptied C in the middle of writing a batch, before it
// flushes: a sender that holds events back while the buffer is full, as
// the broker package does for a stream that falls behind, moves them into C
// then, so that they go out with the same flush. A stream that is behind
// then writes all it has waiting with one flush, however small its
// buffer, instead of one buffer's worth per flush.
//
// f must return promptly and never wait for room in C: it sends what fits
// without blocking. With a refill function set, the pump no longer yields
// to let senders refill the buffer before it writes (the sender says what
// it has). Setting it again replaces f; nil removes it.
func (s *Stream) SetRefill(f func()) {
	if f == nil {
		s.refill.Store(nil)
		return
	}
	s.refill.Store(&f)
}
