package echosse5_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		name        string
		givenConfig echosse5.Config
		wantErr     string
	}{
		{"zero value is valid", echosse5.Config{}, ""},
		{"negative MaxClients", echosse5.Config{MaxClients: -1}, "MaxClients must not be negative"},
		{"negative BufferSize", echosse5.Config{BufferSize: -1}, "BufferSize must not be negative"},
		{"negative MaxCompressors", echosse5.Config{MaxCompressors: -1}, "MaxCompressors must not be negative"},
		{"negative CompressIdle", echosse5.Config{CompressIdle: -1}, "CompressIdle must not be negative"},
		{"negative Retry", echosse5.Config{Retry: -time.Second}, "Retry must not be negative"},
		{"negative RetryAfter", echosse5.Config{RetryAfter: -time.Second}, "RetryAfter must not be negative"},
		{"negative ShutdownRetry", echosse5.Config{ShutdownRetry: -time.Second}, "ShutdownRetry must not be negative"},
		{"unknown Overflow", echosse5.Config{Overflow: 7}, "Overflow must be"},
		{"CloseEvent with a line break", echosse5.Config{CloseEvent: "a\nb"}, "CloseEvent"},
		{"CloseEvent not UTF-8", echosse5.Config{CloseEvent: "\xff"}, "CloseEvent"},
		{"negative durations turn features off", echosse5.Config{PingInterval: -1, WriteTimeout: -1}, ""},
		{"huge RetryAfter", echosse5.Config{RetryAfter: math.MaxInt64 - 1}, "RetryAfter must be at most 24h0m0s"},
		{"huge ShutdownRetry", echosse5.Config{ShutdownRetry: math.MaxInt64}, "ShutdownRetry must be at most"},
		{"huge Retry", echosse5.Config{Retry: math.MaxInt64 / 2}, "Retry must be at most"},
		{"huge BufferSize", echosse5.Config{BufferSize: 1 << 40}, "BufferSize must be at most"},
		{"the bounds themselves", echosse5.Config{Retry: echosse5.MaxDelay, RetryAfter: echosse5.MaxDelay, ShutdownRetry: echosse5.MaxDelay, BufferSize: echosse5.MaxBufferSize}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.givenConfig.ToMiddleware()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "echosse5: ") {
				t.Fatalf("got error %v, want one starting with %q and containing %q", err, "echosse5: ", tt.wantErr)
			}
			defer func() {
				if recover() == nil {
					t.Fatal("Middleware did not panic on an invalid config")
				}
			}()
			echosse5.Middleware(tt.givenConfig)
		})
	}
}

// TestGlobalUseLeavesOtherRoutesUntouched compares a JSON route byte for
// byte with and without the middleware installed globally.
func TestGlobalUseLeavesOtherRoutesUntouched(t *testing.T) {
	dump := func(withSSE bool) string {
		e := newEcho()
		if withSSE {
			e.Use(echosse5.Middleware(echosse5.Config{}))
		}
		e.GET("/api", func(c *echo.Context) error {
			return c.JSON(http.StatusOK, map[string]any{"ok": true, "items": []int{1, 2}})
		})
		res := get(t, serve(t, e).URL+"/api")
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Header.Del("Date")
		var h bytes.Buffer
		res.Header.Write(&h)
		return res.Status + "\n" + h.String() + string(b)
	}
	if with, without := dump(true), dump(false); with != without {
		t.Fatalf("the middleware changed a route that does not stream:\n%s\nwant\n%s", with, without)
	}
}

func TestOpenWithoutMiddleware(t *testing.T) {
	e := newEcho()
	e.Use(echosse5.Middleware(echosse5.Config{Skipper: func(c *echo.Context) bool { return c.Path() == "/skipped" }}))
	errs := make(chan error, 2)
	h := func(c *echo.Context) error {
		_, err := echosse5.Open(c)
		errs <- err
		return err
	}
	e.GET("/skipped", h)
	srv := serve(t, e)
	res := get(t, srv.URL+"/skipped")
	if err := <-errs; !errors.Is(err, echosse5.ErrNoMiddleware) || echo.StatusCode(err) != http.StatusInternalServerError {
		t.Fatalf("got %v, want a 500 wrapping ErrNoMiddleware", err)
	}
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", res.StatusCode)
	}

	bare := newEcho()
	bare.GET("/events", h)
	get(t, serve(t, bare).URL+"/events")
	if err := <-errs; !errors.Is(err, echosse5.ErrNoMiddleware) {
		t.Fatalf("without the middleware: got %v, want ErrNoMiddleware", err)
	}
}

