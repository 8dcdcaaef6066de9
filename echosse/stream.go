package echosse

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/event"
)

// A Stream is one client's open event stream. Values sent on C are written
// to the client in order, each flushed at once; a stream ends when the
// sender closes C (the client then receives the close event), when the
// client goes away, when a write times out, or when the handler returns an
// error.
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
	reqDone     <-chan struct{}         // the request's context is done: the client is gone
	reqCtx      context.Context
	lastEventID string
	finished    atomic.Bool // the stream has ended: see Done

	mu       sync.Mutex
	done     chan struct{} // Done's channel, made when first asked for
	afters   []*afterFunc  // see AfterFunc; nil once the context is cancelled
	canceled bool          // the context is cancelled
	returned bool          // the handler has returned; no pump goroutine will start
	parked   chan struct{} // closed when the pump goroutine, if one ran, has stopped
	starter  *time.Timer   // starts the pump goroutine if the handler is still running

	// wake tells the pump to look at the flags below and at the context:
	// one channel for every reason but events and the client leaving, so
	// that an idle pump waits on three channels.
	wake    chan struct{} // capacity 1
	tick    atomic.Bool   // the timer fired
	handOff atomic.Bool   // the handler has returned: the pump goroutine hands over

	// The pump's state, used by one goroutine at a time: the pump
	// goroutine while the handler runs, the request goroutine after.
	h       *hub
	c       echo.Context
	res     *echo.Response
	rc      *http.ResponseController
	timer   *time.Timer    // heartbeat and compressor release (sets tick); nil when neither is on
	release bool           // the timer is set to release the compressor
	gz      *gzipStream    // nil unless the stream compresses
	h2      bool           // the request came over HTTP/2
	due     time.Time      // the write deadline set last; zero when none
	stall   *stallGuard    // over HTTP/2, ends a connection that takes no bytes (h2.go)
	ended   bool           // the pump goroutine ended the stream
	server  *serverStreams // the set this stream is in, if any
}

// MaxLastEventID is the longest Last-Event-ID (header or query) that can
// name an event, in bytes: [event.MaxIDLength]. [Open] never refuses a
// request for its Last-Event-ID, since a browser answered with anything
// but 200 gives up for good; see [Stream.LastEventID].
const MaxLastEventID = event.MaxIDLength

// LastEventIDQuery is the query parameter [Stream.LastEventID] falls back to
// when a request has no Last-Event-ID header. A browser sends the header
// only when it reconnects, so a page that wants to resume on its first
// connection puts the ID in the URL: new EventSource("/events?lastEventID=42").
const LastEventIDQuery = "lastEventID"

// Open answers the request with an event stream and returns it. The client
// receives the response headers at once (and Config.Retry's retry field,
// when set), so a browser's EventSource fires "open" immediately; the body
// goes on with the first event or heartbeat. Until then the stream has
// written nothing, which keeps a connection that waits for its first event
// as light as one that has not been answered: net/http's response buffer,
// or the compressor of Echo's Gzip in front, is not touched yet.
//
// When no stream can be opened, Open returns an error the handler should
// return, and writes nothing: an *echo.HTTPError wrapping one of
// [ErrNotRequested], [ErrTooManyClients], [ErrRequestBody],
// [ErrFlushUnsupported], [ErrWriterWrapped],
// [ErrNoMiddleware] or [ErrCommitted], which errors.Is matches. A handler that serves ordinary requests too (see
// Config.MatchQuery) checks errors.Is(err, echosse.ErrNotRequested).
//
// A HEAD request gets the stream's headers and nothing else: its stream has
// ended when Open returns. A GET or HEAD request with a body is refused
// ([ErrRequestBody]); a POST may stream once the handler has read its body.
//
// From Open on, c.Request().Context() is the stream's context, and the
// stream owns the response: the handler must not write to it. Calling Open
// again for the same request returns the same Stream.
func Open(c echo.Context) (*Stream, error) {
	if s, ok := c.Get(streamKey).(*Stream); ok {
		return s, nil
	}
	h, ok := c.Get(hubKey).(*hub)
	if !ok {
		return nil, echo.NewHTTPError(http.StatusInternalServerError, ErrNoMiddleware.Error()).WithInternal(ErrNoMiddleware)
	}
	return h.open(c)
}

