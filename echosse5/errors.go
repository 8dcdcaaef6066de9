package echosse5

import "github.com/echosse/echo-sse/sse"

// Errors [Open] returns, each inside an *echo.HTTPError whose status Echo's
// error handler sends if the handler returns it. Match them with errors.Is.
// They are the core's ([sse.ErrNotRequested] and so on), the same values
// whichever door opened the stream; see there for each.
var (
	// ErrNoMiddleware: Open was called for a request that did not pass
	// through [Middleware], or that its Skipper skipped. Answered 500.
	ErrNoMiddleware = sse.ErrNoMiddleware

	// ErrNotRequested: Config.MatchQuery is set and the query string lacks
	// it; handle the request as an ordinary one. Answered 400.
	ErrNotRequested = sse.ErrNotRequested

	// ErrTooManyClients: Config.MaxClients streams are open. The middleware
	// answers as Config.Overflow says when the handler returns this error,
	// or an error wrapping it (a cap of the handler's own, before Open).
	// After OverflowRetry's answer (200 and a retry hint) the middleware
	// returns an error matching it that is no *echo.HTTPError, so Echo's
	// request logger reports status 200 with it and Echo's error handler
	// writes nothing more (the response is committed).
	ErrTooManyClients = sse.ErrTooManyClients

	// ErrRequestBody: a GET or HEAD stream request carries a body.
	// Answered 400.
	ErrRequestBody = sse.ErrRequestBody

	// ErrFlushUnsupported: the response writer cannot flush; a middleware
	// in front wraps it without Flush or Unwrap. Answered 500, before any
	// header is written.
	ErrFlushUnsupported = sse.ErrFlushUnsupported

	// ErrWriterWrapped: a middleware that runs after [Middleware] (a route's
	// own, or one registered after it) replaced the response writer, such
	// as Echo's Gzip: it would finish the response when the handler
	// returns, while the stream still writes. Register it before
	// echosse5.Middleware. Answered 500.
	ErrWriterWrapped = sse.ErrWriterWrapped

	// ErrDoubleCompression: Config.Compress is on and Echo's Gzip
	// middleware (or another compressor) is in front of the stream route.
	// Skip stream routes in the Gzip middleware (GzipConfig.Skipper) or
	// turn Compress off. Answered 500.
	ErrDoubleCompression = sse.ErrDoubleCompression

	// ErrCommitted: the response was already sent. Answered 500 (but Echo
	// cannot send it any more).
	ErrCommitted = sse.ErrCommitted
)

// Reasons a stream ends, returned by [Stream.Err] and set as the cause of
// [Stream.Context] (see context.Cause). A handler's own error, returned after
// it opened the stream, is a reason too.
var (
	// ErrClosed: the sender closed the channel; the close event was sent.
	// Not to be confused with broker.ErrClosed, the cause a stream is
	// aborted with when its broker closes (no close event: the browser
	// reconnects), nor with broker.ErrChannelClosed (the handler closed
	// the channel of a subscribed stream, which it must not).
	ErrClosed = sse.ErrClosed

	// ErrClientGone: the client disconnected or its connection broke.
	ErrClientGone = sse.ErrClientGone

	// ErrWriteTimeout: a write to the client took longer than
	// Config.WriteTimeout.
	ErrWriteTimeout = sse.ErrWriteTimeout

	// ErrShutdown: the http.Server serving the stream is shutting down.
	// The client received the close event, or the retry hint of
	// Config.ShutdownRetry.
	ErrShutdown = sse.ErrShutdown

	// ErrAborted: [Stream.Abort] was called with a nil cause.
	ErrAborted = sse.ErrAborted

	// ErrHandlerPanicked: the handler panicked after it opened the stream.
	ErrHandlerPanicked = sse.ErrHandlerPanicked

	// ErrPumpPanicked: code the stream's pump called panicked (an event's
	// MarshalJSON, or Config.ErrorHandler). See [sse.ErrPumpPanicked].
	ErrPumpPanicked = sse.ErrPumpPanicked
)
