package echosse_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

// TestHTTP2StalledConnection opens many streams on one HTTP/2 connection,
// over TLS and h2c, then the client stops reading that connection while
// every stream is sent large events. The server keeps its default HTTP/2
// settings (no WriteByteTimeout). Every stream on the stalled connection
// ends within twice the write timeout with ErrWriteTimeout (or, had it not
// been writing, ErrClientGone); the slots are free, the goroutines gone and
// the heap back where it was; a client on another connection streams on
// throughout.
func TestHTTP2StalledConnection(t *testing.T) {
	for _, tlsOn := range []bool{true, false} {
		t.Run(map[bool]string{true: "tls", false: "h2c"}[tlsOn], func(t *testing.T) {
			testHTTP2StalledConnection(t, tlsOn)
		})
	}
}

func testHTTP2StalledConnection(t *testing.T, tlsOn bool) {
	n := min(manyStreams/5, 500) // streams on the stalled connection
	const wt = time.Second
	// Streams end within two write timeouts: the stream's own reset at
	// the first, the connection's end at the second; plus time for 500
	// pumps to run on a machine whose two cores run other test packages
	// too (CI runs them in parallel).
	bound := 2*wt + 6*time.Second
	big := strings.Repeat("x", 16<<10) // shared by every event: not copied per stream

	var open, probed atomic.Int64 // streams open; probe streams opened
	flood := make(chan struct{})  // closed once the client has stopped reading
	type end struct {
		err error
		at  time.Time
	}
	ends := make(chan end, n)
	healthyEnd := make(chan error, 1)
	e := newEcho()
	// The healthy stream has a middleware of its own, with a write timeout
	// no CPU starvation reaches (CI runs other load tests beside this
	// one): what it shows is that the stall of another connection does
	// not touch it.
	stalledMW := echosse.Middleware(echosse.Config{
		WriteTimeout: wt,
		MaxClients:   n, // a slot held is a probe refused
		ErrorHandler: func(echo.Context, error) {},
	})
	healthyMW := echosse.Middleware(echosse.Config{
		WriteTimeout: time.Minute,
		ErrorHandler: func(echo.Context, error) {},
	})
	handler := func(c echo.Context) error {
		if c.Request().ProtoMajor != 2 {
			return fmt.Errorf("got HTTP/%d, want HTTP/2", c.Request().ProtoMajor)
		}
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		open.Add(1)
		mode := c.QueryParam("mode")
		go func() {
			defer open.Add(-1)
			switch mode {
			case "healthy": // a small event every 20ms
				for i := 0; s.Send(event.Event{ID: fmt.Sprint(i)}) == nil; i++ {
					select {
					case <-time.After(20 * time.Millisecond):
					case <-s.Context().Done():
					}
				}
				<-s.Done()
				healthyEnd <- s.Err()
			case "stalled": // large events, as fast as the stream takes them
				select {
				case <-flood:
				case <-s.Context().Done():
				}
				for s.Send(event.Event{Data: big}) == nil {
				}
				<-s.Done()
				ends <- end{s.Err(), time.Now()}
			case "probe":
				probed.Add(1)
				<-s.Context().Done()
				<-s.Done()
			}
		}()
		return nil
	}
	e.GET("/events", handler, stalledMW)
	e.GET("/healthy", handler, healthyMW)

	srv := httptest.NewUnstartedServer(e)
	// Small send buffers, so that the connection's writes block soon.
	srv.Listener = smallSendBuffers{srv.Listener}
	if n > 250 {
		// Only so that one connection carries every stream (250 by
		// default); WriteByteTimeout stays unset.
		srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: n + 10}
	}
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsOn {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
	}
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	newClient := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
		tr := &http.Transport{DialContext: dial, DisableCompression: true}
		if tlsOn {
			tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			tr.ForceAttemptHTTP2 = true
		} else {
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	openStream := func(hc *http.Client, mode string) *http.Response {
		t.Helper()
		path := "/events"
		if mode == "healthy" {
			path = "/healthy"
		}
		res, err := hc.Get(srv.URL + path + "?mode=" + mode)
		if err != nil {
			t.Fatal(err)
		}
		if res.ProtoMajor != 2 {
			t.Fatalf("got %s, want HTTP/2", res.Proto)
		}
		return res
	}

	// A healthy client on a connection of its own reads all along.
	healthy := openStream(newClient(nil), "healthy")
	t.Cleanup(func() { healthy.Body.Close() })
	var healthyEvents atomic.Int64
	healthyDone := make(chan struct{})
	go func() {
		defer close(healthyDone)
		d := event.NewDecoder(healthy.Body)
		for {
			if _, err := d.Decode(); err != nil {
				return
			}
			healthyEvents.Add(1)
		}
	}()
	t.Cleanup(func() { healthy.Body.Close(); <-healthyDone })
	waitFor(t, "the healthy stream", func() bool { return healthyEvents.Load() > 0 })

	runtime.GC()
	waitFor(t, "a quiet process", settled())
	baseG := serverGoroutines()
	baseHeap := heapInUse()

	// The stalled client: every stream on one connection that stops being
	// read once all are open.
	var stalls []*stallingConn
	var stallsMu sync.Mutex
	t.Cleanup(func() {
		stallsMu.Lock()
		defer stallsMu.Unlock()
		for _, c := range stalls {
			c.Close()
		}
	})
	dialer := &net.Dialer{}
	hc := newClient(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
		sc := &stallingConn{Conn: c, stop: make(chan struct{}), closed: make(chan struct{})}
		stallsMu.Lock()
		stalls = append(stalls, sc)
		stallsMu.Unlock()
		return sc, nil
	})
	for range n {
		res := openStream(hc, "stalled")
		t.Cleanup(func() { res.Body.Close() })
	}
	if got := conns.Load(); got != 2 {
		t.Fatalf("got %d connections, want 2: the healthy client's and one for the %d streams", got, n)
	}
	waitFor(t, "every stream open", func() bool { return open.Load() == int64(n+1) })
	stallsMu.Lock()
	stalls[0].stall()
	stallsMu.Unlock()
	stalledAt := time.Now()
	close(flood)

	// Every stalled stream ends, within the bound.
	var peakHeap uint64
	var timeouts, gone int
	var last time.Time
	got := 0
	record := func(end end) {
		switch {
		case errors.Is(end.err, echosse.ErrWriteTimeout):
			timeouts++
		case errors.Is(end.err, echosse.ErrClientGone):
			gone++
		default:
			t.Fatalf("a stalled stream ended with %v, want ErrWriteTimeout or ErrClientGone", end.err)
		}
		last = end.at
		got++
	}
	deadline := time.After(bound)
	sample := time.NewTicker(50 * time.Millisecond)
	defer sample.Stop()
	for got < n {
		select {
		case end := <-ends:
			record(end)
		case <-sample.C:
			peakHeap = max(peakHeap, heapInUse())
		case <-deadline:
			for len(ends) > 0 && got < n { // arrived in time: select picks at random
				record(<-ends)
			}
			if got == n {
				break
			}
			t.Fatalf("%v after the stall, %d of %d streams on the stalled connection have ended; streams open %d, goroutines %d (%+d), heap in use %d MiB",
				bound, got, n, open.Load(), serverGoroutines(), serverGoroutines()-baseG, heapInUse()>>20)
		}
	}
	freedIn := last.Sub(stalledAt)
	if timeouts == 0 {
		t.Errorf("no stream ended with ErrWriteTimeout (%d with ErrClientGone)", gone)
	}

	// The slots are free: only the healthy stream is open, and n more
	// streams open at once (MaxClients allows n+1).
	select {
	case err := <-healthyEnd:
		t.Fatalf("the healthy stream, on a connection of its own, ended with %v", err)
	default:
	}
	waitFor(t, "the stalled streams' slots", func() bool { return open.Load() == 1 })
	before := healthyEvents.Load()
	waitFor(t, "the healthy stream to go on", func() bool { return healthyEvents.Load() > before+2 })

	// The server's goroutines for the stalled connection are gone (the
	// stalled client still holds its own, not counted: it cannot read
	// that the server has closed the connection).
	var g int
	waitFor(t, "the stalled connection's goroutines to end", func() bool {
		g = serverGoroutines() - baseG
		return g <= 0
	})
	runtime.GC()
	heapAfter := heapInUse()
	t.Logf("%d streams on a stalled connection freed %v after the stall (%d ErrWriteTimeout, %d ErrClientGone); open after: %d (the healthy one); goroutines %+d; heap in use %d MiB before, peak %d MiB, after %d MiB",
		n, freedIn.Round(time.Millisecond), timeouts, gone, open.Load(), g, baseHeap>>20, peakHeap>>20, heapAfter>>20)
	if heapAfter > baseHeap+16<<20 {
		t.Errorf("heap in use %d MiB after the streams ended, %d MiB before", heapAfter>>20, baseHeap>>20)
	}

	probe := newClient(nil)
	var probes []*http.Response
	for range n {
		res := openStream(probe, "probe")
		probes = append(probes, res)
	}
	waitFor(t, "every probe stream", func() bool { return probed.Load() == int64(n) })
	for _, res := range probes {
		res.Body.Close()
	}
	waitFor(t, "the probe streams to end", func() bool { return open.Load() == 1 })
}

