package echosse

import (
	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/internal/door"
)

// Handler returns an Echo handler that opens the request's stream with
// [Open] and calls h with it; when Open fails, it returns Open's error
// without calling h. What h returns ends the stream as a handler's error
// does after Open (nil leaves the stream to the goroutines that send on
// it).
//
// Use it rather than calling Open yourself when a middleware between
// [Middleware] and the handler may swallow a panic: Echo v4's Recover
// registered after (inside) echosse.Middleware turns a panic into an
// ordinary return, which the middleware cannot tell from a handler that
// leaves its stream to other goroutines, so the stream would stay open and
// keep its Config.MaxClients slot. Handler sits below every middleware:
// when h panics, it ends the stream with [ErrHandlerPanicked], waits for
// it to end (its slot is free), and lets the panic go on, with its stack,
// to Recover, which logs it as usual.
//
// A handler that serves ordinary requests too (Config.MatchQuery) calls
// Open itself, to handle [ErrNotRequested].
func Handler(h func(c echo.Context, s *Stream) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := Open(c)
		if err != nil {
			return err
		}
		returned := false
		defer func() {
			if !returned {
				// h panicked: end the stream without recovering, so
				// that the panic goes on as it was.
				door.Panicked(s)
			}
		}()
		err = h(c, s)
		returned = true
		return err
	}
}
