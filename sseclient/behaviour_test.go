package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

// Answers that end the stream for good, and those that do not.
func TestResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		retry       func(int) bool
		wantErr     error
		wantCode    int
	}{
		{"204 ends", http.StatusNoContent, "", nil, sseclient.ErrNoContent, 0},
		{"204 ends even when statuses are retried", http.StatusNoContent, "", sseclient.Transient, sseclient.ErrNoContent, 0},
		{"500 ends by default", http.StatusInternalServerError, "text/event-stream", nil, sseclient.ErrStatus, 500},
		{"503 ends by default", http.StatusServiceUnavailable, "", nil, sseclient.ErrStatus, 503},
		{"404 ends when 5xx are retried", http.StatusNotFound, "", sseclient.Transient, sseclient.ErrStatus, 404},
		{"201 ends", http.StatusCreated, "text/event-stream", nil, sseclient.ErrStatus, 201},
		{"text/plain ends", http.StatusOK, "text/plain", nil, sseclient.ErrContentType, 0},
		{"no Content-Type ends", http.StatusOK, "-", nil, sseclient.ErrContentType, 0},
		{"text/event-streams ends", http.StatusOK, "text/event-streams", nil, sseclient.ErrContentType, 0},
		{"parameters ignored", http.StatusOK, "text/event-stream; charset=utf-8", nil, sseclient.ErrNoContent, 0},
		{"case ignored", http.StatusOK, "Text/Event-Stream", nil, sseclient.ErrNoContent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) > 1 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				switch tt.contentType {
				case "-":
					w.Header()["Content-Type"] = nil
				case "":
				default:
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, "data: x\n\n")
			}))
			c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, RetryStatus: tt.retry}
			evs, err := collect(t, c, get(t, srv.URL), 10*time.Second)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "sseclient: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			var se *sseclient.StatusError
			if tt.wantCode != 0 && (!errors.As(err, &se) || se.Code != tt.wantCode) {
				t.Errorf("got %v, want a *StatusError with code %d", err, tt.wantCode)
			}
			wantEvents := 0
			if tt.status == http.StatusOK && tt.wantErr == sseclient.ErrNoContent {
				wantEvents = 1
			}
			if len(evs) != wantEvents {
				t.Errorf("got %d events, want %d", len(evs), wantEvents)
			}
		})
	}
}

