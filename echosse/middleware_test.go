package echosse_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		name        string
		givenConfig echosse.Config
		wantErr     string
	}{
		{"zero value is valid", echosse.Config{}, ""},
		{"negative MaxClients", echosse.Config{MaxClients: -1}, "MaxClients must not be negative"},
		{"negative BufferSize", echosse.Config{BufferSize: -1}, "BufferSize must not be negative"},
		{"negative MaxCompressors", echosse.Config{MaxCompressors: -1}, "MaxCompressors must not be negative"},
		{"negative Retry", echosse.Config{Retry: -time.Second}, "Retry must not be negative"},
		{"negative RetryAfter", echosse.Config{RetryAfter: -time.Second}, "RetryAfter must not be negative"},
		{"unknown Overflow", echosse.Config{Overflow: 7}, "Overflow must be"},
		{"CloseEvent with a line break", echosse.Config{CloseEvent: "a\nb"}, "CloseEvent"},
		{"CloseEvent not UTF-8", echosse.Config{CloseEvent: "\xff"}, "CloseEvent"},
		{"negative durations turn features off", echosse.Config{PingInterval: -1, WriteTimeout: -1}, ""},
		{"huge RetryAfter", echosse.Config{RetryAfter: math.MaxInt64 - 1}, "RetryAfter must be at most 24h0m0s"},
		{"huge ShutdownRetry", echosse.Config{ShutdownRetry: math.MaxInt64}, "ShutdownRetry must be at most"},
		{"huge Retry", echosse.Config{Retry: math.MaxInt64 / 2}, "Retry must be at most"},
		{"huge BufferSize", echosse.Config{BufferSize: 1 << 40}, "BufferSize must be at most"},
		{"the bounds themselves", echosse.Config{Retry: echosse.MaxDelay, RetryAfter: echosse.MaxDelay, ShutdownRetry: echosse.MaxDelay, BufferSize: echosse.MaxBufferSize}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.givenConfig.ToMiddleware()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "echosse: ") {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			defer func() {
				if recover() == nil {
					t.Fatal("Middleware did not panic on an invalid config")
				}
			}()
			echosse.Middleware(tt.givenConfig)
		})
	}
}

// TestGlobalUseLeavesOtherRoutesUntouched compares a JSON route byte for
// byte with and without the middleware installed globally.
func TestGlobalUseLeavesOtherRoutesUntouched(t *testing.T) {
	dump := func(withSSE bool) string {
		e := newEcho()
		if withSSE {
			e.Use(echosse.Middleware(echosse.Config{}))
		}
		e.GET("/api", func(c echo.Context) error {
			return c.JSON(http.StatusOK, map[string]any{"ok": true, "items": []int{1, 2}})
		})
		srv := serve(t, e)
		res := get(t, srv.URL+"/api")
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Header.Del("Date")
		return fmt.Sprintf("%d %v %s", res.StatusCode, res.Header, b)
	}
	if without, with := dump(false), dump(true); without != with {
		t.Fatalf("the middleware changed a JSON route:\nwithout: %s\nwith:    %s", without, with)
	}
}

func TestMatchQuery(t *testing.T) {
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{MatchQuery: "sse"}))
	e.GET("/feed", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if errors.Is(err, echosse.ErrNotRequested) {
			return c.JSON(http.StatusOK, []string{"latest"})
		}
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{Data: "live"})
		}()
		return nil
	})
	srv := serve(t, e)

	res := get(t, srv.URL+"/feed")
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || string(b) != "[\"latest\"]\n" {
		t.Fatalf("without the query key: got %q %q, want the JSON answer", ct, b)
	}
	for _, q := range []string{"?sse", "?sse=", "?sse=1&x=2"} {
		evs := decodeAll(t, get(t, srv.URL+"/feed"+q).Body)
		if len(evs) != 2 || evs[0].Data != "live" || evs[1].Type != "close" {
			t.Fatalf("%s: got %v, want the stream", q, evs)
		}
	}
}

func TestMatchQueryMissUnhandledIs400(t *testing.T) {
	srv, _ := streamApp(t, echosse.Config{MatchQuery: "stream"}, sendThenClose())
	res := get(t, srv.URL+"/events")
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `\"stream\" missing`) {
		t.Fatalf("got %d %q, want 400 naming the query key", res.StatusCode, b)
	}
}

// openConcurrently opens n streams at once and returns the responses.
func openConcurrently(t *testing.T, url string, n int) []*http.Response {
	t.Helper()
	out := make([]*http.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = get(t, url) })
	}
	wg.Wait()
	return out
}

func TestMaxClientsExactlyAtTheLimit(t *testing.T) {
	const max, n = 8, 40
	release := make(chan struct{})
	srv, _ := streamApp(t, echosse.Config{MaxClients: max, RetryAfter: 2 * time.Second}, func(s *echosse.Stream) error {
		go func() {
			defer close(s.C)
			s.Send(event.Event{Comment: "ok"}) // tells the client it is in
			select {
			case <-release:
			case <-s.Context().Done():
			}
		}()
		return nil
	})
	var open []*http.Response
	for _, res := range openConcurrently(t, srv.URL+"/events", n) {
		if res.StatusCode != http.StatusOK {
			t.Fatalf("got status %d, want 200 (the default refusal keeps browsers retrying)", res.StatusCode)
		}
		lines := lineReader{bufioReader(res.Body)}
		switch first := lines.next(t); first {
		case ": ok":
			open = append(open, res)
		case ": too many clients, retry later":
			retry := strings.TrimPrefix(lines.next(t), "retry: ")
			ms, err := strconv.Atoi(retry)
			if err != nil || ms < 2000 || ms > 4000 {
				t.Fatalf("got retry %q, want 2000-4000 ms", retry)
			}
			rest, _ := io.ReadAll(lines.r)
			if string(rest) != "\n" {
				t.Fatalf("refused stream did not end after its retry field: %q", rest)
			}
		default:
			t.Fatalf("unexpected first line %q", first)
		}
	}
	if len(open) != max {
		t.Fatalf("got %d streams open, want exactly %d", len(open), max)
	}
	close(release)
	for _, res := range open {
		io.Copy(io.Discard, res.Body)
	}
	// Every slot is free again.
	again := 0
	for _, res := range openConcurrently(t, srv.URL+"/events", max) {
		if (lineReader{bufioReader(res.Body)}).next(t) == ": ok" {
			again++
		}
	}
	if again != max {
		t.Fatalf("after the streams ended, %d of %d opened", again, max)
	}
}