// stallingConn is a client's connection that stops reading when told to:
// the server's writes then block once the buffers between them are full.
type stallingConn struct {
	net.Conn
	stop      chan struct{} // closed: Read blocks until Close
	closed    chan struct{}
	stopOnce  sync.Once
	closeOnce sync.Once
}

func (c *stallingConn) stall() { c.stopOnce.Do(func() { close(c.stop) }) }

func (c *stallingConn) Read(p []byte) (int, error) {
	select {
	case <-c.stop:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(p)
	}
}

func (c *stallingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// serverGoroutines counts the goroutines but the HTTP/2 clients'.
func serverGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		if n := runtime.Stack(buf, true); n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "net/http.(*http2clientStream)") && !strings.Contains(g, "net/http.(*http2ClientConn)") {
			n++
		}
	}
	return n
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestHTTP2StreamStalledByFlowControl: a client that reads its connection
// but not one stream's body stalls only that stream, by flow control. The
// stream ends with ErrWriteTimeout, by the server's own reset, and the
// connection is not taken for stalled: another stream on it goes on.
func TestHTTP2StreamStalledByFlowControl(t *testing.T) {
	const wt = 300 * time.Millisecond
	big := strings.Repeat("x", 16<<10)
	ended := make(chan error, 1)
	var conns atomic.Int64
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{WriteTimeout: wt, ErrorHandler: func(echo.Context, error) {}}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		unread := c.QueryParam("mode") == "unread"
		go func() {
			for i := 0; ; i++ {
				ev := event.Event{ID: fmt.Sprint(i)}
				if unread {
					ev.Data = big
				}
				if s.Send(ev) != nil {
					break
				}
				if !unread {
					select {
					case <-time.After(10 * time.Millisecond):
					case <-s.Context().Done():
					}
				}
			}
			<-s.Done()
			if unread {
				ended <- s.Err()
			}
		}()
		return nil
	})
	srv := httptest.NewUnstartedServer(e)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}

	read, err := hc.Get(srv.URL + "/events?mode=read")
	if err != nil {
		t.Fatal(err)
	}
	defer read.Body.Close()
	var got atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		d := event.NewDecoder(read.Body)
		for {
			if _, err := d.Decode(); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	defer func() { read.Body.Close(); <-readDone }()
	unread, err := hc.Get(srv.URL + "/events?mode=unread")
	if err != nil {
		t.Fatal(err)
	}
	defer unread.Body.Close()

	select {
	case err := <-ended:
		if !errors.Is(err, echosse.ErrWriteTimeout) {
			t.Fatalf("the unread stream ended with %v, want ErrWriteTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unread stream did not end")
	}
	// The other stream goes on, on the same connection, well past the
	// stall guard's moment (twice the write timeout).
	before := got.Load()
	time.Sleep(3 * wt)
	if got.Load() < before+10 {
		t.Fatalf("the read stream got %d events in %v after the other one ended, want it to go on", got.Load()-before, 3*wt)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("got %d connections, want 1", n)
	}
}
