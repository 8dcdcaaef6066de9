package echosse

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/internal/door"
	"github.com/echosse/echo-sse/sse"
)

// A Stream is one client's open event stream: the core's [sse.Stream],
// the same type whichever front door opened it, so that a broker serves
// streams of every door.
type Stream = sse.Stream

// MaxLastEventID is the longest Last-Event-ID (header or query) that can
// name an event, in bytes: [event.MaxIDLength]. [Open] never refuses a
// request for its Last-Event-ID, since a browser answered with anything
// but 200 gives up for good; see [sse.Stream.LastEventID].
const MaxLastEventID = sse.MaxLastEventID

// LastEventIDQuery is the query parameter [sse.Stream.LastEventID] falls
// back to when a request has no Last-Event-ID header. A browser sends the
// header only when it reconnects, so a page that wants to resume on its
// first connection puts the ID in the URL:
// new EventSource("/events?lastEventID=42").
const LastEventIDQuery = sse.LastEventIDQuery

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
// [ErrFlushUnsupported], [ErrWriterWrapped], [ErrDoubleCompression],
// [ErrNoMiddleware] or [ErrCommitted], which errors.Is matches. A handler
// that serves ordinary requests too (see Config.MatchQuery) checks
// errors.Is(err, echosse.ErrNotRequested).
//
// A HEAD request gets the stream's headers and nothing else: its stream has
// ended when Open returns. A GET or HEAD request with a body is refused
// ([ErrRequestBody]); a POST may stream once the handler has read its body.
//
// From Open on, c.Request().Context() is the stream's context, and the
// stream owns the response: the handler must not write to it. The
// middleware waits for the stream to end after the handler returns, so the
// handler need not call [sse.Stream.Wait]. Calling Open again for the same
// request returns the same Stream.
func Open(c echo.Context) (*Stream, error) {
	if s, ok := c.Get(streamKey).(*Stream); ok {
		return s, nil
	}
	h, ok := c.Get(hubKey).(*hub)
	if !ok {
		return nil, httpError(http.StatusInternalServerError, ErrNoMiddleware)
	}
	res := c.Response()
	if res.Writer != c.Get(writerKey) {
		return nil, httpError(http.StatusInternalServerError, ErrWriterWrapped)
	}
	if res.Committed {
		return nil, httpError(http.StatusInternalServerError, ErrCommitted)
	}
	o := door.Options{Out: res, Tag: c}
	s, err := door.Open(h.srv, res.Writer, c.Request(), &o)
	if err != nil {
		return nil, echo.NewHTTPError(door.Status(err), err.Error()).WithInternal(err)
	}
	c.SetRequest(o.Request)
	if !res.Committed {
		// The stream took the connection over (Config.Takeover) and
		// wrote the status line itself: Echo's error handler and
		// loggers must see the response as sent.
		res.Committed, res.Status = true, http.StatusOK
	}
	// From here on the middleware waits for the stream to end.
	c.Set(streamKey, s)
	return s.(*Stream), nil
}

func httpError(code int, err error) *echo.HTTPError {
	return echo.NewHTTPError(code, err.Error()).WithInternal(err)
}
