package sseclient

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Errors that end [Client.Events] for good. Match them with errors.Is.
var (
	// ErrNoContent: the server answered 204 No Content, which tells a
	// client to stop reconnecting.
	ErrNoContent = errors.New("sseclient: server answered 204 No Content")

	// ErrStatus: the server answered a status other than 200 (and 204),
	// and Client.RetryStatus did not retry it. The error is a
	// [*StatusError].
	ErrStatus = errors.New("sseclient: unexpected status")

	// ErrContentType: a 200 answer whose Content-Type is not
	// text/event-stream.
	ErrContentType = errors.New("sseclient: Content-Type is not text/event-stream")

	// ErrBodyNotReplayable: the request has a body and no GetBody, so it
	// cannot be sent again to reconnect. It wraps the reason the
	// connection ended.
	ErrBodyNotReplayable = errors.New("sseclient: request body cannot be sent again (GetBody is nil), so the client cannot reconnect")

	// ErrEventTooLarge: an event is longer than Client.MaxEventSize. It
	// also matches [event.ErrEventTooLarge].
	ErrEventTooLarge = errors.New("sseclient: event is longer than MaxEventSize")
)

// Reasons a connection ended that the client recovers from by reconnecting.
// They reach [Client.OnRetry], never the range loop.
var (
	// ErrIdleTimeout: nothing arrived, not even a comment, for
	// Client.ReadIdleTimeout.
	ErrIdleTimeout = errors.New("sseclient: nothing read for ReadIdleTimeout")

	// ErrStreamEnded: the server ended the response normally.
	ErrStreamEnded = errors.New("sseclient: server ended the stream")
)

// StatusError is the error for a response whose status ends the stream, or,
// given to [Client.OnRetry], one that is retried. It matches [ErrStatus].
type StatusError struct {
	Code   int         // the status code, e.g. 503
	Status string      // the status line's text, e.g. "503 Service Unavailable"
	Header http.Header // the response's headers (Retry-After, say)
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	s := e.Status
	if s == "" {
		s = strconv.Itoa(e.Code)
	}
	return "sseclient: unexpected status " + s
}

// Is reports whether target is [ErrStatus].
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// RetryAfter returns the delay the Retry-After header asks for (seconds or
// an HTTP date, measured from now), and whether there was a valid one.
func (e *StatusError) RetryAfter() (time.Duration, bool) {
	return retryAfter(e.Header.Get("Retry-After"), time.Now())
}

func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// tooLarge matches both ErrEventTooLarge and event.ErrEventTooLarge.
type tooLarge struct {
	max int
	err error
}

func (e tooLarge) Error() string {
	return ErrEventTooLarge.Error() + " (" + strconv.Itoa(e.max) + " bytes)"
}

func (e tooLarge) Unwrap() []error { return []error{ErrEventTooLarge, e.err} }