func (h *hub) open(c echo.Context) (*Stream, error) {
	if q := h.cfg.MatchQuery; q != "" && !c.QueryParams().Has(q) {
		return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s: query parameter %q missing", ErrNotRequested, q)).WithInternal(ErrNotRequested)
	}
	req := c.Request()
	if (req.Method == http.MethodGet || req.Method == http.MethodHead) && req.ContentLength != 0 {
		// A body nobody reads would also keep net/http from noticing
		// when the client goes away. Closing the connection after the
		// answer keeps net/http from waiting for the rest of the body.
		c.Response().Header().Set("Connection", "close")
		return nil, httpError(http.StatusBadRequest, ErrRequestBody)
	}
	lastID := lastEventID(req)
	if len(lastID) > MaxLastEventID {
		// It names no event either way; a stream keeps no more of it.
		lastID = strings.Clone(lastID[:MaxLastEventID+1])
	}
	res := c.Response()
	w := res.Writer
	if w != c.Get(writerKey) {
		return nil, httpError(http.StatusInternalServerError, ErrWriterWrapped)
	}
	if res.Committed {
		return nil, httpError(http.StatusInternalServerError, ErrCommitted)
	}
	gz := h.cfg.Compress && acceptsGzip(req.Header.Get("Accept-Encoding"))
	if gz && compressedInFront(w) {
		return nil, httpError(http.StatusInternalServerError, ErrDoubleCompression)
	}
	if !canFlush(w) {
		return nil, echo.NewHTTPError(http.StatusInternalServerError, fmt.Sprintf("%s (%T)", ErrFlushUnsupported, w)).WithInternal(ErrFlushUnsupported)
	}
	if h.clients.Add(1) > int64(h.cfg.MaxClients) {
		h.clients.Add(-1)
		return nil, httpError(http.StatusServiceUnavailable, ErrTooManyClients)
	}

	// The stream's context keeps the request's values but not its
	// cancellation: the pump watches the request's context itself and ends
	// the stream, with its reason, when the client goes away. Deriving it
	// from the request's context directly would register it there, an
	// allocation per stream for something the pump already knows.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(req.Context()))
	c.SetRequest(req.WithContext(ctx))
	ch := make(chan event.Event, h.cfg.BufferSize)
	s := &Stream{
		C:           ch,
		ch:          ch,
		ctx:         ctx,
		cancelCtx:   cancel,
		reqCtx:      req.Context(),
		reqDone:     req.Context().Done(),
		lastEventID: lastID,
		h:           h,
		c:           c,
		res:         res,
		rc:          http.NewResponseController(w),
		h2:          req.ProtoMajor >= 2,
		wake:        make(chan struct{}, 1),
	}
	h.servers.track(s, req)
	if h.cfg.PingInterval > 0 || gz {
		s.timer = time.AfterFunc(h.cfg.PingInterval, s.onTimer)
		if h.cfg.PingInterval <= 0 {
			s.timer.Stop()
		}
	}

	// The server's WriteTimeout would cut the stream; per-write deadlines
	// replace it. A writer that cannot set deadlines (a recorder) is fine.
	_ = s.rc.SetWriteDeadline(time.Time{})
	setStreamHeaders(res.Header())
	if gz {
		s.gz = &gzipStream{w: res, pool: h.compressors}
		res.Header()["Content-Encoding"] = gzipEncoding
		res.Header().Add("Vary", "Accept-Encoding")
	}
	res.WriteHeader(http.StatusOK)
	if err := s.writeControl(h.openFrame); err != nil {
		s.finish(err)
		return nil, err
	}
	if req.Method == http.MethodHead {
		s.cancel(ErrClosed) // the headers are the whole answer
	}
	// Most handlers that stream from elsewhere (a broker, a hub) return
	// at once, and the request goroutine, which waits for the stream
	// anyway, becomes the pump. Only a handler still running after
	// pumpDelay gets a pump goroutine of its own.
	s.starter = time.AfterFunc(pumpDelay, s.pumpWhileHandlerRuns)
	// From here on the middleware waits for the stream to end.
	c.Set(streamKey, s)
	return s, nil
}

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

func httpError(code int, err error) *echo.HTTPError {
	return echo.NewHTTPError(code, err.Error()).WithInternal(err)
}

// lastEventID returns the Last-Event-ID header, or the query fallback.
func lastEventID(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return r.URL.Query().Get(LastEventIDQuery)
}

// canFlush reports whether w, or a writer it wraps, can flush. It walks the
// chain as http.ResponseController does, without calling Flush, so a writer
// that cannot flush is found before any header is written.
func canFlush(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case *echo.Response: // its Flush panics when it cannot flush
			w = t.Writer
		case interface{ FlushError() error }, http.Flusher:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
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
	a := &afterFunc{f: f}
	s.afters = append(s.afters, a)
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.canceled || a.f == nil {
			return false
		}
		a.f = nil
		return true
	}
}

// afterFunc is a function registered with [Stream.AfterFunc]; f is nil
// once stopped.
type afterFunc struct{ f func() }

// cancel cancels the stream's context with cause, if it is not cancelled
// already, and starts the functions registered with AfterFunc.
func (s *Stream) cancel(cause error) { startAfters(s.stop(cause)) }

