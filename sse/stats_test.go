package sse_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
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

// These tests script what streams do and check that Stats counts exactly
// that: the events and bytes each client received, the reason each
// stream ended.

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// panicky is event data whose encoding panics, in the pump.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("panicky: no JSON today") }

// statsServer serves srv's streams, each doing what its ?do= says, on a
// real http.Server (so that open streams are read live and Shutdown
// reaches them).
func statsServer(t *testing.T, srv *sse.Server, release <-chan struct{}) *httptest.Server {
	t.Helper()
	h := srv.Handler(func(s *sse.Stream, r *http.Request) error {
		switch r.URL.Query().Get("do") {
		case "close": // two events and an invalid one between: closed
			go func() {
				s.Send(event.Event{Data: "one"})
				s.Send(event.Event{ID: "bad\nid", Data: "skipped"})
				s.Send(event.Event{Data: "two"})
				close(s.C)
			}()
		case "hold": // one event, then whatever ends it: client_gone, shutdown
			s.Send(event.Event{Data: "held"})
		case "abort": // one event, then Abort once the client has it
			s.Send(event.Event{Data: "aborted"})
			go func() {
				<-release
				s.Abort(nil)
			}()
		case "error":
			return errors.New("handler failed")
		case "panic":
			panic(http.ErrAbortHandler) // net/http logs nothing for it
		case "pump-panic":
			s.Send(event.Event{Data: panicky{}})
		}
		return nil
	})
	hs := httptest.NewServer(h)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(hs.Close)
	return hs
}

// get requests path from hs and returns the response, whose body counts
// what is read of it.
func get(t *testing.T, c *http.Client, url string) (*http.Response, *countingReader) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	cr := &countingReader{r: res.Body}
	return res, cr
}

// newClient returns a client whose connections close with the test.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestStatsCountWhatHappened: streams that end for every reason but a
// write timeout, a refusal for each Overflow mode on two Servers that
// share Counters, and the exact events and bytes their clients read.
func TestStatsCountWhatHappened(t *testing.T) {
	counters := new(sse.Counters)
	var mu sync.Mutex
	var told []error
	onError := func(_ *http.Request, err error) {
		mu.Lock()
		told = append(told, err)
		mu.Unlock()
	}
	srv, err := sse.New(sse.Config{MaxClients: 3, PingInterval: -1, Counters: counters, ErrorHandler: onError})
	if err != nil {
		t.Fatal(err)
	}
	full, err := sse.New(sse.Config{MaxClients: 1, Overflow: sse.OverflowUnavailable, Counters: counters, ErrorHandler: onError})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	hs := statsServer(t, srv, release)
	fullHS := statsServer(t, full, nil)
	c := newClient(t)
	events, read := 0, 0 // what the clients received
	decode := func(cr *countingReader, n int) {
		t.Helper()
		d := event.NewDecoder(cr)
		for range n {
			if _, err := d.Decode(); err != nil {
				t.Fatalf("decoding: %v", err)
			}
		}
	}
	readAll := func(cr *countingReader) {
		t.Helper()
		b, err := io.ReadAll(cr)
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := decodeAllEvents(b)
		events += evs
	}

	// closed: the events, the close event, the end.
	_, cr := get(t, c, hs.URL+"/?do=close")
	readAll(cr)
	events-- // the close event is no event of the sender's
	read += cr.n

	// client_gone: the client leaves after the one event.
	ctx, leave := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/?do=hold", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cr = &countingReader{r: res.Body}
	decode(cr, 1)
	events++
	read += cr.n

	// Live: the open stream's event and bytes count before it ends (from
	// the moment its flush returns, which may be after the client has
	// read them).
	waitFor(t, "the open stream's counts", func() bool {
		st := srv.Stats()
		return st.Open == 1 && st.Events == 2+1 && st.Bytes == uint64(read)
	})
	leave()
	res.Body.Close()
	waitFor(t, "the server to notice the client left", func() bool { return srv.Stats().Open == 0 })

	// aborted, handler_error, handler_panic, pump_panic.
	_, cr = get(t, c, hs.URL+"/?do=abort")
	decode(cr, 1)
	close(release)
	readAll(cr)
	events++
	read += cr.n
	for _, do := range []string{"error", "panic", "pump-panic"} {
		res, err := c.Get(hs.URL + "/?do=" + do)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			read += len(b)
		}
	}

	// Refused: one Server full with OverflowUnavailable; the other gets
	// more than its three.
	_, crFull := get(t, c, fullHS.URL+"/?do=hold")
	decode(crFull, 1)
	if res, err := c.Get(fullHS.URL + "/"); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over MaxClients with OverflowUnavailable: %v, %v", res, err)
	} else {
		res.Body.Close()
	}
	var held []*countingReader
	for range 3 {
		_, cr := get(t, c, hs.URL+"/?do=hold")
		decode(cr, 1)
		held = append(held, cr)
	}
	res, err = c.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(res.Body); !bytes.HasPrefix(b, []byte(": too many clients")) {
		t.Fatalf("over MaxClients with OverflowRetry: got %q", b)
	}
	res.Body.Close()

	// shutdown: the three held streams and the full Server's one get the
	// close event.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	hs.Config.Shutdown(ctx)
	fullHS.Config.Shutdown(ctx)
	for _, cr := range append(held, crFull) {
		readAll(cr) // the close event, counted in events
		// and the held event, decoded before: counted now instead of
		// the close event.
		read += cr.n
	}

	st := counters.Stats()
	want := sse.Stats{
		Opened:        6 + 1 + 3, // a stream per reason, the full Server's, the three held
		Refused:       [2]uint64{sse.OverflowRetry: 1, sse.OverflowUnavailable: 1},
		Events:        uint64(events),
		Bytes:         uint64(read),
		WrittenBytes:  uint64(read),
		InvalidEvents: 1,
	}
	want.Ended[sse.EndClosed] = 1
	want.Ended[sse.EndClientGone] = 1
	want.Ended[sse.EndAborted] = 1
	want.Ended[sse.EndHandlerError] = 1
	want.Ended[sse.EndHandlerPanic] = 1
	want.Ended[sse.EndPumpPanic] = 1
	want.Ended[sse.EndShutdown] = 4
	// Every Open flushes the headers; every batch of events is a flush.
	if flushes := sum(st.Flushes[:]); flushes < st.Opened || st.FlushTime <= 0 {
		t.Errorf("Flushes %v, FlushTime %v: want at least one flush per stream, and their time", st.Flushes, st.FlushTime)
	}
	st.Flushes, st.FlushTime = [6]uint64{}, 0
	if st != want {
		t.Errorf("Stats:\n got %+v\nwant %+v", st, want)
	}
	if events != 1+1+1+1+4 {
		t.Errorf("the clients received %d events, want 8", events)
	}
	if st := srv.Stats(); st != counters.Stats() {
		t.Errorf("Server.Stats is not its Counters'")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 3 { // the invalid event, the handler's error, the pump's panic
		t.Errorf("ErrorHandler was told %d errors, want 3: %v", len(told), told)
	}
}