// A redirect is followed, to the stream it points at.
func TestRedirect(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/old":
			http.Redirect(w, r, "/new", http.StatusFound)
		case n.Add(1) == 1:
			streamHead(w)
			io.WriteString(w, "id: 1\ndata: moved\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond}
	evs, err := collect(t, c, get(t, srv.URL+"/old"), 10*time.Second)
	if !errors.Is(err, sseclient.ErrNoContent) || fmt.Sprint(evs) != fmt.Sprint([]got{{"message", "moved", "1"}}) {
		t.Errorf("got %v, %v", evs, err)
	}
}

// requestTimes is a handler that ends each stream at once, after writing
// first, and answers 204 after n requests; it records when each came.
type requestTimes struct {
	mu    sync.Mutex
	times []time.Time
	n     int
	first func(w http.ResponseWriter, k int)
}

func (rt *requestTimes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	rt.times = append(rt.times, time.Now())
	k := len(rt.times)
	rt.mu.Unlock()
	if k > rt.n {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rt.first(w, k)
}

func (rt *requestTimes) gaps() []time.Duration {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(rt.times); i++ {
		gaps = append(gaps, rt.times[i].Sub(rt.times[i-1]))
	}
	return gaps
}

// The server's retry field sets the wait between a stream's end and the
// next request.
func TestRetryDelay(t *testing.T) {
	t.Parallel()
	rt := &requestTimes{n: 4, first: func(w http.ResponseWriter, k int) {
		streamHead(w)
		if k == 1 {
			io.WriteString(w, "retry: 80\n\n")
		}
		io.WriteString(w, "data: x\n\n")
	}}
	srv, hc := newServer(t, rt)
	var delays []time.Duration
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Hour, OnRetry: func(_ error, d time.Duration) { delays = append(delays, d) }}
	evs, err := collect(t, c, get(t, srv.URL), 10*time.Second)
	if !errors.Is(err, sseclient.ErrNoContent) || len(evs) != 4 {
		t.Fatalf("got %d events, %v; want 4, ErrNoContent", len(evs), err)
	}
	for _, ev := range evs {
		if ev.Data != "x" {
			t.Errorf("got %q", ev)
		}
	}
	if fmt.Sprint(delays) != "[80ms 80ms 80ms 80ms]" {
		t.Errorf("OnRetry delays: got %v, want 80ms each", delays)
	}
	for _, g := range rt.gaps() {
		if g < 80*time.Millisecond || g > 80*time.Millisecond+time.Second {
			t.Errorf("gap between requests: got %v, want 80ms (up to a second more)", g)
		}
	}
}

// Failed attempts in a row back off exponentially, with jitter, within
// MinBackoff and MaxBackoff; a stream that opens resets the count.
func TestBackoff(t *testing.T) {
	t.Parallel()
	const min, max = 20 * time.Millisecond, 80 * time.Millisecond
	rt := &requestTimes{n: 7, first: func(w http.ResponseWriter, k int) {
		if k == 6 {
			streamHead(w)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}}
	srv, hc := newServer(t, rt)
	var delays []time.Duration
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond, MinBackoff: min, MaxBackoff: max, RetryStatus: sseclient.Transient,
		OnRetry: func(_ error, d time.Duration) { delays = append(delays, d) }}
	_, err := collect(t, c, get(t, srv.URL), 10*time.Second)
	if !errors.Is(err, sseclient.ErrNoContent) {
		t.Fatalf("got %v, want ErrNoContent", err)
	}
	// Five 503s: waits of 10-20, 20-40, 40-80, 40-80, 40-80 ms; then a
	// stream ends and the client waits Retry; then a 503 again, the first
	// of a new run; then 204.
	bounds := [][2]time.Duration{{10, 20}, {20, 40}, {40, 80}, {40, 80}, {40, 80}, {1, 1}, {10, 20}}
	if len(delays) != len(bounds) {
		t.Fatalf("got delays %v, want %d", delays, len(bounds))
	}
	gaps := rt.gaps()
	for i, b := range bounds {
		lo, hi := b[0]*time.Millisecond, b[1]*time.Millisecond
		if delays[i] < lo || delays[i] > hi {
			t.Errorf("delay %d: got %v, want between %v and %v", i+1, delays[i], lo, hi)
		}
		if gaps[i] < lo || gaps[i] > hi+time.Second {
			t.Errorf("gap %d: got %v, want between %v and %v (and up to a second more)", i+1, gaps[i], lo, hi)
		}
	}
}

// Retry-After, in seconds or as an HTTP date, is a floor under the wait.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for _, date := range []bool{false, true} {
		t.Run(fmt.Sprintf("date=%v", date), func(t *testing.T) {
			t.Parallel()
			rt := &requestTimes{n: 1, first: func(w http.ResponseWriter, k int) {
				if date {
					w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
				} else {
					w.Header().Set("Retry-After", "1")
				}
				w.WriteHeader(http.StatusTooManyRequests)
			}}
			srv, hc := newServer(t, rt)
			c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, RetryStatus: sseclient.Transient}
			_, err := collect(t, c, get(t, srv.URL), 10*time.Second)
			if !errors.Is(err, sseclient.ErrNoContent) {
				t.Fatalf("got %v, want ErrNoContent", err)
			}
			// An HTTP date has whole seconds: 2 s from now is at least 1 s.
			if g := rt.gaps(); len(g) != 1 || g[0] < time.Second || g[0] > 3*time.Second {
				t.Errorf("got gaps %v, want one of 1 to 3 s", g)
			}
		})
	}
}

func TestStatusErrorRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		give string
		ok   bool
	}{{"", false}, {"3", true}, {"-1", false}, {"soon", false}, {time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), true}} {
		se := &sseclient.StatusError{Code: 503, Header: http.Header{"Retry-After": {tt.give}}}
		d, ok := se.RetryAfter()
		if ok != tt.ok || d < 0 || (tt.give == "3" && d != 3*time.Second) {
			t.Errorf("Retry-After %q: got %v, %v", tt.give, d, ok)
		}
	}
	if got := (&sseclient.StatusError{Code: 503, Status: "503 Service Unavailable"}).Error(); got != "sseclient: unexpected status 503 Service Unavailable" {
		t.Errorf("got %q", got)
	}
}