// TestWriterWrappedAfterTheMiddleware puts Echo's Gzip after the
// middleware, as a global middleware and as the route's own: Open refuses
// to stream, with a 500 that says how to fix it, and the slot stays free.
func TestWriterWrappedAfterTheMiddleware(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(e *echo.Echo, h echo.HandlerFunc)
	}{
		{"registered after", func(e *echo.Echo, h echo.HandlerFunc) {
			e.Use(echosse5.Middleware(echosse5.Config{MaxClients: 1}))
			e.Use(middleware.Gzip())
			e.GET("/events", h)
		}},
		{"the route's own", func(e *echo.Echo, h echo.HandlerFunc) {
			e.Use(echosse5.Middleware(echosse5.Config{MaxClients: 1}))
			e.GET("/events", h, middleware.Gzip())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := make(chan error, 2)
			e := newEcho()
			tt.setup(e, func(c *echo.Context) error {
				s, err := echosse5.Open(c)
				errs <- err
				if err != nil {
					return err
				}
				close(s.C)
				return nil
			})
			srv := serve(t, e)
			res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
			b, _ := io.ReadAll(body(t, res))
			if err := <-errs; !errors.Is(err, echosse5.ErrWriterWrapped) || !errors.Is(err, sse.ErrWriterWrapped) {
				t.Fatalf("Open: got %v, want ErrWriterWrapped", err)
			}
			if res.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "register it before") {
				t.Fatalf("got %d %q, want a 500 saying how to fix the order", res.StatusCode, b)
			}
			// Without gzip the writer is not wrapped, and the one slot
			// is free.
			evs := decodeAll(t, get(t, srv.URL+"/events").Body)
			if err := <-errs; err != nil || len(evs) != 1 || evs[0].Type != "close" {
				t.Fatalf("without gzip: got %v, %v; want a stream with its close event", err, evs)
			}
		})
	}
}

// TestCompressWithEchoGzipInFront turns Compress on behind Echo's Gzip:
// Open fails with ErrDoubleCompression, unless Gzip skips the route.
func TestCompressWithEchoGzipInFront(t *testing.T) {
	for _, tt := range []struct {
		name       string
		skipStream bool
		minLength  int
		wantStatus int
	}{
		{"fails loudly", false, 0, http.StatusInternalServerError},
		{"fails loudly with MinLength", false, 1024, http.StatusInternalServerError},
		{"works when Gzip skips the stream route", true, 0, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := make(chan error, 1)
			e := newEcho()
			e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
				MinLength: tt.minLength,
				Skipper:   func(c *echo.Context) bool { return tt.skipStream && c.Path() == "/events" },
			}))
			e.Use(echosse5.Middleware(echosse5.Config{Compress: true}))
			e.GET("/events", func(c *echo.Context) error {
				s, err := echosse5.Open(c)
				errs <- err
				if err != nil {
					return err
				}
				go func() {
					defer close(s.C)
					s.Send(event.Event{Data: "once"})
				}()
				return nil
			})
			e.GET("/api", func(c *echo.Context) error {
				return c.JSON(http.StatusOK, map[string]string{"ok": strings.Repeat("y", 2000)})
			})
			srv := serve(t, e)
			res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
			b, err := io.ReadAll(body(t, res))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d (%q), want %d", res.StatusCode, b, tt.wantStatus)
			}
			openErr := <-errs
			if tt.wantStatus != http.StatusOK {
				if !errors.Is(openErr, echosse5.ErrDoubleCompression) || !strings.Contains(string(b), "skip the route") {
					t.Fatalf("got %v, %q; want ErrDoubleCompression, saying how to fix it", openErr, b)
				}
				return
			}
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("the stream is not compressed")
			}
			if want := "data: once\n\nevent: close\ndata:\n\n"; string(b) != want {
				t.Fatalf("got %q, want %q", b, want)
			}
			// Other routes stay with Echo's Gzip.
			if api := get(t, srv.URL+"/api", "Accept-Encoding", "gzip"); api.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("the JSON route lost Echo's compression")
			}
		})
	}
}

