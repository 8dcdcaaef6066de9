package doortest

// This file holds the suite's helpers: a door served on a real loopback
// server (HTTP/1.1, HTTP/2 over TLS, h2c) with a client for it, readers of
// the streams it answers, handlers, and waits that are all bounded.

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// waitLimit bounds every wait of the suite: a read from a stream, a
// channel, a condition. It is far above what any of them takes on a
// loaded machine, so that reaching it means the behaviour is missing.
const waitLimit = 10 * time.Second

// proto is how a rig's server and client talk.
type proto int

const (
	http1 proto = iota // HTTP/1.1 over TCP
	h2TLS              // HTTP/2 over TLS
	h2c                // HTTP/2 over TCP, with prior knowledge
)

func (p proto) String() string {
	return [...]string{"http1", "h2-tls", "h2c"}[p]
}

// A rig is a door served on a loopback server, and a client for it.
type rig struct {
	srv    *httptest.Server
	client *http.Client
}

// serve serves the door's handler for cfg and handle over HTTP/1.1; setup,
// if given, adjusts the server before it starts.
func serve(t *testing.T, d Door, cfg Config, handle Handle, setup ...func(*httptest.Server)) *rig {
	t.Helper()
	return serveProto(t, d, cfg, handle, http1, setup...)
}

// serveProto serves the door's handler for cfg and handle over p. The
// server and the client's connections are closed when the test ends.
func serveProto(t *testing.T, d Door, cfg Config, handle Handle, p proto, setup ...func(*httptest.Server)) *rig {
	t.Helper()
	if cfg.OnError == nil {
		cfg.OnError = logErrors(t)
	}
	srv := httptest.NewUnstartedServer(d.Serve(t, cfg, handle))
	for _, f := range setup {
		f(srv)
	}
	tr := &http.Transport{DisableCompression: true} // the suite sees Content-Encoding
	switch p {
	case http1:
		srv.Start()
	case h2TLS:
		srv.EnableHTTP2 = true
		srv.StartTLS()
		tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
		tr.ForceAttemptHTTP2 = true
	case h2c:
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	t.Cleanup(tr.CloseIdleConnections)
	return &rig{srv: srv, client: &http.Client{Transport: tr}}
}

// addr is the server's host:port.
func (r *rig) addr() string { return r.srv.Listener.Addr().String() }

// do sends a GET request for path with header's name, value pairs, bounded
// by waitLimit from now on, reading of the body included. It may be called
// from any goroutine; the body is closed when the test ends.
func (r *rig) do(t *testing.T, path string, header ...string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := r.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	t.Cleanup(func() {
		res.Body.Close()
		cancel()
	})
	return res, nil
}

// get is do for the test's goroutine: it fails the test on an error.
func (r *rig) get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	res, err := r.do(t, path, header...)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return res
}

// expectStream fails the test unless res is the start of an event stream.
func expectStream(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		t.Fatalf("got status %d, Content-Type %q (%q), want an event stream", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
}

// expectNoStream fails the test unless res has status code and is not an
// event stream.
func expectNoStream(t *testing.T, res *http.Response, code int) {
	t.Helper()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode != code {
		t.Fatalf("got status %d (%q), want %d", res.StatusCode, b, code)
	}
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("got Content-Type %q with status %d, want no stream", ct, code)
	}
}

// expectGzip fails the test unless res is compressed once, with gzip.
func expectGzip(t *testing.T, res *http.Response) {
	t.Helper()
	if got := res.Header.Values("Content-Encoding"); len(got) != 1 || got[0] != "gzip" {
		t.Fatalf("got Content-Encoding %q, want gzip, once", got)
	}
}

// bodyOf returns res's body, decompressed when its Content-Encoding is
// gzip. The gzip header is read at the first Read, not now: a stream may
// send it only with its first event.
func bodyOf(res *http.Response) io.Reader {
	if res.Header.Get("Content-Encoding") != "gzip" {
		return res.Body
	}
	return &gunzip{r: res.Body}
}

// gunzip decompresses r from its first Read on.
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

