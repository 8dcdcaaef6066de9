package echosse_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// rawRequest sends a hand-written request and returns the status line and
// whatever else the server sends before it ends the response or a second
// passes.
func rawRequest(t *testing.T, addr, req string) (string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	b, _ := io.ReadAll(conn)
	status, rest, _ := strings.Cut(string(b), "\r\n")
	return status, rest
}

// TestHostileRequests sends odd and hostile requests to a stream route
// limited to one client: each gets a clear answer, and none holds the slot
// (a well-behaved client opens a stream afterwards).
func TestHostileRequests(t *testing.T) {
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{MaxClients: 1}))
	h := func(c echo.Context) error {
		if c.Request().Method == http.MethodPost {
			if _, err := io.ReadAll(c.Request().Body); err != nil {
				return err
			}
		}
		return openSendClose(event.Event{Data: "hello"})(c)
	}
	e.Match([]string{http.MethodGet, http.MethodHead, http.MethodPost}, "/events", h)
	srv := serve(t, e)
	addr := srv.Listener.Addr().String()

	for _, tt := range []struct {
		name       string
		req        string
		wantStatus string
		wantInBody string
	}{
		// A browser answered with anything but 200 gives up for good.
		{"huge Last-Event-ID streams", "GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nLast-Event-ID: " + strings.Repeat("9", 100_000) + "\r\n\r\n", "200", "data: hello"},
		{"Last-Event-ID not UTF-8 streams", "GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nLast-Event-ID: \xff\xfe\r\n\r\n", "200", "data: hello"},
		{"header over the server's limit", "GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: " + strings.Repeat("9", 2<<20) + "\r\n\r\n", "431", ""},
		{"odd Accept header still streams", "GET /events HTTP/1.1\r\nHost: x\r\nAccept: image/png;q=0.1, */*;q=bogus\r\nConnection: close\r\n\r\n", "200", "data: hello"},
		{"HEAD gets the headers only", "HEAD /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200", "text/event-stream"},
		{"POST streams after its body is read", "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", "200", "data: hello"},
		{"GET with a body that never finishes", "GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc", "400", "must not have a body"},
		{"PUT is not a stream route", "PUT /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "405", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, rest := rawRequest(t, addr, tt.req)
			if !strings.Contains(status, " "+tt.wantStatus+" ") {
				t.Fatalf("got %q, want status %s", status, tt.wantStatus)
			}
			if !strings.Contains(rest, tt.wantInBody) {
				t.Fatalf("got %q, want it to contain %q", rest, tt.wantInBody)
			}
			if strings.HasPrefix(tt.name, "HEAD") && strings.Contains(rest, "data:") {
				t.Fatalf("HEAD got a body: %q", rest)
			}
			// The slot is free: a normal client streams.
			evs := decodeAll(t, get(t, srv.URL+"/events").Body)
			if len(evs) != 2 || evs[0].Data != "hello" {
				t.Fatalf("after %s, a normal client got %v", tt.name, evs)
			}
		})
	}
}