// A POST whose body can be made again (GetBody) reconnects with the same
// body; one whose body cannot ends, when it would reconnect, with
// ErrBodyNotReplayable.
func TestPost(t *testing.T) {
	t.Parallel()
	const body = `{"topic":"prices"}`
	var mu sync.Mutex
	var bodies []string
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Method+" "+r.Header.Get("Content-Type")+" "+string(b))
		n := len(bodies)
		mu.Unlock()
		if string(b) != body || r.Method != http.MethodPost || n == 3 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHead(w)
		fmt.Fprintf(w, "id: %d\ndata: %d\n\n", n, n)
	}))
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond}

	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	evs, err := collect(t, c, req, 10*time.Second)
	if !errors.Is(err, sseclient.ErrNoContent) || fmt.Sprint(evs) != fmt.Sprint([]got{{"message", "1", "1"}, {"message", "2", "2"}}) {
		t.Errorf("with GetBody: got %v, %v", evs, err)
	}
	want := "POST application/json " + body
	if fmt.Sprint(bodies) != fmt.Sprint([]string{want, want, want}) {
		t.Errorf("got requests %q", bodies)
	}

	mu.Lock()
	bodies = nil
	mu.Unlock()
	req, err = http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	evs, err = collect(t, c, req, 10*time.Second)
	if !errors.Is(err, sseclient.ErrBodyNotReplayable) || !errors.Is(err, sseclient.ErrStreamEnded) || len(evs) != 1 {
		t.Errorf("without GetBody: got %v, %v; want one event, then ErrBodyNotReplayable wrapping ErrStreamEnded", evs, err)
	}
	if len(bodies) != 1 {
		t.Errorf("without GetBody: got %d requests, want 1", len(bodies))
	}
}

// BeforeRequest runs before every request and may change it; its error
// ends the stream.
func TestBeforeRequest(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var tokens []string
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, r.Header.Get("Authorization"))
		mu.Unlock()
		streamHead(w)
		io.WriteString(w, "data: x\n\n")
	}))
	n := 0
	boom := errors.New("no token left")
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond, BeforeRequest: func(r *http.Request) error {
		if n++; n > 3 {
			return boom
		}
		r.Header.Set("Authorization", fmt.Sprintf("Bearer %d", n))
		return nil
	}}
	evs, err := collect(t, c, get(t, srv.URL), 10*time.Second)
	if !errors.Is(err, boom) || len(evs) != 3 {
		t.Errorf("got %d events, %v; want 3, the hook's error", len(evs), err)
	}
	if fmt.Sprint(tokens) != "[Bearer 1 Bearer 2 Bearer 3]" {
		t.Errorf("got tokens %q", tokens)
	}
}

