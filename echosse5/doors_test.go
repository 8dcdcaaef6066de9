package echosse5_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/doortest"
	"github.com/echosse/echo-sse/sse"
)

// door is the Echo v5 door, for the behaviour suite every door passes.
var door = doortest.Door{
	Name: "echo5",
	Serve: func(t testing.TB, cfg doortest.Config, handle doortest.Handle) http.Handler {
		t.Helper()
		e := newEcho()
		if cfg.Gzip {
			e.Use(middleware.Gzip())
		}
		var onError func(c *echo.Context, err error)
		if cfg.OnError != nil {
			onError = func(_ *echo.Context, err error) { cfg.OnError(err) }
		}
		mw, err := echosse5.Config{
			MaxClients:     cfg.MaxClients,
			PingInterval:   cfg.PingInterval,
			CloseEvent:     cfg.CloseEvent,
			MatchQuery:     cfg.MatchQuery,
			BufferSize:     cfg.BufferSize,
			WriteTimeout:   cfg.WriteTimeout,
			Retry:          cfg.Retry,
			Overflow:       cfg.Overflow,
			RetryAfter:     cfg.RetryAfter,
			ShutdownRetry:  cfg.ShutdownRetry,
			Compress:       cfg.Compress,
			CompressIdle:   cfg.CompressIdle,
			MaxCompressors: cfg.MaxCompressors,
			Counters:       cfg.Counters,
			ErrorHandler:   onError,
		}.ToMiddleware()
		if err != nil {
			t.Fatal(err)
		}
		e.Use(mw)
		e.Any("/*", func(c *echo.Context) error {
			s, err := echosse5.Open(c)
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

// TestDoorAdapter checks the adapter itself while the suite's cases are
// elsewhere: a stream opens through Serve, behind Gzip, and its handle's
// events arrive.
func TestDoorAdapter(t *testing.T) {
	errs := make(chan error, 1)
	h := door.Serve(t, doortest.Config{Gzip: true, OnError: func(err error) { errs <- err }}, func(s *sse.Stream, r *http.Request) error {
		if r.Context() != s.Context() {
			t.Error("the handle's request does not carry the stream's context")
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{ID: "bad\nid"})
			s.Send(event.Event{Data: "hello"})
		}()
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	res := get(t, srv.URL+"/any/path", "Accept-Encoding", "gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatal("not behind Gzip")
	}
	if evs := decodeAll(t, body(t, res)); len(evs) != 2 || evs[0].Data != "hello" || evs[1].Type != "close" {
		t.Fatalf("got %v, want the event and the close event", evs)
	}
	if err := within(t, "OnError", errs); !strings.Contains(err.Error(), "invalid id") {
		t.Fatalf("OnError got %v, want the invalid event's error", err)
	}
}

// TestTakeoverDetached: once the handler of a taken-over stream has
// returned, the *echo.Context Echo pools no longer holds net/http's
// response, and an error the stream reports reaches Config.ErrorHandler
// with a context of its own: the route's path, the request's method and
// URL, the stream's context.
func TestTakeoverDetached(t *testing.T) {
	type report struct {
		path, method, uri string
		same              bool
	}
	reports := make(chan report, 1)
	var stream atomic.Pointer[echosse5.Stream]
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			err := next(c)
			if r, uerr := echo.UnwrapResponse(c.Response()); uerr == nil {
				if _, ok := r.ResponseWriter.(http.Hijacker); ok {
					t.Errorf("after a takeover the pooled context still holds %T", r.ResponseWriter)
				}
			}
			return err
		}
	})
	e.Use(echosse5.Middleware(echosse5.Config{Takeover: true, ErrorHandler: func(c *echo.Context, err error) {
		if strings.Contains(err.Error(), "event skipped") {
			reports <- report{c.Path(), c.Request().Method, c.Request().RequestURI, c.Request().Context() == stream.Load().Context()}
		}
	}}))
	returned := make(chan struct{})
	e.GET("/users/:id", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
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
