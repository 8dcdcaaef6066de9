package sse_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// parkedServer serves taken-over streams whose handlers return at once,
// each sent to opened.
func parkedServer(t *testing.T, cfg sse.Config, opened chan<- *sse.Stream) (*sse.Server, *httptest.Server) {
	t.Helper()
	cfg.Takeover = true
	srv, err := sse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler(func(s *sse.Stream, _ *http.Request) error {
		opened <- s
		return nil
	}))
	t.Cleanup(ts.Close)
	return srv, ts
}

// waitUntil polls cond for up to 5 s, and fails the test with what if it
// does not hold by then.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestParkedStreams: idle taken-over streams park, n streams in
// ceil(n/16) groups, with no goroutine of their own, and Stats counts
// them; parked, they get
// their heartbeats, their events, and the close event, and a client that
// leaves frees its slot at once.
func TestParkedStreams(t *testing.T) {
	const n = 40
	sse.SetParkAfter(t, 10*time.Millisecond)
	opened := make(chan *sse.Stream, n)
	srv, ts := parkedServer(t, sse.Config{PingInterval: 200 * time.Millisecond}, opened)
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	streams := make([]*sse.Stream, n)
	for i := range conns {
		conns[i] = dialRequest(t, ts.Listener.Addr().String(), "/")
		readUntil(t, conns[i], "\r\n\r\n") // the head
		streams[i] = <-opened
	}
	groups := (n + 15) / 16
	parked := func() bool { p, g := sse.Parked(); return p == n && g == groups && srv.Stats().Parked == n }
	waitUntil(t, fmt.Sprintf("%d streams parked in %d groups", n, groups), parked)
	// The groups, the poller and the sweeper; net/http's connection
	// goroutines end just after their handlers.
	waitUntil(t, "the pumps' goroutines to end", func() bool { return runtime.NumGoroutine()-before <= groups+2 })

	// A heartbeat for every parked stream, which parks again.
	for _, c := range conns {
		readUntil(t, c, ": ping\n\n")
	}
	waitUntil(t, "the streams to park after their heartbeat", parked)

	// An event for every parked stream.
	for i, s := range streams {
		s.C <- event.Event{ID: strconv.Itoa(i), Data: "parked"}
	}
	for i, c := range conns {
		readUntil(t, c, "id: "+strconv.Itoa(i)+"\ndata: parked\n\n")
	}
	waitUntil(t, "the streams to park after their event", parked)

	// Clients that leave: their slots are free within a second.
	const gone = 10
	left := time.Now()
	for _, c := range conns[:gone] {
		c.Close()
	}
	waitUntil(t, "the slots of the clients gone", func() bool { return srv.Stats().Open == n-gone })
	if took := time.Since(left); took > time.Second {
		t.Errorf("parked streams whose clients left ended after %v, want within a second", took)
	}
	for _, s := range streams[:gone] {
		<-s.Done()
		if err := s.Err(); err != sse.ErrClientGone {
			t.Errorf("a parked stream whose client left ended with %v, want ErrClientGone", err)
		}
	}

	// The others end with the close event.
	for _, s := range streams[gone:] {
		close(s.C)
	}
	readClose(t, conns[gone:]...)
	waitUntil(t, "the groups to stop", func() bool { _, g := sse.Parked(); return g == 0 })
	if p := srv.Stats().Parked; p != 0 {
		t.Errorf("Stats.Parked is %d once every stream has ended, want 0", p)
	}
}

// TestParkedShutdown: the streams of a server that shuts down while they
// are parked end with the close event.
func TestParkedShutdown(t *testing.T) {
	const n = 20
	sse.SetParkAfter(t, 0)
	opened := make(chan *sse.Stream, n)
	_, ts := parkedServer(t, sse.Config{}, opened)
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialRequest(t, ts.Listener.Addr().String(), "/")
		readUntil(t, conns[i], "\r\n\r\n")
		<-opened
	}
	waitUntil(t, "the streams to park", func() bool { p, _ := sse.Parked(); return p == n })
	if err := ts.Config.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	readClose(t, conns...)
}

// TestParkStress: streams that park at every pause (the sweeper's tick, a
// millisecond) between events sent at random short intervals, and between
// heartbeats every few milliseconds, get every event once, in order, then
// the close event. Run with -race: parking and waking race with sends,
// heartbeats and the close.
func TestParkStress(t *testing.T) {
	const (
		n      = 24
		events = 1000
	)
	sse.SetParkAfter(t, 0)
	opened := make(chan *sse.Stream, n)
	_, ts := parkedServer(t, sse.Config{PingInterval: 4 * time.Millisecond}, opened)
	before := sse.Parks()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		c := dialRequest(t, ts.Listener.Addr().String(), "/")
		s := <-opened
		wg.Add(2)
		go func() { // the sender
			defer wg.Done()
			defer close(s.C)
			for i := 1; i <= events; i++ {
				if i%10 == 0 {
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				}
				if err := s.Send(event.Event{ID: strconv.Itoa(i), Data: "x"}); err != nil {
					errs <- fmt.Errorf("send %d: %w", i, err)
					return
				}
			}
		}()
		go func() { // the client
			defer wg.Done()
			errs <- readEvents(c, events)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	parks := sse.Parks() - before
	t.Logf("%d parks", parks)
	if parks < n {
		t.Errorf("%d streams parked %d times, want every stream to park", n, parks)
	}
}

// readEvents reads from c, skipping heartbeats, until the close event,
// and checks that the events before it had the IDs 1 to n, in order.
func readEvents(c net.Conn, n int) error {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got strings.Builder
	b := make([]byte, 4096)
	for !strings.HasSuffix(got.String(), "event: close\ndata:\n\n") {
		k, err := c.Read(b)
		got.Write(b[:k])
		if err != nil {
			return fmt.Errorf("read %d bytes, then %v", got.Len(), err)
		}
	}
	_, body, _ := strings.Cut(got.String(), "\r\n\r\n")
	want := 1
	for _, block := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		switch {
		case block == ": ping":
		case block == "event: close\ndata:":
			if want != n+1 {
				return fmt.Errorf("the close event after event %d, want after %d", want-1, n)
			}
		case block == "id: "+strconv.Itoa(want)+"\ndata: x":
			want++
		default:
			return fmt.Errorf("got %q, want event %d, a heartbeat or the close event", block, want)
		}
	}
	return nil
}