// TestErrorsMatchAcrossDoors: the errors of Open are the core's values,
// so that code written against one door (or the core, as a broker is)
// matches them from the other.
func TestErrorsMatchAcrossDoors(t *testing.T) {
	errs := make(chan error, 1)
	streams := make(chan *echosse5.Stream, 1)
	e := newEcho()
	e.Use(echosse5.Middleware(echosse5.Config{MaxClients: 1, Overflow: echosse5.OverflowUnavailable}))
	e.GET("/events", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			errs <- err
			return err
		}
		streams <- s
		return nil // the stream stays open until the test closes it
	})
	srv := serve(t, e)
	get(t, srv.URL+"/events")
	s := within(t, "the first stream", streams)
	defer close(s.C)

	res := get(t, srv.URL+"/events")
	err := <-errs
	for _, target := range []error{sse.ErrTooManyClients, echosse.ErrTooManyClients, echosse5.ErrTooManyClients} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) is false", err, target)
		}
	}
	if he := (*echo.HTTPError)(nil); !errors.As(err, &he) || he.Code != http.StatusServiceUnavailable {
		t.Errorf("got %#v, want an *echo.HTTPError with status 503", err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("got %s with Retry-After %q, want 503 with the header", res.Status, res.Header.Get("Retry-After"))
	}
	if errors.Is(err, sse.ErrNotRequested) {
		t.Errorf("%v matches ErrNotRequested too", err)
	}
}

func TestOverflowRetryAnswersWithAStream(t *testing.T) {
	streams := make(chan *echosse5.Stream, 1)
	e := newEcho()
	e.Use(echosse5.Middleware(echosse5.Config{MaxClients: 1, RetryAfter: time.Second}))
	e.GET("/events", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		streams <- s
		return nil
	})
	srv := serve(t, e)
	get(t, srv.URL+"/events")
	s := within(t, "the first stream", streams)
	defer close(s.C)

	res := get(t, srv.URL+"/events")
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(string(b), "retry: ") {
		t.Fatalf("got %s %q %q, want 200 with a retry field", res.Status, res.Header.Get("Content-Type"), b)
	}
}

func TestHandlerPanicAfterOpenFreesSlot(t *testing.T) {
	e := newEcho()
	e.Use(middleware.Recover())
	e.Use(echosse5.Middleware(echosse5.Config{MaxClients: 1}))
	streams := make(chan *echosse5.Stream, 2)
	e.GET("/events", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		streams <- s
		if c.QueryParam("panic") != "" {
			panic("handler bug")
		}
		close(s.C)
		return nil
	})
	srv := serve(t, e)
	res := get(t, srv.URL+"/events?panic=1")
	io.Copy(io.Discard, res.Body)
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), echosse5.ErrHandlerPanicked) {
		t.Fatalf("got Err %v, want ErrHandlerPanicked", s.Err())
	}
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	if len(evs) != 1 || evs[0].Type != "close" {
		t.Fatalf("after the panic: got %v, want a stream with its close event", evs)
	}
}

// syncBuffer is a bytes.Buffer safe for the pump's goroutine to write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestDefaultErrorHandlerLogsWithTheContextLogger sends an invalid event
// with no ErrorHandler configured: the error goes to c.Logger(), the
// request's own slog logger here, and the stream goes on.
func TestDefaultErrorHandlerLogsWithTheContextLogger(t *testing.T) {
	var appLog, reqLog syncBuffer
	e := echo.NewWithConfig(echo.Config{Logger: slog.New(slog.NewTextHandler(&appLog, nil))})
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.SetLogger(slog.New(slog.NewTextHandler(&reqLog, nil)).With("request", "r1"))
			return next(c)
		}
	})
	e.Use(echosse5.Middleware(echosse5.Config{}))
	e.GET("/events", openSendClose(nil, event.Event{ID: "bad\nid", Data: "skipped"}, event.Event{Data: "after"}))
	evs := decodeAll(t, get(t, serve(t, e).URL+"/events").Body)
	if len(evs) != 2 || evs[0].Data != "after" || evs[1].Type != "close" {
		t.Fatalf("got %v, want the valid event and the close event", evs)
	}
	got := reqLog.String()
	if !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "request=r1") || !strings.Contains(got, "error=") || !strings.Contains(got, "invalid id") {
		t.Fatalf("the request's logger got %q, want the invalid event's error at level ERROR", got)
	}
	if appLog.String() != "" {
		t.Fatalf("Echo's own logger got %q, want nothing: c.Logger() is the request's", appLog.String())
	}
}

func TestErrorHandlerGetsTheContext(t *testing.T) {
	got := make(chan string, 1)
	e := newEcho()
	e.Use(echosse5.Middleware(echosse5.Config{ErrorHandler: func(c *echo.Context, err error) {
		got <- c.Path() + " " + err.Error()
	}}))
	e.GET("/events", openSendClose(nil, event.Event{ID: "bad\nid"}))
	decodeAll(t, get(t, serve(t, e).URL+"/events").Body)
	if s := within(t, "the ErrorHandler", got); !strings.HasPrefix(s, "/events ") {
		t.Fatalf("ErrorHandler got %q, want the route's context", s)
	}
}
