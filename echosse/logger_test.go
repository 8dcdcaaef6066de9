package echosse_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
)

// TestRequestLoggerSeesRefusals: a request refused with OverflowRetry's
// answer (200 and a retry hint) reaches Echo's request logger as status
// 200 with an error matching ErrTooManyClients, whether the logger hands
// errors to Echo's error handler or not, for a request over MaxClients and
// for a handler's own cap; and the error handler writes nothing after the
// answer.
func TestRequestLoggerSeesRefusals(t *testing.T) {
	for _, handleError := range []bool{false, true} {
		for _, ownCap := range []bool{false, true} {
			t.Run(fmt.Sprintf("HandleError=%v/ownCap=%v", handleError, ownCap), func(t *testing.T) {
				logged := make(chan middleware.RequestLoggerValues, 4)
				e := newEcho()
				e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
					LogStatus:   true,
					LogError:    true,
					LogURI:      true,
					HandleError: handleError,
					LogValuesFunc: func(_ echo.Context, v middleware.RequestLoggerValues) error {
						logged <- v
						return nil
					},
				}))
				e.Use(echosse.Middleware(echosse.Config{MaxClients: 1, RetryAfter: time.Second}))
				streams := make(chan *echosse.Stream, 1)
				e.GET("/events", func(c echo.Context) error {
					if ownCap {
						return fmt.Errorf("user ada has 3 streams open: %w", echosse.ErrTooManyClients)
					}
					s, err := echosse.Open(c)
					if err != nil {
						return err
					}
					streams <- s
					return nil
				})
				srv := serve(t, e)
				if !ownCap {
					get(t, srv.URL+"/events")
					s := within(t, "the first stream", streams)
					defer close(s.C)
				}

				res := get(t, srv.URL+"/events")
				b, _ := io.ReadAll(res.Body)
				if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), ": too many clients, retry later\nretry: ") || strings.Count(string(b), "\n") != 3 {
					t.Fatalf("got %s %q, want 200 with the retry hint alone", res.Status, b)
				}
				v := within(t, "the log line", logged)
				if v.Status != http.StatusOK {
					t.Errorf("logged status %d, want 200, what was sent", v.Status)
				}
				if !errors.Is(v.Error, echosse.ErrTooManyClients) {
					t.Errorf("logged error %v, want one matching ErrTooManyClients", v.Error)
				}
				if ownCap && (v.Error == nil || !strings.Contains(v.Error.Error(), "user ada")) {
					t.Errorf("logged error %v, want the handler's own message in it", v.Error)
				}
			})
		}
	}
}
