package sse

// This file owns the counters: what the streams of a Server did, counted
// on paths that run anyway (once per stream for its opening and its end,
// once per flush for what the flush sent, in the stream's own fields), and
// read by Stats, at once, when an exporter asks.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// EndReason is why a stream ended, as [Stats.Ended] counts it: a small,
// fixed set, whose String values are the labels exporters use.
type EndReason uint8

// The reasons a stream ends. Each String value is given after the name.
const (
	// EndClosed, "closed": the sender closed the channel and the close
	// event was sent ([ErrClosed]); a HEAD request's stream too.
	EndClosed EndReason = iota

	// EndClientGone, "client_gone": the client went away, or its
	// connection broke ([ErrClientGone]).
	EndClientGone

	// EndWriteTimeout, "write_timeout": a write waited longer than
	// Config.WriteTimeout: the client stopped reading ([ErrWriteTimeout]).
	EndWriteTimeout

	// EndShutdown, "shutdown": the http.Server shut down ([ErrShutdown]).
	EndShutdown

	// EndAborted, "aborted": [Stream.Abort] ended it, whatever the cause
	// given (the broker aborts slow clients so).
	EndAborted

	// EndHandlerError, "handler_error": the handler returned an error
	// after it opened the stream.
	EndHandlerError

	// EndHandlerPanic, "handler_panic": the handler panicked after it
	// opened the stream ([ErrHandlerPanicked]).
	EndHandlerPanic

	// EndPumpPanic, "pump_panic": code the pump called panicked, such as
	// an event's MarshalJSON ([ErrPumpPanicked]).
	EndPumpPanic

	// NumEndReasons is the number of reasons: they run from 0 to
	// NumEndReasons-1, so that for r := range sse.NumEndReasons visits
	// each.
	NumEndReasons
)

var endReasonNames = [NumEndReasons]string{
	"closed", "client_gone", "write_timeout", "shutdown",
	"aborted", "handler_error", "handler_panic", "pump_panic",
}

// String returns the reason's label: "closed", "client_gone",
// "write_timeout", "shutdown", "aborted", "handler_error",
// "handler_panic" or "pump_panic".
func (r EndReason) String() string {
	if r < NumEndReasons {
		return endReasonNames[r]
	}
	return "unknown"
}

// reasonOf returns the reason a stream ends for with err as its cause:
// the one its sentinel names, or otherwise.
func reasonOf(err error, otherwise EndReason) EndReason {
	switch {
	case errors.Is(err, ErrClosed):
		return EndClosed
	case errors.Is(err, ErrClientGone):
		return EndClientGone
	case errors.Is(err, ErrWriteTimeout):
		return EndWriteTimeout
	case errors.Is(err, ErrShutdown):
		return EndShutdown
	case errors.Is(err, ErrAborted):
		return EndAborted
	case errors.Is(err, ErrHandlerPanicked):
		return EndHandlerPanic
	case errors.Is(err, ErrPumpPanicked):
		return EndPumpPanic
	}
	return otherwise
}

// Stats are what the streams of a [Server] did, as [Server.Stats] and
// [Counters.Stats] read them. The fields but Open, Parked and Compressors are
// counters: they only grow, from the Server's creation on (or the
// Counters' first use), and never go back from one read to the next.
type Stats struct {
	// Open is the number of streams open now.
	Open int64

	// Parked is the number of open streams parked now: taken over
	// (Config.Takeover), idle, and with no goroutine of their own; a
	// goroutine for every 16 of them waits on their channels.
	Parked int64

	// Opened is the number of streams opened: every stream Open made,
	// including HEAD requests' and those whose first write failed.
	Opened uint64

	// Refused is the number of requests Open refused because
	// Config.MaxClients streams were open, by the Overflow mode that
	// answers them: Refused[OverflowRetry] and Refused[OverflowUnavailable].
	// A handler that returns ErrTooManyClients for a cap of its own is not
	// counted here.
	Refused [OverflowUnavailable + 1]uint64

	// Ended is the number of streams that ended, by reason: Ended[EndClosed]
	// and so on. Opened less their sum is Open.
	Ended [NumEndReasons]uint64

	// Events is the number of events written: encoded, written and
	// flushed to the client. The close event, heartbeats and retry hints
	// are not events; they are in Bytes.
	Events uint64

	// InvalidEvents is the number of events skipped because they failed
	// validation (Config.ErrorHandler was told of each).
	InvalidEvents uint64

	// Bytes is the number of bytes of event stream the streams flushed:
	// events, heartbeats and the library's own frames, before the
	// stream's own compression (Config.Compress). A compression
	// middleware in front compresses them afterwards, out of sight.
	Bytes uint64

	// WrittenBytes is the number of bytes the streams flushed to their
	// responses: Bytes for a stream that does not compress itself, the
	// gzip stream (header and trailer included) for one that does.
	WrittenBytes uint64

	// Heartbeats is the number of heartbeat comments written to idle
	// streams (Config.PingInterval).
	Heartbeats uint64

	// Flushes counts the flushes by how long each took, from the start of
	// the last write before it (a write to a client that does not read
	// waits there or in the flush) to its end, successful or not:
	// Flushes[i] counts those that took at most FlushBounds()[i] and
	// longer than the bound before, Flushes[5] those that took longer than
	// every bound. A slow client's flushes take milliseconds to seconds;
	// any other, microseconds.
	Flushes [6]uint64

	// FlushTime is the time all the flushes counted in Flushes took.
	FlushTime time.Duration

	// Compressors is the number of compressors the compressed streams'
	// pools have made (Config.Compress); a pool keeps those it made, up to
	// Config.MaxCompressors.
	Compressors int64

	// CompressorWaits is the number of times a compressed stream waited
	// for a compressor because every one was compressing at that moment.
	CompressorWaits uint64

	// CompressorSteals is the number of times a compressed stream took
	// the compressor another stream had used last, because none was free:
	// each costs a priming with the stream's last 4 KB. Rising fast, it
	// says that MaxCompressors is lower than the streams busy at once.
	CompressorSteals uint64
}