// nextEvent decodes the next event.
func nextEvent(t *testing.T, d *event.Decoder) event.Event {
	t.Helper()
	ev, err := d.Decode()
	if err != nil {
		t.Fatalf("decoding the next event: %v", err)
	}
	return ev
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

// expectEnd checks that the stream ends, cleanly, with no more events.
func expectEnd(t *testing.T, d *event.Decoder) {
	t.Helper()
	if ev, err := d.Decode(); err != io.EOF {
		t.Fatalf("got %v %v, want the end of the stream", ev, err)
	}
}

// decodeAll decodes every event until the stream ends cleanly.
func decodeAll(t *testing.T, r io.Reader) []event.Event {
	t.Helper()
	evs, err := readEvents(r)
	if err != nil {
		t.Fatalf("after %d events (%v): %v", len(evs), evs, err)
	}
	return evs
}

// readEvents decodes events until the stream ends, and returns them with
// the error that ended it: nil at a clean end.
func readEvents(r io.Reader) ([]event.Event, error) {
	var evs []event.Event
	d := event.NewDecoder(r)
	for {
		ev, err := d.Decode()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// summary writes events as "type:data" words, for comparisons.
func summary(evs []event.Event) string {
	var b strings.Builder
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%v", ev.Type, ev.Data)
	}
	return b.String()
}

// lineReader reads a stream's raw lines, comments included.
type lineReader struct{ r *bufio.Reader }

func newLineReader(r io.Reader) *lineReader { return &lineReader{bufio.NewReader(r)} }

// next returns the next line, without its LF.
func (l *lineReader) next(t *testing.T) string {
	t.Helper()
	s, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// expect reads the next line and checks it.
func (l *lineReader) expect(t *testing.T, want string) {
	t.Helper()
	if got := l.next(t); got != want {
		t.Fatalf("got line %q, want %q", got, want)
	}
}

// receive returns the next value from ch, failing the test after waitLimit.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// send sends v on ch, failing the test after waitLimit.
func send[T any](t *testing.T, ch chan<- T, v T, what string) {
	t.Helper()
	select {
	case ch <- v:
	case <-time.After(waitLimit):
		t.Fatalf("timed out handing over %s", what)
	}
}

// ended waits for s to end and returns why.
func ended(t *testing.T, s *sse.Stream) error {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(waitLimit):
		t.Fatal("the stream has not ended")
	}
	if s.Context().Err() == nil {
		t.Fatal("the stream has ended but its context is not cancelled")
	}
	return s.Err()
}

// expectReason fails the test unless err matches want.
func expectReason(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("the stream ended with %v, want %v", err, want)
	}
}

// streamsTo returns a Handle that hands each stream to ch, without
// blocking (ch must have room), then runs h.
func streamsTo(ch chan<- *sse.Stream, h Handle) Handle {
	return func(s *sse.Stream, r *http.Request) error {
		select {
		case ch <- s:
		default:
			panic("doortest: the test's stream channel is full")
		}
		return h(s, r)
	}
}

// sendThenClose returns a Handle whose sender, a goroutine, sends evs and
// closes the stream's channel.
func sendThenClose(evs ...event.Event) Handle {
	return func(s *sse.Stream, _ *http.Request) error {
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

// ackEach returns a Handle whose sender sends n events, "event 0" and on,
// each only once the client has acknowledged the one before on acks, and
// then closes the stream's channel: a client that decodes each event before
// it acknowledges it shows that every event arrived at once.
func ackEach(n int, acks <-chan struct{}) Handle {
	return func(s *sse.Stream, _ *http.Request) error {
		go func() {
			defer close(s.C)
			for i := range n {
				if i > 0 {
					select {
					case <-acks:
					case <-s.Context().Done():
						return
					}
				}
				if s.Send(event.Event{ID: fmt.Sprint(i), Data: fmt.Sprint("event ", i)}) != nil {
					return
				}
			}
		}()
		return nil
	}
}

// flood sends ev on s until a send fails, and hands the error to errs.
func flood(s *sse.Stream, ev event.Event, errs chan<- error) {
	for {
		if err := s.Send(ev); err != nil {
			errs <- err
			return
		}
	}
}

// readAcked reads the n events of ackEach from d, acknowledging each, then
// the close event and the end of the stream.
func readAcked(t *testing.T, d *event.Decoder, n int, acks chan<- struct{}) {
	t.Helper()
	for i := range n {
		if i > 0 {
			send(t, acks, struct{}{}, "an acknowledgement")
		}
		expectEvent(t, d, "message", fmt.Sprint("event ", i))
	}
	expectEvent(t, d, "close", "")
	expectEnd(t, d)
}

// errLog records what a door's error handler is told.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// logErrors returns an error handler that logs to t while the test runs,
// and drops what comes after.
func logErrors(t *testing.T) func(error) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("door's error handler: %v", err)
		}
	}
}

// smallSendBuffers is a listener whose connections have small send
// buffers, so that a client that does not read blocks the server's writes
// after a few kilobytes.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}
