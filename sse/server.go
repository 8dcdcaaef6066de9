package sse

// This file owns opening a stream: the Server a Config makes, the checks
// a request passes before it gets a stream (MatchQuery, body, flushing,
// compression in front, the client limit), the answers to requests that
// do not, and the response headers.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/door"
)

// A Server opens event streams on net/http responses and keeps what they
// share: the client count, the compressors, the set of streams each
// http.Server must end when it shuts down. Make one per [Config] with
// [New]; it is safe for concurrent use.
type Server struct {
	cfg        Config
	hooks      door.Hooks
	clients    atomic.Int64 // open streams
	openFrame  []byte       // written when a stream opens: Config.Retry's field, if set
	closeFrame []byte       // written when the sender closes its channel
	pingFrame  []byte       // written when a stream has been idle
	servers    servers      // open streams by http.Server, for Shutdown, Stats and the sweeper
	sweeper    sweeper      // heartbeats and parking (idle.go)
	counters   *Counters    // Config.Counters, or the Server's own
	// compressors are lent to compressed streams; nil unless Config.Compress.
	compressors *compressorPool
}

// New returns a Server for config, its zero fields filled from
// [DefaultConfig], or an error saying which field is invalid.
func New(config Config) (*Server, error) {
	return newServer(config, door.Hooks{Prefix: "sse: "})
}

func newServer(config Config, hooks door.Hooks) (*Server, error) {
	cfg, err := config.withDefaults(hooks.Prefix)
	if err != nil {
		return nil, err
	}
	srv := &Server{cfg: cfg, hooks: hooks, counters: cfg.Counters}
	srv.sweeper.wake = make(chan struct{}, 1)
	if srv.counters == nil {
		srv.counters = new(Counters)
	}
	srv.counters.count(srv)
	if cfg.Compress {
		srv.compressors = newCompressorPool(cfg.MaxCompressors, srv.counters)
	}
	if cfg.Retry > 0 {
		if srv.openFrame, err = (event.Event{Retry: cfg.Retry}).AppendTo(nil); err != nil {
			return nil, fmt.Errorf("%sinvalid Retry: %w", hooks.Prefix, err)
		}
	}
	if srv.closeFrame, err = (event.Event{Type: cfg.CloseEvent, Data: ""}).AppendTo(nil); err != nil {
		return nil, fmt.Errorf("%sinvalid CloseEvent: %w", hooks.Prefix, err)
	}
	srv.pingFrame, _ = event.Event{Comment: "ping"}.AppendTo(nil)
	return srv, nil
}

// MaxLastEventID is the longest Last-Event-ID (header or query) that can
// name an event, in bytes: [event.MaxIDLength]. [Server.Open] never
// refuses a request for its Last-Event-ID, since a browser answered with
// anything but 200 gives up for good; see [Stream.LastEventID].
const MaxLastEventID = event.MaxIDLength

// LastEventIDQuery is the query parameter [Stream.LastEventID] falls back to
// when a request has no Last-Event-ID header. A browser sends the header
// only when it reconnects, so a page that wants to resume on its first
// connection puts the ID in the URL: new EventSource("/events?lastEventID=42").
const LastEventIDQuery = "lastEventID"

// Open answers r with an event stream on w and returns it. The handler
// must then call [Stream.Wait] before it returns (on its own goroutine:
// that goroutine pumps the stream until it ends), and must not write to w
// any more.
//
// The client receives the response headers at once (and Config.Retry's
// retry field, when set), so a browser's EventSource fires "open"
// immediately; the body goes on with the first event or heartbeat. Until
// then the stream has written nothing, which keeps a connection that waits
// for its first event as light as one that has not been answered. Behind a
// compression middleware that sends nothing before the body's first byte
// (gzhttp: a flush before any write does nothing), the headers go with the
// first event or heartbeat instead; set Config.Retry to send them at once.
//
// When no stream can be opened, Open writes nothing and returns an error
// matching one of [ErrNotRequested], [ErrTooManyClients],
// [ErrRequestBody], [ErrFlushUnsupported] or [ErrDoubleCompression];
// [Server.Error] answers it. A handler that serves ordinary requests too
// (see Config.MatchQuery) checks errors.Is(err, sse.ErrNotRequested)
// first.
//
// A HEAD request gets the stream's headers and nothing else: its stream
// has ended when Open returns. A GET or HEAD request with a body is
// refused ([ErrRequestBody]); a POST may stream once the handler has read
// its body.
func (srv *Server) Open(w http.ResponseWriter, r *http.Request) (*Stream, error) {
	return srv.open(w, r, nil)
}