// flushBounds are the upper bounds of the buckets of Stats.Flushes.
var flushBounds = [...]time.Duration{
	time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second, 10 * time.Second,
}

// FlushBounds returns the upper bounds of the buckets of [Stats.Flushes],
// shortest first: 1 ms, 10 ms, 100 ms, 1 s and 10 s.
func FlushBounds() []time.Duration { return append([]time.Duration(nil), flushBounds[:]...) }

// Counters count what the streams of the Servers given them in
// Config.Counters do: several Servers (several middlewares, or doors) may
// share one, and their counts add up. Every Server counts, whether it was
// given Counters or not; Counters let the caller reach the counts of a
// Server it does not hold, such as an Echo door's; package metrics/prom
// exports them to Prometheus. Use a new(sse.Counters);
// a Counters must not be copied once used, and keeps the Servers that
// count in it, to read the counts of their open streams. All its methods
// are safe for concurrent use.
type Counters struct {
	open     atomic.Int64
	parked   atomic.Int64
	opened   atomic.Uint64
	refused  [OverflowUnavailable + 1]atomic.Uint64
	ended    [NumEndReasons]atomic.Uint64
	invalid  atomic.Uint64
	pings    atomic.Uint64
	made     atomic.Int64
	waits    atomic.Uint64
	steals   atomic.Uint64
	slow     [len(flushBounds)]atomic.Uint64 // Stats.Flushes[1:]
	slowTime atomic.Int64                    // nanoseconds

	// What the streams counted themselves, added when each ended.
	events, bytes, written, fast atomic.Uint64
	fastTime                     atomic.Int64

	mu      sync.Mutex
	servers []*Server // whose open streams Stats reads
	last    Stats     // what Stats returned last, so that no counter goes back
}