// waitFor waits until cond holds, for at most 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// decodeAllEvents decodes b, returning the number of events, close event
// included.
func decodeAllEvents(b []byte) (int, error) {
	d := event.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		if _, err := d.Decode(); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		n++
	}
}

func sum(xs []uint64) (n uint64) {
	for _, x := range xs {
		n += x
	}
	return n
}

// TestStatsCompressed: a stream that compresses itself counts the gzip
// stream it wrote, header and trailer included, beside the event stream
// it compressed; its compressor is counted.
func TestStatsCompressed(t *testing.T) {
	srv, err := sse.New(sse.Config{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		go func() {
			for i := range 20 {
				s.Send(event.Event{Data: strings.Repeat("compressible ", i)})
			}
			close(s.C)
		}()
		return nil
	}))
	t.Cleanup(hs.Close)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, hs.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("the gzip stream: %v", err)
	}
	st := srv.Stats()
	if st.WrittenBytes != uint64(len(raw)) || st.Bytes != uint64(len(plain)) || st.Events != 20 || st.Compressors != 1 {
		t.Errorf("WrittenBytes %d, Bytes %d, Events %d, Compressors %d; want %d, %d, 20, 1",
			st.WrittenBytes, st.Bytes, st.Events, st.Compressors, len(raw), len(plain))
	}
}

// TestStatsHeartbeats: every heartbeat written is counted.
func TestStatsHeartbeats(t *testing.T) {
	srv, err := sse.New(sse.Config{PingInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	hs := httptest.NewServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		go func() {
			<-stop
			close(s.C)
		}()
		return nil
	}))
	t.Cleanup(hs.Close)
	res, err := newClient(t).Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	pings := 0
	for sc.Scan() {
		if sc.Text() == ": ping" {
			if pings++; pings == 3 {
				close(stop)
			}
		}
	}
	if got := srv.Stats().Heartbeats; got != uint64(pings) {
		t.Errorf("Heartbeats %d; the client received %d", got, pings)
	}
}

// TestStatsWriteTimeout: a client that stops reading ends its stream
// for write_timeout, and the write that waited is counted as a flush
// slower than 100 ms.
func TestStatsWriteTimeout(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	srv, err := sse.New(sse.Config{WriteTimeout: writeTimeout, ErrorHandler: func(*http.Request, error) {}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		go func() {
			for s.Send(event.Event{Data: strings.Repeat("x", 64<<10)}) == nil {
			}
		}()
		return nil
	}))
	hs.Listener = smallBuffers{hs.Listener}
	hs.Start()
	t.Cleanup(hs.Close)
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: stats\r\n\r\n")
	waitFor(t, "the write timeout", func() bool { return srv.Stats().Ended[sse.EndWriteTimeout] == 1 })
	st := srv.Stats()
	if slow := sum(st.Flushes[3:]); slow < 1 || st.FlushTime < writeTimeout {
		t.Errorf("Flushes %v, FlushTime %v: want the write that waited %v among those over 100 ms", st.Flushes, st.FlushTime, writeTimeout)
	}
}

// smallBuffers is a listener whose connections have small send buffers.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestStatsNeverGoBack: counters read while streams open, write and end
// at once never go back from one read to the next.
func TestStatsNeverGoBack(t *testing.T) {
	srv, err := sse.New(sse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		go func() {
			for range 5 {
				s.Send(event.Event{Data: "tick"})
			}
			close(s.C)
		}()
		return nil
	}))
	t.Cleanup(hs.Close)
	c := newClient(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				res, err := c.Get(hs.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	var last sse.Stats
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		st := srv.Stats()
		if st.Events < last.Events || st.Bytes < last.Bytes || st.WrittenBytes < last.WrittenBytes ||
			st.Flushes[0] < last.Flushes[0] || st.FlushTime < last.FlushTime || st.Opened < last.Opened {
			t.Errorf("went back:\n%+v\nafter\n%+v", st, last)
			<-done
			return
		}
		last = st
	}
	if st := srv.Stats(); st.Events != 4*50*5 || st.Ended[sse.EndClosed] != 4*50 {
		t.Errorf("Events %d, Ended closed %d; want 1000, 200", st.Events, st.Ended[sse.EndClosed])
	}
}