// stop cancels the stream's context with cause, if it is not cancelled
// already, and returns the functions registered with AfterFunc, for the
// caller to start with startAfters.
func (s *Stream) stop(cause error) []*afterFunc {
	s.cancelCtx(cause)
	s.poke()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled {
		return nil
	}
	s.canceled = true
	afters := s.afters
	s.afters = nil
	return afters
}

// startAfters starts each function of afters that was not stopped.
func startAfters(afters []*afterFunc) {
	for _, a := range afters {
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
	s.cancel(cause)
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

// wait makes the request goroutine take over the pump once the handler has
// returned, and returns when the stream has ended.
func (s *Stream) wait() {
	s.starter.Stop()
	s.mu.Lock()
	s.returned = true
	s.starter = nil
	parked := s.parked
	s.mu.Unlock()
	if parked != nil {
		s.handOff.Store(true)
		s.poke()
		<-parked
	}
	if !s.ended {
		s.poke() // whatever the pump goroutine left unseen
		err, _ := s.pump(false)
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
	for {
		select {
		case ev, ok := <-s.ch:
			if err := s.batch(ev, ok); err != nil {
				return err, false
			}
		case <-s.reqDone:
			return s.clientGone(), false
		case <-s.wake:
			if s.ctx.Err() != nil {
				err := s.cause()
				if err == ErrShutdown {
					// The server is shutting down, the client is not
					// gone: tell it so before the response ends.
					if werr := s.writeControl(s.h.shutdownFrame()); werr != nil {
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
			if err := s.writeControl(s.h.pingFrame); err != nil {
				return err, false
			}
		}
	}
}

// recovered turns a panic in code the pump called into the reason the
// stream ends, and reports it with its stack.
func (s *Stream) recovered(r any) error {
	err := fmt.Errorf("%w: %v", ErrPumpPanicked, r)
	s.report(fmt.Errorf("%w\n%s", err, debug.Stack()))
	return err
}

// report tells Config.ErrorHandler about err, where a panic of the
// ErrorHandler's own cannot be reported to it: that goes to the standard
// logger.
func (s *Stream) report(err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Printf("echosse: Config.ErrorHandler panicked (%v) while told: %v", r, err)
		}
	}()
	s.h.cfg.ErrorHandler(s.c, err)
}

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
			*bp = append(*bp, s.h.closeFrame...)
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
		} else if *bp, err = ev.AppendTo(*bp); err != nil {
			s.h.cfg.ErrorHandler(s.c, fmt.Errorf("echosse: event skipped: %w", err))
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
		err = s.flush()
	}
	if err == nil && closed {
		err = ErrClosed
	}
	return err
}

// Buffers events are encoded into, so that an idle stream holds none.
// Most batches are small, and small buffers come from a sync.Pool. A burst
// takes one of a few large buffers, kept for that; when all are in use its
// batches stay small. So a busy moment on many streams at once neither
// leaves a large buffer per stream in a pool nor a trail of garbage.
var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	bigBufs struct {
		sync.Mutex
		free []*[]byte
		out  int // large buffers in use
	}
)

const (
	smallBatch = 8 << 10          // a batch in a small buffer ends past this
	maxPooled  = 16 << 10         // small buffers up to this capacity go back to bufPool
	bigCap     = maxBatch + 8<<10 // capacity of a large buffer
	maxBigBufs = 4                // large buffers, per GOMAXPROCS
)

func getBuf() *[]byte {
	bp := bufPool.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		bufPool.Put(bp)
	}
}

// takeBig returns a large buffer holding what bp holds, in place of bp, or
// nil when the large buffers are all in use.
func takeBig(bp *[]byte) *[]byte {
	bigBufs.Lock()
	if bigBufs.out >= maxBigBufs*runtime.GOMAXPROCS(0) {
		bigBufs.Unlock()
		return nil
	}
	bigBufs.out++
	var big *[]byte
	if n := len(bigBufs.free); n > 0 {
		big = bigBufs.free[n-1]
		bigBufs.free = bigBufs.free[:n-1]
	}
	bigBufs.Unlock()
	if big == nil {
		b := make([]byte, 0, bigCap)
		big = &b
	}
	*big = append((*big)[:0], *bp...)
	putBuf(bp)
	return big
}

// putBuffer gives back bp, a large buffer if big.
func putBuffer(bp *[]byte, big bool) {
	if big {
		putBig(bp)
	} else {
		putBuf(bp)
	}
}

