package sse

// This file owns the errors: why a stream cannot open, and why it ended.
// Every door returns these same values.

import (
	"errors"
	"log/slog"
	"time"
)

// Errors [Server.Open] and the doors' Open return, each with the HTTP
// status it is answered with ([Server.Error] answers it; the Echo doors
// return it inside an *echo.HTTPError of that status). Match them with
// errors.Is: every door returns these same values.
var (
	// ErrNoMiddleware: a door's Open was called for a request that did not
	// pass through its Middleware, or that its Skipper skipped. Answered
	// 500.
	ErrNoMiddleware = errors.New("echosse: Open needs the Middleware in front of the handler (missing, or skipped by its Skipper)")

	// ErrNotRequested: Config.MatchQuery is set and the query string lacks
	// it; handle the request as an ordinary one. Answered 400.
	ErrNotRequested = errors.New("echosse: the request does not ask for an event stream")

	// ErrTooManyClients: Config.MaxClients streams are open. The middleware
	// answers as Config.Overflow says when the handler returns this error.
	ErrTooManyClients = errors.New("echosse: too many clients")

	// ErrRequestBody: a GET or HEAD stream request carries a body.
	// Answered 400.
	ErrRequestBody = errors.New("echosse: a GET or HEAD stream request must not have a body")

	// ErrFlushUnsupported: the response writer cannot flush, so events would
	// not reach the client; a middleware in front wraps the writer without
	// Flush or Unwrap. Answered 500, before any header is written.
	ErrFlushUnsupported = errors.New("echosse: the response writer does not support flushing")

	// ErrWriterWrapped: a middleware that runs after a door's Middleware
	// replaced the response writer (Echo's Gzip, say). It would finish the
	// response when the handler returns, while the stream still writes.
	// Register it before the stream middleware. Answered 500.
	ErrWriterWrapped = errors.New("echosse: the response writer was wrapped by a middleware registered after the stream middleware; register it before")

	// ErrDoubleCompression: Config.Compress is on and a compression
	// middleware that compresses whatever the handler writes (Echo's Gzip)
	// is in front of the stream route: the stream would be compressed
	// twice. Skip stream routes in that middleware (GzipConfig.Skipper) or
	// turn Compress off. Answered 500. (gzhttp leaves a response whose
	// Content-Encoding is set alone: a stream compressed by the core
	// passes through it.)
	ErrDoubleCompression = errors.New("echosse: Config.Compress is on and a compression middleware (Echo's Gzip) is in front of this stream route; skip the route in that middleware or turn Compress off")

	// ErrCommitted: the response was already sent (the Echo doors know).
	// Answered 500, which cannot be sent any more.
	ErrCommitted = errors.New("echosse: the response is already committed")
)

// Reasons a stream ends, returned by [Stream.Err] and set as the cause of
// [Stream.Context] (see context.Cause). A handler's own error, returned after
// it opened the stream, is a reason too.
var (
	// ErrClosed: the sender closed the channel; the close event was sent.
	ErrClosed = errors.New("echosse: stream closed by the sender")

	// ErrClientGone: the client disconnected or its connection broke.
	ErrClientGone = errors.New("echosse: client gone")

	// ErrWriteTimeout: a write to the client took longer than
	// Config.WriteTimeout; the client has stopped reading.
	ErrWriteTimeout = errors.New("echosse: write to client timed out")

	// ErrShutdown: the http.Server serving the stream is shutting down
	// (Shutdown; e.Shutdown in Echo). The client received the close event, or the retry hint
	// of Config.ShutdownRetry.
	ErrShutdown = errors.New("echosse: server shutting down")

	// ErrAborted: [Stream.Abort] was called with a nil cause.
	ErrAborted = errors.New("echosse: stream aborted")

	// ErrHandlerPanicked: the handler panicked after it opened the stream.
	ErrHandlerPanicked = errors.New("echosse: handler panicked")

	// ErrPumpPanicked: code the stream's pump called panicked: the
	// MarshalJSON of an event's Data, or Config.ErrorHandler. The stream
	// ends without the close event (the client reconnects), its slot is
	// freed, and the panic, with its stack, goes to Config.ErrorHandler (or
	// to the standard logger when ErrorHandler is what panicked). The
	// returned error wraps it with the panic's value.
	ErrPumpPanicked = errors.New("echosse: code called by the stream's pump panicked")
)

// A StreamError is the error a stream gives Config.ErrorHandler (and each
// door's ErrorHandler): what went wrong, Err, which errors.Is and errors.As
// see through it, and what the stream knows of it, for a structured log
// (see [StreamError.Attrs]). Its message is Err's.
type StreamError struct {
	// Err is what went wrong: an invalid event skipped (an
	// [event.FieldError] inside), a write that timed out
	// ([ErrWriteTimeout]), a panic in the pump ([ErrPumpPanicked]), or the
	// error a net/http handler returned after it opened the stream.
	Err error

	// Ends reports whether Err ended the stream; Reason then says why, as
	// [Stats.Ended] counts it. An invalid event does not end its stream.
	Ends   bool
	Reason EndReason

	// RemoteAddr is the client's network address, the request's
	// RemoteAddr.
	RemoteAddr string

	// Age is how long the stream had been open.
	Age time.Duration
}

// Error returns Err's message.
func (e *StreamError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *StreamError) Unwrap() error { return e.Err }

// Attrs returns e as log/slog attributes: "error", "reason" (when Err
// ended the stream: one of the EndReason labels), "remote_addr" and
// "stream_age". The default ErrorHandlers log them so.
func (e *StreamError) Attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 4)
	attrs = append(attrs, slog.String("error", e.Err.Error()))
	if e.Ends {
		attrs = append(attrs, slog.String("reason", e.Reason.String()))
	}
	return append(attrs, slog.String("remote_addr", e.RemoteAddr), slog.Duration("stream_age", e.Age))
}
