package sse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
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
// its client closed the connection.
func TestTakeoverClientGone(t *testing.T) {
	opened := make(chan *sse.Stream, 1)
	srv := takeoverServer(t)
	ts := httptest.NewServer(takeoverHandler(srv, nil, opened))
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var s *sse.Stream
	select {
	case s = <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("no stream opened")
	}
	conn.Close()
	select {
	case <-s.Done():
	case <-time.After(time.Second):
		t.Fatal("the stream did not end within 1 s of the client leaving")
	}
	if !errors.Is(s.Err(), sse.ErrClientGone) {
		t.Fatalf("Err = %v, want ErrClientGone", s.Err())
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
	if err != nil || string(b) != takeoverBody {
		t.Fatalf("body %q, %v; want %q", b, err, takeoverBody)
	}
	<-s.Done()
	if !errors.Is(s.Err(), sse.ErrShutdown) {
		t.Fatalf("Err = %v, want ErrShutdown", s.Err())
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