// Wait returns nil once no stream counted in c is open, or the cause of
// ctx's end if that comes first. http.Server.Shutdown (e.Shutdown) waits
// for every stream to end, except those that took their connection over
// (Config.Takeover): their ends follow the shutdown on goroutines of their
// own. A program with such streams calls Wait after Shutdown, before it
// closes what feeds the streams (a broker, whose Close ends its streams
// without the close event) and before it exits, so that every stream has
// written the close event, or the retry hint of Config.ShutdownRetry.
func (c *Counters) Wait(ctx context.Context) error {
	if c.open.Load() == 0 {
		return nil
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for c.open.Load() != 0 {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	return nil
}

// streamCounts are the counts a stream keeps itself while it is open:
// written by its pump alone, once per flush, with atomic adds to a cache
// line no other stream writes; read by Stats, and added to the Counters'
// when the stream ends.
type streamCounts struct {
	events   atomic.Uint64
	bytes    atomic.Uint64
	fast     atomic.Uint64 // flushes within flushBounds[0]
	fastTime atomic.Int64  // their nanoseconds
}

// Stats returns the counts of the streams of every Server that counts in
// c. Those of open streams are read as they stand (an open stream's events
// count from its first flush on, not only once it ends), except for
// streams served without an http.Server (an httptest.ResponseRecorder's),
// which add theirs when they end. It costs a lock and a few atomic loads
// per open stream: cheap enough for every scrape, not for every event.
func (c *Counters) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{
		Open:             c.open.Load(),
		Parked:           c.parked.Load(),
		Opened:           c.opened.Load(),
		InvalidEvents:    c.invalid.Load(),
		Heartbeats:       c.pings.Load(),
		Compressors:      c.made.Load(),
		CompressorWaits:  c.waits.Load(),
		CompressorSteals: c.steals.Load(),
	}
	for i := range c.refused {
		st.Refused[i] = c.refused[i].Load()
	}
	for i := range c.ended {
		st.Ended[i] = c.ended[i].Load()
	}
	// The ended streams' counts first, then the open ones': a stream
	// that ends in between is in neither (for this read only), never in
	// both, since it leaves the set of open streams before it adds its
	// counts.
	st.Events = c.events.Load()
	st.Bytes = c.bytes.Load()
	st.WrittenBytes = c.written.Load()
	st.Flushes[0] = c.fast.Load()
	st.FlushTime = time.Duration(c.fastTime.Load())
	for _, srv := range c.servers {
		srv.servers.each(func(s *Stream) { s.addCounts(&st) })
	}
	for i := range c.slow {
		st.Flushes[i+1] = c.slow[i].Load()
	}
	st.FlushTime += time.Duration(c.slowTime.Load())

	// A stream missed for ending in between is counted next time; till
	// then, the counts it had stand.
	l := &c.last
	st.Events = max(st.Events, l.Events)
	st.Bytes = max(st.Bytes, l.Bytes)
	st.WrittenBytes = max(st.WrittenBytes, l.WrittenBytes)
	st.Flushes[0] = max(st.Flushes[0], l.Flushes[0])
	st.FlushTime = max(st.FlushTime, l.FlushTime)
	c.last = st
	return st
}

// count adds srv to the Servers whose open streams Stats reads.
func (c *Counters) count(srv *Server) {
	c.mu.Lock()
	c.servers = append(c.servers, srv)
	c.mu.Unlock()
}

// Stats returns the counts of srv's streams: those of its Config.Counters,
// with any other Server's that shares them, or else its own. See
// [Counters.Stats].
func (srv *Server) Stats() Stats { return srv.counters.Stats() }

// addCounts adds what s has counted so far to st.
func (s *Stream) addCounts(st *Stats) {
	b := s.counts.bytes.Load()
	st.Events += s.counts.events.Load()
	st.Bytes += b
	if s.gz != nil {
		st.WrittenBytes += s.gz.written.Load()
	} else {
		st.WrittenBytes += b
	}
	st.Flushes[0] += s.counts.fast.Load()
	st.FlushTime += time.Duration(s.counts.fastTime.Load())
}

// fold adds what s counted to c, once s has left the set of open streams,
// and counts its end.
func (c *Counters) fold(s *Stream, reason EndReason) {
	b := s.counts.bytes.Load()
	c.events.Add(s.counts.events.Load())
	c.bytes.Add(b)
	if s.gz != nil {
		b = s.gz.written.Load()
	}
	c.written.Add(b)
	c.fast.Add(s.counts.fast.Load())
	c.fastTime.Add(s.counts.fastTime.Load())
	c.ended[reason].Add(1)
	c.open.Add(-1)
}

// epoch is where the monotonic times a stream keeps count from.
var epoch = time.Now()

// flushed counts a flush that took d: in the stream's own counts when it
// was quick, as nearly all are, or else in the Counters' buckets.
func (s *Stream) flushed(d time.Duration) {
	if d <= flushBounds[0] {
		s.counts.fast.Add(1)
		s.counts.fastTime.Add(int64(d))
		return
	}
	c := s.srv.counters
	i := 1
	for i < len(flushBounds) && d > flushBounds[i] {
		i++
	}
	c.slow[i-1].Add(1)
	c.slowTime.Add(int64(d))
}

// each calls f for every open stream of every http.Server, with that
// server's set locked: f must be quick and must not lock a stream.
func (ss *servers) each(f func(s *Stream)) {
	ss.mu.Lock()
	sets := make([]*serverStreams, 0, len(ss.all))
	for _, set := range ss.all {
		sets = append(sets, set)
	}
	ss.mu.Unlock()
	for _, set := range sets {
		set.mu.Lock()
		n := 0
		for s := range set.streams {
			f(s)
			if n++; n%eachRun == 0 {
				// Let streams open and end meanwhile: a walk of a
				// million takes about 150 ms. The map may change
				// under the range; a stream that leaves is not seen
				// after, one that comes may or may not be.
				set.mu.Unlock()
				set.mu.Lock()
			}
		}
		set.mu.Unlock()
	}
}

// eachRun is how many streams each sees at a time with their set locked.
const eachRun = 256