func TestMaxClientsStrict503(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	srv, _ := streamApp(t, echosse.Config{MaxClients: 1, Overflow: echosse.OverflowUnavailable, RetryAfter: 3 * time.Second},
		func(s *echosse.Stream) error {
			go func() {
				defer close(s.C)
				s.Send(event.Event{Comment: "ok"})
				select {
				case <-hold:
				case <-s.Context().Done():
				}
			}()
			return nil
		})
	first := get(t, srv.URL+"/events")
	if got := (lineReader{bufioReader(first.Body)}).next(t); got != ": ok" {
		t.Fatalf("first stream: got %q", got)
	}
	res := get(t, srv.URL+"/events")
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got status %d, want 503", res.StatusCode)
	}
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs < 3 || secs > 6 {
		t.Fatalf("got Retry-After %q, want 3-6 seconds", res.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(b), "too many clients") {
		t.Fatalf("got body %q", b)
	}
}

// noFlushWriter hides the writer's Flush and Unwrap, as some third-party
// middleware does.
type noFlushWriter struct{ w http.ResponseWriter }

func (n noFlushWriter) Header() http.Header         { return n.w.Header() }
func (n noFlushWriter) Write(b []byte) (int, error) { return n.w.Write(b) }
func (n noFlushWriter) WriteHeader(code int)        { n.w.WriteHeader(code) }

func TestWriterThatCannotFlushGets500BeforeHeaders(t *testing.T) {
	hide := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Writer = noFlushWriter{c.Response().Writer}
			return next(c)
		}
	}
	srv, _ := streamApp(t, echosse.Config{}, sendThenClose(), hide)
	res := get(t, srv.URL+"/events")
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusInternalServerError || res.Header.Get("Content-Type") == "text/event-stream" {
		t.Fatalf("got %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(b), "does not support flushing") {
		t.Fatalf("got body %q, want it to say why", b)
	}
}

func TestOpenWithoutMiddleware(t *testing.T) {
	e := newEcho()
	h := func(c echo.Context) error {
		_, err := echosse.Open(c)
		if !errors.Is(err, echosse.ErrNoMiddleware) {
			t.Errorf("got %v, want ErrNoMiddleware", err)
		}
		return err
	}
	e.GET("/events", h)
	skipped := e.Group("/skipped", echosse.Middleware(echosse.Config{Skipper: func(echo.Context) bool { return true }}))
	skipped.GET("/events", h)
	srv := serve(t, e)
	for _, path := range []string{"/events", "/skipped/events"} {
		if res := get(t, srv.URL+path); res.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%s: got %d, want 500", path, res.StatusCode)
		}
	}
}

func TestScopedToOneRouteWithGzipInFront(t *testing.T) {
	e := newEcho()
	e.Use(middleware.Gzip())
	e.GET("/events", openSendClose(event.Event{Data: "scoped"}), echosse.Middleware(echosse.Config{}))
	e.GET("/plain", func(c echo.Context) error {
		_, err := echosse.Open(c)
		return err
	})
	srv := serve(t, e)
	res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
	evs := decodeAll(t, body(t, res))
	if len(evs) != 2 || evs[0].Data != "scoped" {
		t.Fatalf("got %v", evs)
	}
	if res := get(t, srv.URL+"/plain"); res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("route without the middleware: got %d, want 500", res.StatusCode)
	}
}

// TestHandlerOwnCapGetsTheOverflowAnswer: a handler that returns
// ErrTooManyClients itself, before Open (a cap per user, say), is answered
// as a request over MaxClients is, in both overflow modes.
func TestHandlerOwnCapGetsTheOverflowAnswer(t *testing.T) {
	for _, mode := range []echosse.Overflow{echosse.OverflowRetry, echosse.OverflowUnavailable} {
		t.Run(fmt.Sprint("overflow=", mode), func(t *testing.T) {
			e := newEcho()
			e.Use(echosse.Middleware(echosse.Config{Overflow: mode, RetryAfter: time.Second}))
			e.GET("/events", func(c echo.Context) error {
				return fmt.Errorf("user %s has 3 streams open: %w", c.QueryParam("user"), echosse.ErrTooManyClients)
			})
			res := get(t, serve(t, e).URL+"/events?user=ada")
			b, _ := io.ReadAll(res.Body)
			switch mode {
			case echosse.OverflowRetry:
				var ms int
				if _, err := fmt.Sscanf(string(b), ": too many clients, retry later\nretry: %d\n\n", &ms); err != nil || res.StatusCode != http.StatusOK || ms < 1000 || ms > 2000 {
					t.Fatalf("got %s %q, want 200 with a retry of 1000-2000 ms", res.Status, b)
				}
			case echosse.OverflowUnavailable:
				if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
					t.Fatalf("got %s, Retry-After %q, want 503 with Retry-After", res.Status, res.Header.Get("Retry-After"))
				}
			}
		})
	}
}
