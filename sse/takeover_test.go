package sse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// takeoverServer returns a Server with Config.Takeover on.
func takeoverServer(t *testing.T) *sse.Server {
	t.Helper()
	srv, err := sse.New(sse.Config{Takeover: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// takeoverHandler serves streams that send "hi", then close their channel
// once stop is closed (never, if nil); each goes to opened, if not nil.
func takeoverHandler(srv *sse.Server, stop <-chan struct{}, opened chan<- *sse.Stream) http.Handler {
	return srv.Handler(func(s *sse.Stream, r *http.Request) error {
		if opened != nil {
			opened <- s
		}
		s.C <- event.Event{Data: "hi"}
		go func() {
			select {
			case <-stop:
				close(s.C)
			case <-s.Done():
			}
		}()
		return nil
	})
}

const takeoverBody = "data: hi\n\nevent: close\ndata:\n\n"

// TestTakeoverWire: a taken-over stream answers with a response delimited
// by the connection's close, which Go's client reads to its end.
func TestTakeoverWire(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	srv := takeoverServer(t)
	ts := httptest.NewServer(takeoverHandler(srv, stop, nil))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !res.Close || res.TransferEncoding != nil || res.ContentLength != -1 {
		t.Fatalf("status %d, Close %v, TransferEncoding %v, ContentLength %d; want 200, a close-delimited body", res.StatusCode, res.Close, res.TransferEncoding, res.ContentLength)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil || string(b) != takeoverBody {
		t.Fatalf("body %q, %v; want %q", b, err, takeoverBody)
	}
}

// TestTakeoverCurl: curl reads a taken-over stream to its end.
func TestTakeoverCurl(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	srv := takeoverServer(t)
	ts := httptest.NewServer(takeoverHandler(srv, stop, nil))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", "-sSN", "-D", "-", ts.URL).Output()
	if err != nil {
		t.Fatalf("curl: %v (%s)", err, out)
	}
	head, body, _ := strings.Cut(string(out), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "\r\nConnection: close") || strings.Contains(head, "Transfer-Encoding") {
		t.Fatalf("curl got head %q", head)
	}
	if body != takeoverBody {
		t.Fatalf("curl got body %q, want %q", body, takeoverBody)
	}
}

// TestTakeoverClientGone: a taken-over stream learns within a second that
// its client closed the connection, from the poller for a TCP connection
// and from a reader of its own for a connection without a file descriptor.
func TestTakeoverClientGone(t *testing.T) {
	for _, tt := range []struct {
		name string
		wrap bool // the listener's connections hide their file descriptor
	}{{"poller", false}, {"reader", true}} {
		t.Run(tt.name, func(t *testing.T) {
			opened := make(chan *sse.Stream, 1)
			srv := takeoverServer(t)
			ts := httptest.NewUnstartedServer(takeoverHandler(srv, nil, opened))
			if tt.wrap {
				ts.Listener = opaqueListener{ts.Listener}
			}
			ts.Start()
			defer ts.Close()
			conn := dialRequest(t, ts.Listener.Addr().String(), "/")
			var s *sse.Stream
			select {
			case s = <-opened:
			case <-time.After(5 * time.Second):
				t.Fatal("no stream opened")
			}
			readUntil(t, conn, "data: hi\n\n")
			conn.Close()
			select {
			case <-s.Done():
			case <-time.After(time.Second):
				t.Fatal("the stream did not end within 1 s of the client leaving")
			}
			if !errors.Is(s.Err(), sse.ErrClientGone) {
				t.Fatalf("Err = %v, want ErrClientGone", s.Err())
			}
		})
	}
}

// opaqueListener's connections are net.Conn only: no file descriptor to
// poll.
type opaqueListener struct{ net.Listener }

func (l opaqueListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// dialRequest connects to addr and sends a GET of target with the header
// lines given; the connection closes when the test ends, if not before.
func dialRequest(t *testing.T, addr, target string, header ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readUntil reads from conn until what it read ends with want.
func readUntil(t *testing.T, conn net.Conn, want string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	var got []byte
	b := make([]byte, 512)
	for !strings.HasSuffix(string(got), want) {
		n, err := conn.Read(b)
		got = append(got, b[:n]...)
		if err != nil {
			t.Fatalf("read %q, then %v; want it to end with %q", got, err, want)
		}
	}
}

// readClose reads from each of conns until the close event.
func readClose(t *testing.T, conns ...net.Conn) {
	t.Helper()
	for _, c := range conns {
		readUntil(t, c, "event: close\ndata:\n\n")
	}
}

// TestTakeoverGoroutines: the handler's goroutine of a taken-over stream
// returns at once, and n streams add at most n goroutines and the
// poller's one (idle, they park: see TestParkedStreams).
func TestTakeoverGoroutines(t *testing.T) {
	const n = 50
	srv := takeoverServer(t)
	var (
		handled sync.WaitGroup
		mu      sync.Mutex
		streams []*sse.Stream
	)
	h := srv.Handler(func(s *sse.Stream, r *http.Request) error {
		s.C <- event.Event{Data: "hi"}
		mu.Lock()
		streams = append(streams, s) // no goroutine of the test's per stream
		mu.Unlock()
		return nil
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		handled.Done() // while the stream goes on
	}))
	defer ts.Close()
	before := runtime.NumGoroutine()
	handled.Add(n)
	conns := make([]net.Conn, n)
	for i := range conns {
		c := dialRequest(t, ts.Listener.Addr().String(), "/")
		readUntil(t, c, "data: hi\n\n")
		conns[i] = c
	}
	waited := make(chan struct{})
	go func() { handled.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the handlers of open taken-over streams did not return")
	}
	var got int
	for range 100 { // net/http's connection goroutines end just after their handlers
		if got = runtime.NumGoroutine() - before; got <= n+1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got > n+1 {
		t.Errorf("%d open taken-over streams added %d goroutines, want at most %d (a pump each, and the poller)", n, got, n+1)
	}
	for _, s := range streams {
		close(s.C)
	}
	readClose(t, conns...)
}

// TestTakeoverIdleStreamHeap: n idle taken-over streams whose handlers
// returned, parked, hold at most idleStreamHeap bytes of Go heap each, the
// test's end of each connection (about 300 bytes) included. What one
// holds, in bytes: the channel with its 8-event buffer (816); the Stream
// (384); the wake channel (112); its context (112) and net/http's request
// and connection contexts under it, which carry the request's values
// (320); what is left of the request for the error handler (about 150);
// the server's end of the connection (about 300); the poller's and the
// Server's sets (about 60); its share of its group (about 140: a sudog
// for its channel, and a sixteenth of the group's goroutine). About 2,400
// in all, and up to 2,600 under the race detector.
func TestTakeoverIdleStreamHeap(t *testing.T) {
	const (
		n              = 200
		idleStreamHeap = 2800
	)
	srv := takeoverServer(t)
	var (
		mu      sync.Mutex
		streams []*sse.Stream
	)
	returned := make(chan struct{}, n)
	h := srv.Handler(func(s *sse.Stream, r *http.Request) error {
		mu.Lock()
		streams = append(streams, s)
		mu.Unlock()
		returned <- struct{}{}
		return nil
	})
	ts := httptest.NewServer(h)
	defer ts.Close()
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	conns := make([]net.Conn, 0, n+1)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() { // dialRequest's, without its t.Cleanup, which weighs more than a stream
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	// One stream first, so that what every stream shares (the poller,
	// the Server's set) is there before the count starts.
	dial()
	<-returned
	streams = slices.Grow(streams, n+1)
	before := heap()
	for range n { // one at a time: as many goroutines as streams
		dial()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("the handler of an open taken-over stream did not return")
		}
	}
	// The streams park (after parkAfter idle), and net/http's connection
	// goroutines end just after their handlers; their garbage is gone by
	// the last of a few collections.
	waitUntil(t, "the streams to park", func() bool { p, _ := sse.Parked(); return p == n+1 })
	var per float64
	for range 5 {
		per = float64(int64(heap())-int64(before)) / n
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%.0f bytes of heap per idle taken-over stream, the client's end included", per)
	if per > idleStreamHeap {
		t.Errorf("an idle taken-over stream holds %.0f bytes of heap, want at most %d", per, idleStreamHeap)
	}
	mu.Lock()
	for _, s := range streams {
		close(s.C)
	}
	mu.Unlock()
	readClose(t, conns...)
}

// TestTakeoverErrorHandlerAfterReturn: an error reported once the handler
// of a taken-over stream has returned reaches Config.ErrorHandler with a
// request that keeps the method, URL, client address and the stream's
// context (with the request's values), without the header.
func TestTakeoverErrorHandlerAfterReturn(t *testing.T) {
	type key struct{}
	reported := make(chan *http.Request, 1)
	srv, err := sse.New(sse.Config{Takeover: true, ErrorHandler: func(r *http.Request, err error) {
		if strings.Contains(err.Error(), "event skipped") {
			reported <- r
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan *sse.Stream, 1)
	var stream *sse.Stream
	h := srv.Handler(func(s *sse.Stream, r *http.Request) error {
		stream = s
		return nil
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, "v")))
		returned <- stream
	}))
	defer ts.Close()
	conn := dialRequest(t, ts.Listener.Addr().String(), "/p?q=1", "X-Token: secret")
	var s *sse.Stream
	select {
	case s = <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not return while its taken-over stream is open")
	}
	if s.Err() != nil {
		t.Fatalf("the stream ended with its handler: %v", s.Err())
	}
	s.C <- event.Event{ID: "a\nb"} // invalid: skipped and reported
	s.C <- event.Event{Data: "after"}
	readUntil(t, conn, "data: after\n\n")
	r := <-reported
	if r.Method != http.MethodGet || r.URL.Path != "/p" || r.URL.RawQuery != "q=1" || r.RemoteAddr != conn.LocalAddr().String() || r.RequestURI != "/p?q=1" {
		t.Errorf("the error handler got %s %v from %s (URI %q); want GET /p?q=1 from %s", r.Method, r.URL, r.RemoteAddr, r.RequestURI, conn.LocalAddr())
	}
	if r.Header.Get("X-Token") != "" {
		t.Errorf("the error handler's request kept the header X-Token")
	}
	if r.Context() != s.Context() || r.Context().Value(key{}) != "v" {
		t.Errorf("the error handler's request has context %v, want the stream's, with the request's values", r.Context())
	}
	close(s.C)
	readUntil(t, conn, "event: close\ndata:\n\n")
}

// TestTakeoverLetsGoOfRequest: once the handler of a taken-over stream
// has returned, the stream keeps nothing of net/http's request but what
// the error handler is given: not its *url.URL when parsing the request's
// URI gives the URL back, which the error handler then gets; a URL a
// middleware rewrote is kept, and reported as rewritten.
func TestTakeoverLetsGoOfRequest(t *testing.T) {
	for _, tt := range []struct {
		name, rewrite, wantPath string
	}{
		{"as sent", "", "/p"},
		{"rewritten", "/rewritten", "/rewritten"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reported := make(chan *http.Request, 1)
			srv, err := sse.New(sse.Config{Takeover: true, ErrorHandler: func(r *http.Request, err error) {
				if strings.Contains(err.Error(), "event skipped") {
					reported <- r
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			freed := make(chan struct{})
			returned := make(chan *sse.Stream, 1)
			h := srv.Handler(func(s *sse.Stream, r *http.Request) error {
				runtime.AddCleanup(r.URL, func(c chan struct{}) { close(c) }, freed)
				returned <- s
				return nil
			})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.rewrite != "" {
					r.URL.Path = tt.rewrite
				}
				h.ServeHTTP(w, r)
			}))
			defer ts.Close()
			conn := dialRequest(t, ts.Listener.Addr().String(), "/p?q=1")
			var s *sse.Stream
			select {
			case s = <-returned:
			case <-time.After(5 * time.Second):
				t.Fatal("no stream opened")
			}
			if tt.rewrite == "" {
				gone := false
				for range 500 { // until net/http's connection goroutine has ended too
					runtime.GC()
					select {
					case <-freed:
						gone = true
					case <-time.After(10 * time.Millisecond):
					}
					if gone {
						break
					}
				}
				if !gone {
					t.Error("the taken-over stream whose handler returned still holds the request's URL")
				}
			}
			s.C <- event.Event{ID: "a\nb"} // invalid: skipped and reported
			s.C <- event.Event{Data: "after"}
			readUntil(t, conn, "data: after\n\n")
			r := <-reported
			if r.Method != http.MethodGet || r.URL.Path != tt.wantPath || r.URL.RawQuery != "q=1" || r.RequestURI != "/p?q=1" {
				t.Errorf("the error handler got %s %v (URI %q); want GET %s?q=1 (URI /p?q=1)", r.Method, r.URL, r.RequestURI, tt.wantPath)
			}
			close(s.C)
			readUntil(t, conn, "event: close\ndata:\n\n")
		})
	}
}

// TestTakeoverShutdown: http.Server.Shutdown does not wait for a
// taken-over stream, which still ends with the close event.
func TestTakeoverShutdown(t *testing.T) {
	opened := make(chan *sse.Stream, 1)
	srv := takeoverServer(t)
	hs := &http.Server{Handler: takeoverHandler(srv, nil, opened)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String(), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	s := <-opened
	// The handler's event first: a shutdown that comes while it is still
	// in the stream's channel ends the stream without it.
	first := make([]byte, len("data: hi\n\n"))
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "data: hi\n\n" {
		t.Fatalf("read %q, %v; want the handler's event", first, err)
	}
	start := time.Now()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown = %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve = %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil || string(first)+string(b) != takeoverBody {
		t.Fatalf("body %q, %v; want %q", string(first)+string(b), err, takeoverBody)
	}
	<-s.Done()
	if !errors.Is(s.Err(), sse.ErrShutdown) {
		t.Fatalf("Err = %v, want ErrShutdown", s.Err())
	}
}

// TestTakeoverShutdownWait: http.Server.Shutdown returns before its
// taken-over streams have ended; Counters.Wait returns once they have, each
// with the close event, so that what a program does next (a broker's
// Close aborts every stream it feeds) cuts none of them short.
func TestTakeoverShutdownWait(t *testing.T) {
	const n = 20
	counters := new(sse.Counters)
	srv, err := sse.New(sse.Config{Takeover: true, Counters: counters})
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *sse.Stream, n)
	hs := &http.Server{Handler: srv.Handler(func(s *sse.Stream, r *http.Request) error {
		s.C <- event.Event{Data: "hi"}
		opened <- s
		return nil
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	conns := make([]net.Conn, n)
	streams := make([]*sse.Stream, n)
	for i := range conns {
		c := dialRequest(t, ln.Addr().String(), "/")
		readUntil(t, c, "data: hi\n\n")
		conns[i], streams[i] = c, <-opened
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := counters.Wait(ctx); err != nil {
		t.Fatalf("Wait = %v with %d streams open", err, counters.Stats().Open)
	}
	for _, s := range streams {
		s.Abort(errors.New("the broker closed")) // too late: the stream has ended
		if !errors.Is(s.Err(), sse.ErrShutdown) {
			t.Errorf("Err = %v once Wait returned, want ErrShutdown", s.Err())
		}
	}
	readClose(t, conns...)
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve = %v", err)
	}
}

// TestTakeoverTLS: over HTTP/1.1 on TLS the stream takes the TLS
// connection over and writes through it.
func TestTakeoverTLS(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	ts := httptest.NewTLSServer(takeoverHandler(takeoverServer(t), stop, nil))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 1 || !res.Close || res.TransferEncoding != nil {
		t.Fatalf("proto %s, Close %v, TransferEncoding %v; want a close-delimited HTTP/1 body", res.Proto, res.Close, res.TransferEncoding)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil || string(b) != takeoverBody {
		t.Fatalf("body %q, %v; want %q", b, err, takeoverBody)
	}
}

// TestTakeoverLastEventID: a taken-over stream still has the Last-Event-ID
// its client sent.
func TestTakeoverLastEventID(t *testing.T) {
	ts := httptest.NewServer(takeoverServer(t).Handler(func(s *sse.Stream, r *http.Request) error {
		s.C <- event.Event{Data: "after " + s.LastEventID()}
		close(s.C)
		return nil
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	req.Header.Set("Last-Event-ID", "7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if want := "data: after 7\n\nevent: close\ndata:\n\n"; err != nil || string(b) != want || !res.Close {
		t.Fatalf("body %q, %v, Close %v; want %q over a taken-over connection", b, err, res.Close, want)
	}
}
