package echosse5

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/echosse/echo-sse/internal/door"
	"github.com/echosse/echo-sse/sse"
)

// A Stream is one client's open event stream: the core's [sse.Stream],
// the same type whichever front door opened it, so that a broker serves
// streams of every door.
type Stream = sse.Stream

// MaxLastEventID is the longest Last-Event-ID (header or query) that can
// name an event, in bytes. See [sse.MaxLastEventID].
const MaxLastEventID = sse.MaxLastEventID

// LastEventIDQuery is the query parameter [sse.Stream.LastEventID] falls
// back to when a request has no Last-Event-ID header:
// new EventSource("/events?lastEventID=42"). See [sse.LastEventIDQuery].
const LastEventIDQuery = sse.LastEventIDQuery

// Open answers the request with an event stream and returns it. The client
// receives the response headers at once (and Config.Retry's retry field,
// when set), so a browser's EventSource fires "open" immediately; the body
// goes on with the first event or heartbeat.
//
// When no stream can be opened, Open returns an error the handler should
// return, and writes nothing: an *echo.HTTPError wrapping one of
// [ErrNotRequested], [ErrTooManyClients], [ErrRequestBody],
// [ErrFlushUnsupported], [ErrWriterWrapped], [ErrDoubleCompression],
// [ErrNoMiddleware] or [ErrCommitted], which errors.Is matches. A handler
// that serves ordinary requests too (see Config.MatchQuery) checks
// errors.Is(err, echosse5.ErrNotRequested).
//
// A HEAD request gets the stream's headers and nothing else, on a route
// of its own or a GET route Echo's router answers HEAD for
// (RouterConfig.AutoHandleHEAD): its stream has ended when Open returns.
// A GET or HEAD request with a body is refused ([ErrRequestBody]); a POST
// may stream once the handler has read its body.
//
// From Open on, c.Request().Context() is the stream's context, and the
// stream owns the response: the handler must not write to it. The
// middleware waits for the stream to end after the handler returns, so the
// handler need not call [sse.Stream.Wait]. Calling Open again for the same
// request returns the same Stream.
func Open(c *echo.Context) (*Stream, error) {
	if s, ok := c.Get(streamKey).(*Stream); ok {
		return s, nil
	}
	h, ok := c.Get(hubKey).(*hub)
	if !ok {
		return nil, httpError(http.StatusInternalServerError, ErrNoMiddleware.Error(), ErrNoMiddleware)
	}
	// The writer the middleware saw: Echo's *Response, wrapped by the
	// middleware in front (Gzip's writer, say), which the stream writes
	// and flushes through. Gzip's MinLength needs nothing of the door:
	// its writer's Flush compresses what it holds however short, sends
	// the status it held back, and flushes the gzip stream, and the
	// stream flushes when it opens and after every write.
	// (TestGzipFirstEventAtOnce holds Echo to it.)
	w := c.Response()
	if mw, _ := c.Get(writerKey).(http.ResponseWriter); w != mw {
		if !autoHead(c.Request(), w, mw) {
			return nil, httpError(http.StatusInternalServerError, ErrWriterWrapped.Error(), ErrWriterWrapped)
		}
		w = mw
	}
	if committed(w) {
		return nil, httpError(http.StatusInternalServerError, ErrCommitted.Error(), ErrCommitted)
	}
	o := door.Options{Tag: c}
	if r, ok := w.(*echo.Response); ok {
		// Echo's Response.Flush drops a failed flush's error: the stream
		// writes through the Response (whose Committed and Size stay
		// true), and flushes and sets deadlines through the writer under
		// it, so that a flush a client does not take in time ends the
		// stream with ErrWriteTimeout, as a write does. (Behind Gzip, its
		// writer's Flush drops the error too; the core then learns of it
		// from the request's context, which net/http cancels.)
		o.Out, w = r, r.ResponseWriter
	}
	s, err := door.Open(h.srv, w, c.Request(), &o)
	if err != nil {
		return nil, httpError(door.Status(err), err.Error(), err)
	}
	c.SetRequest(o.Request)
	if r, err := echo.UnwrapResponse(c.Response()); err == nil && !r.Committed {
		// The stream took the connection over (Config.Takeover) and
		// wrote the status line itself: Echo's error handler and
		// loggers must see the response as sent.
		r.Committed, r.Status = true, http.StatusOK
	}
	// From here on the middleware waits for the stream to end.
	c.Set(streamKey, s)
	return s.(*Stream), nil
}

// httpError is an *echo.HTTPError with code and msg, wrapping err.
func httpError(code int, msg string, err error) error {
	return echo.NewHTTPError(code, msg).Wrap(err)
}
