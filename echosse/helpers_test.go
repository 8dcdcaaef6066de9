package echosse_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/event"
)

// newEcho returns an Echo app that logs nowhere.
func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	return e
}

// serve starts e on a real loopback server, torn down with the test.
func serve(t *testing.T, e *echo.Echo) *httptest.Server { return newServer(t, e) }

func newServer(t testing.TB, e *echo.Echo) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// client returns an HTTP client whose idle connections close with the
// test. With gzip set it asks for gzip and leaves decoding to the caller.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// get sends a GET request, optionally asking for gzip.
func get(t *testing.T, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// body returns the response body, decompressed when it is gzip'd. The
// gzip header is read with the first byte of the body, which a stream sends
// with its first event: like net/http's transport, not when the response
// arrives.
func body(t *testing.T, res *http.Response) io.Reader {
	t.Helper()
	if res.Header.Get("Content-Encoding") != "gzip" {
		return res.Body
	}
	return &gunzip{r: res.Body}
}

// gunzip decompresses r, from its first Read on.
type gunzip struct {
	r   io.Reader
	zr  *gzip.Reader
	err error
}

func (g *gunzip) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		g.zr, g.err = gzip.NewReader(g.r)
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}

// decodeAll reads every event until the stream ends.
func decodeAll(t *testing.T, r io.Reader) []event.Event {
	t.Helper()
	var evs []event.Event
	d := event.NewDecoder(r)
	for {
		ev, err := d.Decode()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("decoding: %v", err)
		}
		evs = append(evs, ev)
	}
}

// expectEvent decodes the next event and checks its type and data.
func expectEvent(t *testing.T, d *event.Decoder, typ, data string) {
	t.Helper()
	ev, err := d.Decode()
	if err != nil {
		t.Fatalf("decoding: %v (want event %q %q)", err, typ, data)
	}
	if ev.Type != typ || ev.Data != data {
		t.Fatalf("got event %q %q, want %q %q", ev.Type, ev.Data, typ, data)
	}
}

// lineReader reads raw lines of a stream, comments included.
type lineReader struct{ r *bufio.Reader }

func (l lineReader) next(t *testing.T) string {
	t.Helper()
	s, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// errRecorder collects what a Config.ErrorHandler is told.
type errRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *errRecorder) handle(_ echo.Context, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *errRecorder) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// contextWithCancel returns a context cancelled by the returned function or
// at the end of the test.
func contextWithCancel(t *testing.T) (context.Context, func()) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return ctx, cancel
}

// within returns what ch gives, or fails the test after a generous while.
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