// putBig gives back a buffer from takeBig.
func putBig(bp *[]byte) {
	bigBufs.Lock()
	bigBufs.out--
	if cap(*bp) <= bigCap { // not grown by a huge event
		bigBufs.free = append(bigBufs.free, bp)
	}
	bigBufs.Unlock()
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

// emit writes b, events the pump encoded, to the response without
// flushing it: compressed first on a compressed stream. The plaintext is
// not needed once emit returns.
func (s *Stream) emit(b []byte) error {
	s.deadline()
	var err error
	if s.gz != nil {
		err = s.gz.write(b)
	} else {
		_, err = s.res.Write(b)
	}
	if err != nil {
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
		_, err = s.res.Write(b)
	}
	if err != nil {
		return s.writeError(err)
	}
	return s.flush()
}

// deadline bounds the next write and flush by the write timeout. Moving a
// deadline moves a runtime timer, so one set less than an eighth of the
// timeout ago is kept: it still gives the write at least 7/8 of it.
func (s *Stream) deadline() {
	wt := s.h.cfg.WriteTimeout
	if wt <= 0 {
		return
	}
	now := time.Now()
	if s.due.Sub(now) >= wt-wt/8 {
		return
	}
	s.due = now.Add(wt)
	_ = s.rc.SetWriteDeadline(s.due)
	if s.h2 {
		s.armStall()
	}
}

// flush flushes what was written, within the deadline its write set, and
// restarts the heartbeat wait.
func (s *Stream) flush() error {
	if err := s.rc.Flush(); err != nil {
		return s.writeError(err)
	}
	if s.h2 && s.h.cfg.WriteTimeout > 0 {
		// Over HTTP/2 a write deadline is a timer that resets the
		// stream when it fires, even with no write under way: clear it
		// so that an idle stream lives. Over HTTP/1 it only bounds
		// writes, and the next write sets a new one.
		s.disarmStall()
		_ = s.rc.SetWriteDeadline(time.Time{})
		s.due = time.Time{}
	}
	switch {
	case s.gz != nil && s.gz.c != nil:
		s.release = true
		s.timer.Reset(s.h.cfg.CompressIdle)
		s.tick.Store(false)
	case s.h.cfg.PingInterval > 0:
		s.timer.Reset(s.h.cfg.PingInterval)
		s.tick.Store(false)
	}
	return nil
}

// idle gives the stream's compressor back after it has been idle for
// Config.CompressIdle, and waits for the rest of the heartbeat interval.
func (s *Stream) idle() {
	s.release = false
	s.gz.idle()
	if pi := s.h.cfg.PingInterval; pi > 0 {
		s.timer.Reset(max(pi-s.h.cfg.CompressIdle, 0))
	}
}

// writeError turns a failed write into the reason the stream ends, and
// reports the ones that are not an ordinary disconnect.
func (s *Stream) writeError(err error) error {
	s.disarmStall()
	// Checked first: net/http cancels the request's context when a write
	// to the connection fails, whatever the reason. Over HTTP/2 a write
	// past its deadline may instead fail as the connection closes (h2.go).
	if errors.Is(err, os.ErrDeadlineExceeded) || s.h2 && s.overdue() {
		s.h.cfg.ErrorHandler(s.c, fmt.Errorf("%w (after %v): %w", ErrWriteTimeout, s.h.cfg.WriteTimeout, err))
		return ErrWriteTimeout
	}
	if s.ctx.Err() != nil {
		return s.cause()
	}
	if s.reqCtx.Err() != nil {
		return s.clientGone()
	}
	return fmt.Errorf("%w: %w", ErrClientGone, err)
}

// cause returns why the stream's context is done.
func (s *Stream) cause() error { return context.Cause(s.ctx) }

// clientGone returns why the request's context is done: the client is
// gone, unless something else cancelled it with a cause of its own.
func (s *Stream) clientGone() error {
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
	_ = s.rc.SetWriteDeadline(time.Time{})
	s.untrack()
	s.h.clients.Add(-1)
	s.cancel(reason)
	s.mu.Lock()
	s.finished.Store(true)
	if s.done != nil {
		close(s.done)
	}
	s.mu.Unlock()
}

// endGzip ends a compressed response with the gzip trailer, unless writing
// has failed, and gives the compressor back.
func (s *Stream) endGzip(reason error) {
	if errors.Is(reason, ErrClientGone) || errors.Is(reason, ErrWriteTimeout) || s.reqCtx.Err() != nil {
		s.gz.idle()
		return
	}
	s.deadline()
	if s.gz.close() == nil {
		_ = s.rc.Flush()
	}
}

// compressedInFront reports whether Echo's Gzip middleware (or another
// that already set Content-Encoding) compresses the response.
func compressedInFront(w http.ResponseWriter) bool {
	if w.Header().Get("Content-Encoding") != "" {
		return true
	}
	for w != nil {
		t := reflect.TypeOf(w)
		if t.Kind() == reflect.Pointer && t.Elem().Name() == "gzipResponseWriter" && t.Elem().PkgPath() == "github.com/labstack/echo/v4/middleware" {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return false
}
