package echosse5_test

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
)

// TestGzipFirstEventAtOnce streams through Echo v5's Gzip, whose MinLength
// buffers a response until it is that long before it compresses: the
// headers arrive when the stream opens, and each event when it is sent,
// while the handler still holds the stream open, however far below
// MinLength the stream is.
func TestGzipFirstEventAtOnce(t *testing.T) {
	for _, minLength := range []int{0, 1024, 1 << 20} {
		t.Run(fmt.Sprintf("MinLength=%d", minLength), func(t *testing.T) {
			send := make(chan string)
			var returned atomic.Bool
			e := newEcho()
			e.Use(middleware.GzipWithConfig(middleware.GzipConfig{MinLength: minLength}))
			e.Use(echosse5.Middleware(echosse5.Config{PingInterval: -1}))
			e.GET("/events", func(c *echo.Context) error {
				defer returned.Store(true)
				s, err := echosse5.Open(c)
				if err != nil {
					return err
				}
				defer close(s.C)
				// The handler holds the stream: it sends what the test
				// tells it to, until the test closes send.
				for {
					select {
					case data, ok := <-send:
						if !ok {
							return nil
						}
						if s.Send(event.Event{Data: data}) != nil {
							return nil
						}
					case <-s.Context().Done():
						return nil
					}
				}
			})
			srv := serve(t, e)

			// Nothing is sent yet: the headers come with the stream's
			// opening flush.
			res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("got %s %q, want an event stream", res.Status, res.Header.Get("Content-Type"))
			}
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
			}
			evs := make(chan event.Event)
			errs := make(chan error, 1)
			go func() {
				d := event.NewDecoder(body(t, res))
				for {
					ev, err := d.Decode()
					if err != nil {
						errs <- err
						return
					}
					evs <- ev
				}
			}()
			for _, data := range []string{"first", "second"} {
				send <- data
				select {
				case ev := <-evs:
					if ev.Data != data {
						t.Fatalf("got event %q, want %q", ev.Data, data)
					}
				case err := <-errs:
					t.Fatalf("decoding %q: %v", data, err)
				}
				if returned.Load() {
					t.Fatal("the handler returned: the event was not sent while it held the stream")
				}
			}
			close(send)
			if ev := within(t, "the close event", evs); ev.Type != "close" {
				t.Fatalf("got %v, want the close event", ev)
			}
			if err := within(t, "the end of the stream", errs); err != io.EOF {
				t.Fatalf("after the close event: %v, want EOF", err)
			}
		})
	}
}