// Error answers a request for which [Server.Open] returned err: a request
// over Config.MaxClients as Config.Overflow says, any other with the
// error's status and message.
func (srv *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrTooManyClients) {
		if unavailable, _ := srv.refuse(w); !unavailable {
			return
		}
		http.Error(w, ErrTooManyClients.Error(), http.StatusServiceUnavailable)
		return
	}
	http.Error(w, err.Error(), status(err))
}

// openError is an error [Server.Open] returns: a sentinel, the status it
// is answered with, and a message that may say more.
type openError struct {
	status int
	msg    string
	err    error
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

func refused(code int, err error) error { return &openError{code, err.Error(), err} }

// status returns the HTTP status err, from Open, is answered with.
func status(err error) int {
	if oe := (*openError)(nil); errors.As(err, &oe) {
		return oe.status
	}
	return http.StatusInternalServerError
}

func (srv *Server) open(w http.ResponseWriter, r *http.Request, o *door.Options) (*Stream, error) {
	if q := srv.cfg.MatchQuery; q != "" && !hasQueryKey(r.URL.RawQuery, q) {
		return nil, &openError{http.StatusBadRequest, fmt.Sprintf("%s: query parameter %q missing", ErrNotRequested, q), ErrNotRequested}
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength != 0 {
		// A body nobody reads would also keep net/http from noticing
		// when the client goes away. Closing the connection after the
		// answer keeps net/http from waiting for the rest of the body.
		w.Header().Set("Connection", "close")
		return nil, refused(http.StatusBadRequest, ErrRequestBody)
	}
	lastID := lastEventID(r)
	if len(lastID) > MaxLastEventID {
		// It names no event either way; a stream keeps no more of it.
		lastID = strings.Clone(lastID[:MaxLastEventID+1])
	}
	out := w
	var tag any
	if o != nil {
		if o.Out != nil {
			out = o.Out
		}
		tag = o.Tag
	}
	gz := srv.cfg.Compress && acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz && srv.compressedInFront(w) {
		return nil, refused(http.StatusInternalServerError, ErrDoubleCompression)
	}
	if !canFlush(w) {
		return nil, &openError{http.StatusInternalServerError, fmt.Sprintf("%s (%T)", ErrFlushUnsupported, w), ErrFlushUnsupported}
	}
	if srv.clients.Add(1) > int64(srv.cfg.MaxClients) {
		srv.clients.Add(-1)
		srv.counters.refused[srv.cfg.Overflow].Add(1)
		return nil, refused(http.StatusServiceUnavailable, ErrTooManyClients)
	}
	srv.counters.opened.Add(1)
	srv.counters.open.Add(1)

	// The stream's context keeps the request's values but not its
	// cancellation: the pump watches the request's context itself and ends
	// the stream, with its reason, when the client goes away. Deriving it
	// from the request's context directly would register it there, an
	// allocation per stream for something the pump already knows.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	req := r.WithContext(ctx)
	if o != nil {
		o.Request = req
	}
	take := srv.cfg.Takeover && canTakeOver(w, r)
	ch := make(chan event.Event, srv.cfg.BufferSize)
	s := &Stream{
		C:           ch,
		ch:          ch,
		ctx:         ctx,
		cancelCtx:   cancel,
		reqCtx:      r.Context(),
		lastEventID: lastID,
		srv:         srv,
		req:         req,
		tag:         tag,
		out:         out,
		rc:          http.NewResponseController(w),
		h2:          r.ProtoMajor >= 2,
		wake:        make(chan struct{}, 1),
		opened:      time.Since(epoch),
	}
	if gz {
		// Before the stream is tracked: Stats reads it.
		s.gz = &gzipStream{w: out, pool: srv.compressors}
	}
	if gz {
		// Heartbeats of the others come from the sweeper (idle.go).
		s.timer = time.AfterFunc(srv.cfg.PingInterval, s.onTimer)
		if srv.cfg.PingInterval <= 0 {
			s.timer.Stop()
		}
	}
	srv.servers.track(s, r)
	srv.sweep()

	// The server's WriteTimeout would cut the stream; per-write deadlines
	// replace it. A writer that cannot set deadlines (a recorder) is fine.
	_ = s.rc.SetWriteDeadline(time.Time{})
	setStreamHeaders(out.Header())
	if gz {
		out.Header()["Content-Encoding"] = gzipEncoding
		out.Header().Add("Vary", "Accept-Encoding")
	}
	if !take || !s.takeOver(out) {
		out.WriteHeader(http.StatusOK)
	}
	if err := s.writeControl(srv.openFrame); err != nil {
		s.finish(err)
		return nil, err
	}
	if r.Method == http.MethodHead {
		s.cancel(EndClosed, ErrClosed) // the headers are the whole answer
	}
	// Most handlers that stream from elsewhere (a broker, a hub) return
	// at once, and the request goroutine, which waits for the stream
	// anyway, becomes the pump. Only a handler still running after
	// pumpDelay gets a pump goroutine of its own.
	s.starter = time.AfterFunc(pumpDelay, s.pumpWhileHandlerRuns)
	return s, nil
}

// refuse answers a request over MaxClients as Config.Overflow says: for
// OverflowRetry with a stream that holds only a retry field, reporting
// unavailable false; for OverflowUnavailable it sets the Retry-After
// header only and reports true, for the caller to answer 503.
func (srv *Server) refuse(w http.ResponseWriter) (unavailable bool, err error) {
	delay := jittered(srv.cfg.RetryAfter)
	if srv.cfg.Overflow == OverflowUnavailable {
		secs := int64((delay + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		return true, nil
	}
	b, _ := event.Event{Comment: "too many clients, retry later", Retry: delay}.AppendTo(nil)
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return false, err
}

// jittered returns d plus a random jitter of up to d again. Config bounds
// d by MaxDelay, far from where d+d would overflow.
func jittered(d time.Duration) time.Duration {
	d = min(d, MaxDelay)
	return d + rand.N(d+1)
}

// setStreamHeaders sets the headers of an event stream response.
func setStreamHeaders(h http.Header) {
	h["Content-Type"] = contentType
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = accelNo
	h.Del("Content-Length")
}

// Header values, allocated once and shared read-only.
var (
	contentType  = []string{"text/event-stream"}
	noCache      = []string{"no-cache"}
	accelNo      = []string{"no"}
	gzipEncoding = []string{"gzip"}
)

// hasQueryKey reports whether the raw query string has key, as
// url.Values.Has would, without parsing the whole query into a map.
func hasQueryKey(raw, key string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			continue // url.ParseQuery drops such a pair
		}
		k, _, _ := strings.Cut(pair, "=")
		if k == key {
			return true
		}
		if strings.ContainsAny(k, "%+") {
			if u, err := url.QueryUnescape(k); err == nil && u == key {
				return true
			}
		}
	}
	return false
}

// lastEventID returns the Last-Event-ID header, or the query fallback.
func lastEventID(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	if q := r.URL.RawQuery; !strings.Contains(q, LastEventIDQuery) && !strings.Contains(q, "%") {
		return "" // not there: no need to parse the query
	}
	return r.URL.Query().Get(LastEventIDQuery)
}

// canFlush reports whether w, or a writer it wraps, can flush. It walks the
// chain as http.ResponseController does, without calling Flush, so a writer
// that cannot flush is found before any header is written.
func canFlush(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case interface{ FlushError() error }, http.Flusher:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// compressedInFront reports whether a compression middleware in front
// compresses the response: one that set Content-Encoding already, or one
// the door recognises.
func (srv *Server) compressedInFront(w http.ResponseWriter) bool {
	if w.Header().Get("Content-Encoding") != "" {
		return true
	}
	return srv.hooks.Compressed != nil && srv.hooks.Compressed(w)
}

// Handler returns an http.Handler that opens a stream with srv for every
// request and calls serve with it, on the request's goroutine; serve
// hands the stream to its senders and returns, and the handler pumps the
// stream until it ends. A request for which no stream opens is answered
// with [Server.Error] (a handler that serves ordinary requests too, see
// Config.MatchQuery, calls [Server.Open] itself). An error serve returns
// ends the stream with that error as its reason, and goes to
// Config.ErrorHandler; so does a panic in serve, which the handler then
// lets on to net/http (ErrHandlerPanicked) once the stream has ended.
func (srv *Server) Handler(serve func(s *Stream, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := srv.open(w, r, nil)
		if err != nil {
			srv.Error(w, r, err)
			return
		}
		returned := false
		defer func() {
			if !returned {
				s.end(ErrHandlerPanicked) // and the panic goes on
			}
		}()
		err = serve(s, s.req)
		returned = true
		if err = s.end(err); err != nil {
			s.errorHandler(err, s.endReason())
		}
	})
}
