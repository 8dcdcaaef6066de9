package echosse_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/doortest"
)

// door is the Echo v4 door as the behaviour suite sees it: an Echo app
// with Recover outermost (as the README says to register it, so a panic in
// a handler becomes an error and the connection lives), Gzip next when the
// suite asks for it, then echosse.Middleware, and one route for every path
// and method that opens a stream and hands it to the suite.
var door = doortest.Door{
	Name: "echo4",
	Serve: func(t testing.TB, cfg doortest.Config, handle doortest.Handle) http.Handler {
		e := newEcho()
		e.Use(middleware.Recover())
		if cfg.Gzip {
			e.Use(middleware.Gzip())
		}
		c := cfg.Config
		mw, err := echosse.Config{
			MaxClients:     c.MaxClients,
			PingInterval:   c.PingInterval,
			CloseEvent:     c.CloseEvent,
			MatchQuery:     c.MatchQuery,
			BufferSize:     c.BufferSize,
			WriteTimeout:   c.WriteTimeout,
			Retry:          c.Retry,
			Overflow:       c.Overflow,
			RetryAfter:     c.RetryAfter,
			ShutdownRetry:  c.ShutdownRetry,
			Compress:       c.Compress,
			CompressIdle:   c.CompressIdle,
			MaxCompressors: c.MaxCompressors,
			Counters:       c.Counters,
			ErrorHandler: func(_ echo.Context, err error) {
				if cfg.OnError != nil {
					cfg.OnError(err)
				}
			},
		}.ToMiddleware()
		if err != nil {
			t.Fatal(err)
		}
		e.Use(mw)
		e.Any("/*", func(c echo.Context) error {
			s, err := echosse.Open(c)
			if err != nil {
				return err
			}
			return handle(s, c.Request())
		})
		return e
	},
}

func TestDoor(t *testing.T) { doortest.Run(t, door) }

func TestDoorTakeover(t *testing.T) { doortest.RunTakeover(t, door) }

// TestTakeoverHandlerError: a handler that returns an error after a stream
// took its connection over leaves Echo's error handler nothing to write.
func TestTakeoverHandlerError(t *testing.T) {
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{Takeover: true, ErrorHandler: func(echo.Context, error) {}}))
	e.GET("/", func(c echo.Context) error {
		if _, err := echosse.Open(c); err != nil {
			return err
		}
		if !c.Response().Committed || c.Response().Status != http.StatusOK {
			t.Errorf("Committed %v, Status %d after a takeover", c.Response().Committed, c.Response().Status)
		}
		return errors.New("boom")
	})
	ts := httptest.NewServer(e)
	defer ts.Close()
	res, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !res.Close || strings.Contains(string(b), "Internal") {
		t.Fatalf("status %d, Close %v, body %q", res.StatusCode, res.Close, b)
	}
}

// TestTakeoverDetached: once the handler of a taken-over stream has
// returned, the echo.Context Echo pools no longer holds net/http's
// response, and an error the stream reports reaches Config.ErrorHandler
// with a context of its own: the route's path, the request's method, URL
// and client address, the stream's context.
func TestTakeoverDetached(t *testing.T) {
	type report struct {
		path, method, uri string
		same              bool
	}
	reports := make(chan report, 1)
	var stream atomic.Pointer[echosse.Stream]
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if _, ok := c.Response().Writer.(interface {
				Hijack() (net.Conn, *bufio.ReadWriter, error)
			}); ok {
				t.Errorf("after a takeover the pooled context still holds %T", c.Response().Writer)
			}
			return err
		}
	})
	e.Use(echosse.Middleware(echosse.Config{Takeover: true, ErrorHandler: func(c echo.Context, err error) {
		if strings.Contains(err.Error(), "event skipped") {
			reports <- report{c.Path(), c.Request().Method, c.Request().RequestURI, c.Request().Context() == stream.Load().Context()}
		}
	}}))
	returned := make(chan struct{})
	e.GET("/users/:id", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		stream.Store(s)
		go func() { <-returned; s.C <- event.Event{ID: "a\nb"}; close(s.C) }()
		return nil
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.ServeHTTP(w, r)
		close(returned) // Echo's handler chain has returned: its context is back in the pool
	}))
	defer ts.Close()
	client := ts.Client()
	client.Timeout = 5 * time.Second
	res, err := client.Get(ts.URL + "/users/7?x=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if !strings.HasSuffix(string(b), "event: close\ndata:\n\n") {
		t.Fatalf("body %q, %v: the stream did not end once its handler returned", b, err)
	}
	select {
	case r := <-reports:
		if r.path != "/users/:id" || r.method != http.MethodGet || r.uri != "/users/7?x=1" || !r.same {
			t.Errorf("the error handler got path %q, %s %q, the stream's context %v", r.path, r.method, r.uri, r.same)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the skipped event was not reported")
	}
}
