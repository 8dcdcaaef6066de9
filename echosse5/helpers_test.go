package echosse5_test

import (
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
)

// newEcho returns an Echo app that logs nowhere.
func newEcho() *echo.Echo {
	return echo.NewWithConfig(echo.Config{Logger: slog.New(slog.DiscardHandler)})
}

// serve starts e on a real loopback server, torn down with the test.
func serve(t testing.TB, e *echo.Echo) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// request sends a request with the given header pairs over a client of its
// own, which leaves a gzip'd body to the caller, and closes its
// connections with the test.
func request(t *testing.T, method, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// get sends a GET request.
func get(t *testing.T, url string, header ...string) *http.Response {
	t.Helper()
	return request(t, http.MethodGet, url, header...)
}

// body returns the response body, decompressed when it is gzip'd, from
// its first Read on.
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

// openSendClose is an Echo handler that opens a stream, hands it to
// streams if not nil, and leaves it to a goroutine that sends evs and
// closes the channel.
func openSendClose(streams chan<- *echosse5.Stream, evs ...event.Event) echo.HandlerFunc {
	return func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		if streams != nil {
			streams <- s
		}
		go func() {
			defer close(s.C)
			for _, ev := range evs {
				if s.Send(ev) != nil {
					return
				}
			}
		}()
		return nil
	}
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
