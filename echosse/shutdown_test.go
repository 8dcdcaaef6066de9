package echosse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// rawStream is a stream client on a plain TCP connection, lighter than an
// http.Client when a test holds thousands.
type rawStream struct {
	conn net.Conn
	dec  *event.Decoder
	body io.ReadCloser
}

func dialStream(t testing.TB, addr, path string) *rawStream {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	// Open sends the headers once the stream is open and tracked.
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &rawStream{conn: conn, dec: event.NewDecoder(res.Body), body: res.Body}
}

// startEcho runs e with e.Start on a loopback port, as an application
// would, so that e.Shutdown is the real thing.
func startEcho(t *testing.T, e *echo.Echo) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Listener = ln
	errc := make(chan error, 1)
	go func() { errc <- e.Start("") }()
	t.Cleanup(func() {
		e.Close()
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
	})
	return ln.Addr().String()
}

// shutdownApp serves streams that stay open until they end for a reason,
// and reports each reason.
func shutdownApp(t *testing.T, cfg echosse.Config) (string, *echo.Echo, chan error) {
	reasons := make(chan error, manyStreams)
	e := newEcho()
	e.Use(echosse.Middleware(cfg))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			<-s.Done()
			reasons <- s.Err()
		}()
		return nil
	})
	return startEcho(t, e), e, reasons
}

// TestShutdownEndsEveryStreamPromptly holds manyStreams open streams (5,000
// without the race detector, whose goroutine limit allows fewer) and shuts
// the server down: every client receives the close event, every handler
// learns why, and Shutdown returns in well under its deadline.
func TestShutdownEndsEveryStreamPromptly(t *testing.T) {
	addr, e, reasons := shutdownApp(t, echosse.Config{MaxClients: manyStreams})
	clients := make([]*rawStream, manyStreams)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < manyStreams; i += 8 {
				c := dialStream(t, addr, "/events")
				mu.Lock()
				clients[i] = c
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			c.conn.Close()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	t.Logf("Shutdown with %d open streams took %v", manyStreams, took)
	// Half its deadline: a Shutdown that waited for the streams to time
	// out would take all of it; a loaded machine (the race detector, other
	// packages' tests) has taken over 2 s to end them.
	if took > 5*time.Second {
		t.Fatalf("Shutdown took %v with %d streams, want under 5s, half its deadline", took, manyStreams)
	}
	for i, c := range clients {
		ev, err := c.dec.Decode()
		if err != nil || ev.Type != "close" {
			t.Fatalf("client %d: got %v %v, want the close event", i, ev, err)
		}
		if _, err := c.dec.Decode(); err != io.EOF {
			t.Fatalf("client %d: after the close event got %v, want the end of the response", i, err)
		}
	}
	for range manyStreams {
		if err := <-reasons; !errors.Is(err, echosse.ErrShutdown) {
			t.Fatalf("got reason %v, want ErrShutdown", err)
		}
	}
}

func TestShutdownRetryHintInsteadOfCloseEvent(t *testing.T) {
	addr, e, reasons := shutdownApp(t, echosse.Config{ShutdownRetry: time.Second})
	clients := []*rawStream{dialStream(t, addr, "/events"), dialStream(t, addr, "/events")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		defer c.conn.Close()
		b, err := io.ReadAll(c.body)
		if err != nil {
			t.Fatal(err)
		}
		var ms int
		if _, err := fmt.Sscanf(string(b), ": server shutting down\nretry: %d\n\n", &ms); err != nil || ms < 1000 || ms > 2000 {
			t.Fatalf("got %q, want a retry hint of 1000-2000 ms", b)
		}
	}
	for range clients {
		if err := <-reasons; !errors.Is(err, echosse.ErrShutdown) {
			t.Fatalf("got reason %v, want ErrShutdown", err)
		}
	}
}

// TestShutdownTellsEveryStreamBeforeCallbacksRun shuts down a server whose
// streams' AfterFunc callbacks act on the other streams, as an application
// that publishes a count of pages, or a broker that drops slow clients,
// does: each callback aborts every stream still open. Every stream must
// still get the close event, with ErrShutdown as its reason, and
// ShutdownRetry's hint must go out at MaxDelay without overflowing.
func TestShutdownTellsEveryStreamBeforeCallbacksRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  echosse.Config
	}{
		{"close event", echosse.Config{}},
		{"retry hint at MaxDelay", echosse.Config{ShutdownRetry: echosse.MaxDelay}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200
			var (
				mu   sync.Mutex
				open []*echosse.Stream
			)
			reasons := make(chan error, n)
			e := newEcho()
			e.Use(echosse.Middleware(tc.cfg))
			e.GET("/events", func(c echo.Context) error {
				s, err := echosse.Open(c)
				if err != nil {
					return err
				}
				mu.Lock()
				open = append(open, s)
				mu.Unlock()
				s.AfterFunc(func() {
					reasons <- s.Err() // already set when the callbacks run
					mu.Lock()
					defer mu.Unlock()
					for _, o := range open {
						o.Abort(errors.New("ended by another stream's callback"))
					}
				})
				return nil
			})
			addr := startEcho(t, e)
			clients := make([]*rawStream, n)
			for i := range clients {
				clients[i] = dialStream(t, addr, "/events")
				defer clients[i].conn.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			got := 0
			for _, c := range clients {
				b, err := io.ReadAll(c.body)
				if err != nil {
					t.Fatal(err)
				}
				if tc.cfg.ShutdownRetry == 0 && string(b) == "event: close\ndata:\n\n" {
					got++
				}
				var ms int64
				if tc.cfg.ShutdownRetry > 0 {
					if _, err := fmt.Sscanf(string(b), ": server shutting down\nretry: %d\n\n", &ms); err == nil &&
						ms >= echosse.MaxDelay.Milliseconds() && ms <= 2*echosse.MaxDelay.Milliseconds() {
						got++
					}
				}
			}
			if got != n {
				t.Errorf("%d of %d streams got the shutdown frame", got, n)
			}
			for range n {
				if err := <-reasons; !errors.Is(err, echosse.ErrShutdown) {
					t.Fatalf("a callback saw Err() = %v, want ErrShutdown", err)
				}
			}
		})
	}
}
