package sse

// This file owns writing to the client: every write and flush, each under
// the write timeout's deadline, on a compressed stream through its gzip
// stream; control frames; and what a failed write means for the stream.

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// emit writes b, events the pump encoded, to the response without
// flushing it: compressed first on a compressed stream. The plaintext is
// not needed once emit returns.
func (s *Stream) emit(b []byte) error {
	s.deadline()
	var err error
	if s.gz != nil {
		err = s.gz.write(b)
	} else {
		_, err = s.out.Write(b)
	}
	if err != nil {
		s.timeFlush()
		return s.writeError(err)
	}
	return nil
}

// writeControl writes one of the library's own short frames (the opening
// retry field, heartbeats) and flushes it: on a compressed stream as a
// stored block, so that an idle stream needs no compressor for it. With b
// empty it only flushes (after the gzip header, on a compressed stream).
func (s *Stream) writeControl(b []byte) error {
	s.deadline()
	var err error
	switch {
	case len(b) == 0 && s.gz != nil:
		// The gzip header goes out with the response's headers, as
		// Echo's Gzip sends it, for clients that read it at once.
		err = s.gz.start()
	case len(b) == 0: // nothing but what is buffered (the headers)
	case s.gz != nil:
		err = s.gz.writeStored(b)
	default:
		_, err = s.out.Write(b)
	}
	if err != nil {
		s.timeFlush()
		return s.writeError(err)
	}
	return s.flush(len(b))
}

// deadline bounds the next write and flush by the write timeout. Moving a
// deadline moves a runtime timer, so one set less than an eighth of the
// timeout ago is kept: it still gives the write at least 7/8 of it.
func (s *Stream) deadline() {
	wt := s.srv.cfg.WriteTimeout
	if wt <= 0 {
		s.wrote.Store(int64(time.Since(epoch)))
		return
	}
	now := time.Now()
	s.wrote.Store(int64(now.Sub(epoch)))
	if s.due.Sub(now) >= wt-wt/8 {
		return
	}
	s.due = now.Add(wt)
	s.setWriteDeadline(s.due)
	if s.h2 {
		s.armStall()
	}
}

// flush flushes what was written, n bytes of event stream, within the
// deadline its write set, counts them, and restarts a compressed stream's
// timer (the sweeper reads when the others last wrote).
func (s *Stream) flush(n int) error {
	err := s.flushOut()
	s.timeFlush()
	if err == nil && s.left() {
		// A compression middleware's Flush (Echo's Gzip, gzhttp) drops
		// the error of the write it makes; net/http has cancelled the
		// request's context on it, at once.
		err = errFlushDropped
	}
	if err != nil {
		return s.writeError(err)
	}
	s.counts.bytes.Add(uint64(n))
	if s.gz != nil {
		s.gz.written.Add(s.gz.pending)
		s.gz.pending = 0
	}
	if s.h2 && s.srv.cfg.WriteTimeout > 0 {
		// Over HTTP/2 a write deadline is a timer that resets the
		// stream when it fires, even with no write under way: clear it
		// so that an idle stream lives. Over HTTP/1 it only bounds
		// writes, and the next write sets a new one.
		s.disarmStall()
		s.setWriteDeadline(time.Time{})
		s.due = time.Time{}
	}
	switch {
	case s.gz == nil:
	case s.gz.c != nil:
		s.release = true
		s.timer.Reset(s.srv.cfg.CompressIdle)
		s.tick.Store(false)
	case s.srv.cfg.PingInterval > 0:
		s.timer.Reset(s.srv.cfg.PingInterval)
		s.tick.Store(false)
	}
	return nil
}

// idle gives the stream's compressor back after it has been idle for
// Config.CompressIdle, and waits for the rest of the heartbeat interval.
func (s *Stream) idle() {
	s.release = false
	s.gz.idle()
	if pi := s.srv.cfg.PingInterval; pi > 0 {
		s.timer.Reset(max(pi-s.srv.cfg.CompressIdle, 0))
	}
}

// writeError turns a failed write into the reason the stream ends, and
// reports the ones that are not an ordinary disconnect.
func (s *Stream) writeError(err error) error {
	s.disarmStall()
	// Checked first: net/http cancels the request's context when a write
	// to the connection fails, whatever the reason. Over HTTP/2 a write
	// past its deadline may instead fail as the connection closes (h2.go).
	if errors.Is(err, os.ErrDeadlineExceeded) || (s.h2 || err == errFlushDropped) && s.overdue() {
		s.errorHandler(fmt.Errorf("%w (after %v): %w", ErrWriteTimeout, s.srv.cfg.WriteTimeout, err), EndWriteTimeout)
		return ErrWriteTimeout
	}
	if s.ctx.Err() != nil {
		return s.cause()
	}
	if s.left() {
		return s.clientGone()
	}
	return fmt.Errorf("%w: %w", ErrClientGone, err)
}

// errFlushDropped stands for the error of a flush that a writer in front
// reported as a success while net/http saw the write fail.
var errFlushDropped = errors.New("echosse: the connection failed in a flush whose error a middleware dropped")

// endGzip ends a compressed response with the gzip trailer, unless writing
// has failed, and gives the compressor back.
func (s *Stream) endGzip(reason error) {
	if errors.Is(reason, ErrClientGone) || errors.Is(reason, ErrWriteTimeout) || s.left() {
		s.gz.idle()
		return
	}
	s.deadline()
	if s.gz.close() == nil && s.flushOut() == nil {
		s.gz.written.Add(s.gz.pending)
	}
}

// timeFlush counts a flush, or a write that failed, as taking the time
// since the last write began.
func (s *Stream) timeFlush() { s.flushed(time.Since(epoch) - time.Duration(s.wrote.Load())) }
