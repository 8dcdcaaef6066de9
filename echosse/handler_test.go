package echosse_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// A panic in a Handler after its stream opened ends the stream and frees
// its slot whichever side of echosse.Middleware Echo's Recover sits on:
// with MaxClients 1, the next client is served.
func TestHandlerPanicFreesSlot(t *testing.T) {
	for _, tc := range []struct {
		name string
		use  func(e *echo.Echo, mw echo.MiddlewareFunc)
	}{
		{"recover outside", func(e *echo.Echo, mw echo.MiddlewareFunc) { e.Use(middleware.Recover(), mw) }},
		{"recover inside", func(e *echo.Echo, mw echo.MiddlewareFunc) { e.Use(mw, middleware.Recover()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEcho()
			tc.use(e, echosse.Middleware(echosse.Config{MaxClients: 1}))
			streams := make(chan *echosse.Stream, 2)
			read := make(chan struct{})
			e.GET("/events", echosse.Handler(func(c echo.Context, s *echosse.Stream) error {
				streams <- s
				if c.QueryParam("panic") != "" {
					if err := s.Send(event.Event{Data: "one"}); err != nil {
						return err
					}
					select { // the client has it: the panic comes after Open
					case <-read:
					case <-s.Done():
						return s.Err()
					}
					panic("handler bug")
				}
				close(s.C)
				return nil
			}))
			srv := serve(t, e)

			d := event.NewDecoder(get(t, srv.URL+"/events?panic=1").Body)
			expectEvent(t, d, "message", "one")
			close(read)
			ended := make(chan error, 1)
			go func() { _, err := d.Decode(); ended <- err }()
			if err := within(t, "the stream's end after the panic", ended); !errors.Is(err, io.EOF) {
				t.Fatalf("after the panic: got %v, want the stream to end without the close event", err)
			}
			s := within(t, "the first stream", streams)
			within(t, "the first stream's end", s.Done())
			if !errors.Is(s.Err(), echosse.ErrHandlerPanicked) {
				t.Fatalf("got Err %v, want ErrHandlerPanicked", s.Err())
			}
			res := get(t, srv.URL+"/events")
			evs := decodeAll(t, res.Body)
			if res.StatusCode != http.StatusOK || len(evs) != 1 || evs[0].Type != "close" {
				t.Fatalf("after the panic: got %s %v, want a stream with its close event", res.Status, evs)
			}
		})
	}
}

// Open's errors are the Handler's, and its function is not called.
func TestHandlerOpenError(t *testing.T) {
	e := newEcho()
	called := false
	e.GET("/events", echosse.Handler(func(echo.Context, *echosse.Stream) error {
		called = true
		return nil
	}))
	res := get(t, serve(t, e).URL+"/events")
	if res.StatusCode != http.StatusInternalServerError || called {
		t.Fatalf("without the middleware: got %s, called %v; want 500 (ErrNoMiddleware) and no call", res.Status, called)
	}
}
