package echosse5_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
)

// A panic after the stream opened ends the stream and frees its slot
// whichever side of echosse5.Middleware Echo's Recover sits on, in a
// Handler or after a plain Open: with MaxClients 1, the next client is
// served.
func TestPanicFreesSlot(t *testing.T) {
	for _, order := range []struct {
		name string
		use  func(e *echo.Echo, mw echo.MiddlewareFunc)
	}{
		{"recover outside", func(e *echo.Echo, mw echo.MiddlewareFunc) { e.Use(middleware.Recover(), mw) }},
		{"recover inside", func(e *echo.Echo, mw echo.MiddlewareFunc) { e.Use(mw, middleware.Recover()) }},
	} {
		for _, style := range []struct {
			name string
			wrap func(h func(c *echo.Context, s *echosse5.Stream) error) echo.HandlerFunc
		}{
			{"Handler", echosse5.Handler},
			{"Open", func(h func(c *echo.Context, s *echosse5.Stream) error) echo.HandlerFunc {
				return func(c *echo.Context) error {
					s, err := echosse5.Open(c)
					if err != nil {
						return err
					}
					return h(c, s)
				}
			}},
		} {
			t.Run(order.name+"/"+style.name, func(t *testing.T) {
				e := newEcho()
				order.use(e, echosse5.Middleware(echosse5.Config{MaxClients: 1}))
				streams := make(chan *echosse5.Stream, 2)
				read := make(chan struct{})
				e.GET("/events", style.wrap(func(c *echo.Context, s *echosse5.Stream) error {
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
				if ev, err := d.Decode(); err != nil || ev.Data != "one" {
					t.Fatalf("got %v, %v; want the event sent before the panic", ev, err)
				}
				close(read)
				ended := make(chan error, 1)
				go func() { _, err := d.Decode(); ended <- err }()
				if err := within(t, "the stream's end after the panic", ended); !errors.Is(err, io.EOF) {
					t.Fatalf("after the panic: got %v, want the stream to end without the close event", err)
				}
				s := within(t, "the first stream", streams)
				within(t, "the first stream's end", s.Done())
				if !errors.Is(s.Err(), echosse5.ErrHandlerPanicked) {
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
}