// TestReconnectStorm connects manyStreams clients at once to a server that
// allows a fifth of them: exactly that many streams open, the others are
// refused as configured, other routes keep answering, and every slot is
// free once the streams end.
func TestReconnectStorm(t *testing.T) {
	for _, mode := range []echosse.Overflow{echosse.OverflowRetry, echosse.OverflowUnavailable} {
		t.Run(fmt.Sprint("overflow=", mode), func(t *testing.T) {
			max := manyStreams / 5
			release := make(chan struct{})
			e := newEcho()
			e.Use(echosse.Middleware(echosse.Config{MaxClients: max, Overflow: mode}))
			e.GET("/events", func(c echo.Context) error {
				s, err := echosse.Open(c)
				if err != nil {
					return err
				}
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
			e.GET("/health", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
			srv := serve(t, e)
			addr := srv.Listener.Addr().String()

			var opened, refused atomic.Int64
			var mu sync.Mutex
			var conns []net.Conn
			var wg sync.WaitGroup
			jobs := make(chan struct{})
			for range 64 {
				wg.Go(func() {
					for range jobs {
						conn, body, status := openRaw(t, addr)
						switch {
						case status == http.StatusOK && strings.HasPrefix(body, ": ok"):
							opened.Add(1)
							mu.Lock()
							conns = append(conns, conn)
							mu.Unlock()
							continue
						case mode == echosse.OverflowRetry && status == http.StatusOK && strings.Contains(body, "retry: "):
							refused.Add(1)
						case mode == echosse.OverflowUnavailable && status == http.StatusServiceUnavailable:
							refused.Add(1)
						default:
							t.Errorf("unexpected answer %d %q", status, body)
						}
						conn.Close()
					}
				})
			}
			// Other routes answer in the middle of the storm.
			healthDone := make(chan error, 1)
			go func() {
				res, err := http.Get(srv.URL + "/health")
				if err == nil {
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				healthDone <- err
			}()
			for range manyStreams {
				jobs <- struct{}{}
			}
			close(jobs)
			wg.Wait()
			if err := <-healthDone; err != nil {
				t.Fatalf("other route during the storm: %v", err)
			}
			if opened.Load() != int64(max) || refused.Load() != int64(manyStreams-max) {
				t.Fatalf("got %d opened and %d refused, want %d and %d", opened.Load(), refused.Load(), max, manyStreams-max)
			}
			close(release)
			for _, c := range conns {
				c.Close()
			}
			// Every slot comes back.
			waitFor(t, "every slot to be free", func() bool {
				conn, body, _ := openRaw(t, addr)
				defer conn.Close()
				return strings.HasPrefix(body, ": ok")
			})
			var again []net.Conn
			for range max {
				conn, body, _ := openRaw(t, addr)
				again = append(again, conn)
				if !strings.HasPrefix(body, ": ok") {
					t.Fatalf("slot still held after the storm: %q", body)
				}
			}
			for _, c := range again {
				c.Close()
			}
		})
	}
}

// openRaw opens a stream request and returns the connection, the first
// bytes of the body and the status.
func openRaw(t *testing.T, addr string) (net.Conn, string, int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return nopConn{}, "", 0
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/events", nil)
	req.Write(conn)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Error(err)
		return conn, "", 0
	}
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(res.Body, buf, 4)
	conn.SetReadDeadline(time.Time{})
	return conn, string(buf[:n]), res.StatusCode
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// TestStalledClientsAreDroppedWithBoundedMemory holds clients that never
// read while every stream is sent large events: each is dropped after the
// write timeout, and the server's heap stays bounded meanwhile.
func TestStalledClientsAreDroppedWithBoundedMemory(t *testing.T) {
	n := manyStreams / 5
	const heapBound = 256 << 20
	big := strings.Repeat("x", 16<<10) // shared by every event: not copied per client
	reasons := make(chan error, n)
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{WriteTimeout: 500 * time.Millisecond, ErrorHandler: func(echo.Context, error) {}}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			for s.Send(event.Event{Data: big}) == nil {
			}
			<-s.Done()
			reasons <- s.Err()
		}()
		return nil
	})
	// Small send buffers on the server's side, so that a client that
	// does not read blocks the server's writes after a few kilobytes.
	srv := httptest.NewUnstartedServer(e)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	addr := srv.Listener.Addr().String()
	var conns []net.Conn
	for range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
		conns = append(conns, conn)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var peak uint64
	deadline := time.After(60 * time.Second)
	for got := 0; got < n; {
		select {
		case err := <-reasons:
			if !errors.Is(err, echosse.ErrWriteTimeout) {
				t.Fatalf("got reason %v, want ErrWriteTimeout", err)
			}
			got++
		case <-time.After(50 * time.Millisecond):
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		case <-deadline:
			t.Fatalf("only %d of %d stalled clients dropped", got, n)
		}
	}
	t.Logf("%d stalled clients dropped; peak heap in use %d MiB", n, peak>>20)
	if peak > heapBound {
		t.Fatalf("peak heap %d MiB, want under %d MiB", peak>>20, heapBound>>20)
	}
}

// TestHTTP2 streams over HTTP/2, with TLS and unencrypted (h2c): events
// arrive one by one, several streams share one connection, and a client
// that resets one stream leaves the others running.
func TestHTTP2(t *testing.T) {
	for _, tlsOn := range []bool{true, false} {
		t.Run(map[bool]string{true: "tls", false: "h2c"}[tlsOn], func(t *testing.T) {
			acks := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
			var conns atomic.Int64
			e := newEcho()
			e.Use(echosse.Middleware(echosse.Config{}))
			e.GET("/events", func(c echo.Context) error {
				if c.Request().ProtoMajor != 2 {
					return fmt.Errorf("got HTTP/%d, want HTTP/2", c.Request().ProtoMajor)
				}
				var n int
				fmt.Sscan(c.QueryParam("n"), &n)
				s, err := echosse.Open(c)
				if err != nil {
					return err
				}
				go func() {
					defer close(s.C)
					for i := 0; ; i++ {
						if s.Send(event.Event{ID: fmt.Sprint(i), Data: fmt.Sprint("tick ", i)}) != nil {
							return
						}
						select {
						case <-acks[n]:
						case <-s.Context().Done():
							return
						}
					}
				}()
				return nil
			})
			srv := httptest.NewUnstartedServer(e)
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					conns.Add(1)
				}
			}
			tr := &http.Transport{}
			if tlsOn {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				tr = srv.Client().Transport.(*http.Transport).Clone()
				tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
				tr.ForceAttemptHTTP2 = true
			} else {
				srv.Config.Protocols = new(http.Protocols)
				srv.Config.Protocols.SetUnencryptedHTTP2(true)
				srv.Start()
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
			t.Cleanup(tr.CloseIdleConnections)
			hc := &http.Client{Transport: tr}

			type stream struct {
				res    *http.Response
				dec    *event.Decoder
				cancel func()
			}
			var streams []stream
			for n := range 3 {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprint(srv.URL, "/events?n=", n), nil)
				ctx, cancel := contextWithCancel(t)
				res, err := hc.Do(req.WithContext(ctx))
				if err != nil {
					t.Fatal(err)
				}
				if res.ProtoMajor != 2 {
					t.Fatalf("got %s, want HTTP/2", res.Proto)
				}
				streams = append(streams, stream{res, event.NewDecoder(res.Body), cancel})
				t.Cleanup(func() { res.Body.Close() })
			}
			for i := range 3 {
				for n, s := range streams {
					expectEvent(t, s.dec, "message", fmt.Sprint("tick ", i))
					acks[n] <- struct{}{}
				}
			}
			// Reset the first stream; the others go on.
			streams[0].cancel()
			for i := 3; i < 6; i++ {
				for n := 1; n < len(streams); n++ {
					expectEvent(t, streams[n].dec, "message", fmt.Sprint("tick ", i))
					acks[n] <- struct{}{}
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("got %d connections, want the streams to share one", n)
			}
		})
	}
}

// smallSendBuffers is a listener whose connections have small send buffers.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestHTTP2IdleStreamOutlivesWriteTimeout: over HTTP/2 a write deadline
// left set would reset an idle stream when it passes.
func TestHTTP2IdleStreamOutlivesWriteTimeout(t *testing.T) {
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{WriteTimeout: 100 * time.Millisecond, PingInterval: -1}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{Data: "before"})
			time.Sleep(500 * time.Millisecond) // idle for five write timeouts
			s.Send(event.Event{Data: "after"})
		}()
		return nil
	})
	srv := httptest.NewUnstartedServer(e)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr}).Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("got %s, want HTTP/2", res.Proto)
	}
	d := event.NewDecoder(res.Body)
	expectEvent(t, d, "message", "before")
	expectEvent(t, d, "message", "after")
	expectEvent(t, d, "close", "")
}