// A connection on which nothing arrives for ReadIdleTimeout is dropped and
// the client reconnects; heartbeat comments keep it alive, and time spent
// in the loop body does not count.
func TestReadIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 150 * time.Millisecond
	var n atomic.Int64
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		if k > 2 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHead(w)
		if k == 2 {
			// Heartbeats for three times the idle timeout, then an
			// event and the end.
			for range 9 {
				io.WriteString(w, ": ping\n")
				http.NewResponseController(w).Flush()
				time.Sleep(idle / 3)
			}
			io.WriteString(w, "data: after the heartbeats\n\n")
			return
		}
		io.WriteString(w, "id: 1\ndata: then silence\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // half-open: holds the connection, sends nothing
	}))
	var reasons []error
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond, ReadIdleTimeout: idle,
		OnRetry: func(reason error, _ time.Duration) { reasons = append(reasons, reason) }}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var evs []got
	var err error
	for ev, e := range c.Events(ctx, get(t, srv.URL)) {
		if err = e; e != nil {
			break
		}
		evs = append(evs, gotFrom(t, ev))
		time.Sleep(2 * idle) // a slow loop body is not an idle connection
	}
	if !errors.Is(err, sseclient.ErrNoContent) {
		t.Fatalf("got %v, want ErrNoContent", err)
	}
	if fmt.Sprint(evs) != fmt.Sprint([]got{{"message", "then silence", "1"}, {"message", "after the heartbeats", "1"}}) {
		t.Errorf("got %v", evs)
	}
	if len(reasons) != 2 || !errors.Is(reasons[0], sseclient.ErrIdleTimeout) || !errors.Is(reasons[1], sseclient.ErrStreamEnded) {
		t.Errorf("got reasons %v, want ErrIdleTimeout then ErrStreamEnded", reasons)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// Cancelling the context while the client waits to reconnect, or while it
// reads, ends the loop at once with the context's error; breaking out of
// the loop closes the connection.
func TestCancel(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 10)
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streamHead(w)
		io.WriteString(w, "data: x\n\n")
		http.NewResponseController(w).Flush()
		if r.URL.Path == "/end" {
			return
		}
		<-r.Context().Done()
		closed <- struct{}{}
	}))
	for _, path := range []string{"/end", "/hold"} {
		t.Run("mid-"+map[string]string{"/end": "wait", "/hold": "read"}[path], func(t *testing.T) {
			c := &sseclient.Client{HTTPClient: hc, Retry: time.Hour}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var err error
			var cancelled time.Time
			for _, e := range c.Events(ctx, get(t, srv.URL+path)) {
				if err = e; e != nil {
					break
				}
				time.AfterFunc(50*time.Millisecond, func() { cancelled = time.Now(); cancel() })
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			if d := time.Since(cancelled); d > time.Second {
				t.Errorf("returned %v after the cancel", d)
			}
		})
	}
	<-closed // the held stream's server side saw its connection close
	t.Run("break", func(t *testing.T) {
		c := &sseclient.Client{HTTPClient: hc}
		for range c.Events(context.Background(), get(t, srv.URL+"/hold")) {
			break
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Error("the server still holds the stream 5 s after the loop ended")
		}
	})
}

// An event longer than MaxEventSize ends the stream with ErrEventTooLarge,
// never cut short; the default bound admits a large one.
func TestMaxEventSize(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 1<<20)
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHead(w)
		io.WriteString(w, "id: 1\ndata: small\n\ndata: "+big+"\n\n")
	}))
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond, MaxEventSize: 1000}
	evs, err := collect(t, c, get(t, srv.URL), 10*time.Second)
	if !errors.Is(err, sseclient.ErrEventTooLarge) || !errors.Is(err, event.ErrEventTooLarge) || len(evs) != 1 {
		t.Errorf("got %d events, %v; want 1, ErrEventTooLarge", len(evs), err)
	}
	if !strings.HasPrefix(err.Error(), "sseclient: ") {
		t.Errorf("got %q, want the package prefix", err)
	}
	c.MaxEventSize = 0
	evs, err = collect(t, c, get(t, srv.URL), 10*time.Second)
	if !errors.Is(err, sseclient.ErrNoContent) || len(evs) != 2 || evs[1].Data != big {
		t.Errorf("default bound: got %d events, %v", len(evs), err)
	}
}

// Through echosse behind Echo's Gzip middleware, over HTTP/2 with TLS, the
// events arrive decoded, one by one, and the client reconnects.
func TestGzipHTTP2(t *testing.T) {
	t.Parallel()
	var protos, encodings sync.Map
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			protos.Store(c.Request().Proto, true)
			err := next(c)
			encodings.Store(c.Response().Header().Get("Content-Encoding"), true)
			return err
		}
	})
	e.Use(middleware.Gzip())
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/", func(c echo.Context) error {
		if c.Request().Header.Get("Last-Event-ID") == "2" {
			return c.NoContent(http.StatusNoContent)
		}
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{ID: "1", Data: "one"})
			s.Send(event.Event{ID: "2", Data: "two"})
		}()
		return nil
	})
	srv := httptest.NewUnstartedServer(e)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	hc := srv.Client()
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		srv.Close()
	})
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond}
	evs, err := collect(t, c, get(t, srv.URL), 10*time.Second)
	want := []got{{"message", "one", "1"}, {"message", "two", "2"}, {"close", "", "2"}}
	if !errors.Is(err, sseclient.ErrNoContent) || fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Errorf("got %v, %v; want %v, ErrNoContent", evs, err, want)
	}
	if _, ok := protos.Load("HTTP/2.0"); !ok {
		t.Error("no request came over HTTP/2")
	}
	if _, ok := encodings.Load("gzip"); !ok {
		t.Error("no response was gzipped")
	}
}
