package echosse5_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
)

// rawHead sends a HEAD request for path over a connection of its own and
// reads the answer until the server ends it.
func rawHead(t *testing.T, addr, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "HEAD " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	for i := 0; i+1 < len(header); i += 2 {
		req += header[i] + ": " + header[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br) // the server closes the connection once the answer is complete
	if err != nil {
		t.Fatalf("reading to the end of the answer: %v (the stream did not end?)", err)
	}
	return res, rest
}

// TestHeadGetsTheHeadersOnly sends HEAD to a stream route: one that takes
// HEAD itself, and a GET route that Echo's router answers HEAD for
// (AutoHandleHEAD), whose writer holds back the headers and makes flushes
// no-ops; with Echo's Gzip in front or not. Each answer is the GET's
// headers and no body, sent at once, and the stream has ended.
func TestHeadGetsTheHeadersOnly(t *testing.T) {
	for _, tt := range []struct {
		name string
		gzip bool
	}{{"plain", false}, {"behind Gzip", true}} {
		t.Run(tt.name, func(t *testing.T) {
			streams := make(chan *echosse5.Stream, 4)
			e := echo.NewWithConfig(echo.Config{
				Logger: newEcho().Logger,
				Router: echo.NewRouter(echo.RouterConfig{AutoHandleHEAD: true}),
			})
			if tt.gzip {
				e.Use(middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1024}))
			}
			e.Use(echosse5.Middleware(echosse5.Config{Retry: time.Second}))
			h := openSendClose(streams, event.Event{Data: "for GET only"})
			e.GET("/events", h)
			e.Any("/any", h)
			srv := serve(t, e)
			addr := srv.Listener.Addr().String()
			var enc []string
			if tt.gzip {
				enc = []string{"Accept-Encoding", "gzip"}
			}

			getRes := get(t, srv.URL+"/events", enc...)
			if evs := decodeAll(t, body(t, getRes)); len(evs) != 2 {
				t.Fatalf("GET: got %v, want the event and the close event", evs)
			}
			<-streams
			for _, path := range []string{"/events", "/any"} {
				res, rest := rawHead(t, addr, path, enc...)
				if res.StatusCode != http.StatusOK || len(rest) != 0 {
					t.Fatalf("HEAD %s: got %s with body %q, want 200 and nothing", path, res.Status, rest)
				}
				for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering", "Content-Encoding", "Vary", "Content-Length"} {
					if got, want := res.Header.Values(k), getRes.Header.Values(k); strings.Join(got, ",") != strings.Join(want, ",") {
						t.Errorf("HEAD %s: %s %q, want the GET's %q", path, k, got, want)
					}
				}
				s := within(t, "the HEAD stream", streams)
				within(t, "the HEAD stream's end", s.Done())
				if !errors.Is(s.Err(), echosse5.ErrClosed) {
					t.Errorf("HEAD %s: stream ended with %v, want ErrClosed", path, s.Err())
				}
			}
		})
	}
}

// TestHeadWithoutAutoHandling: a GET stream route without AutoHandleHEAD
// does not answer HEAD, and opens no stream for it.
func TestHeadWithoutAutoHandling(t *testing.T) {
	streams := make(chan *echosse5.Stream, 1)
	e := newEcho()
	e.Use(echosse5.Middleware(echosse5.Config{}))
	e.GET("/events", openSendClose(streams))
	res, _ := rawHead(t, serve(t, e).Listener.Addr().String(), "/events")
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("got %s, want 405", res.Status)
	}
	select {
	case <-streams:
		t.Fatal("a stream opened")
	default:
	}
}
