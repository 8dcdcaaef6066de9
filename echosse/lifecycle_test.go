package echosse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// openStreams starts a server whose /events handler opens a stream, hands
// it to the test and then runs hold (or returns at once when hold is nil).
func openStreams(t *testing.T, hold func(c echo.Context, s *echosse.Stream) error) (url string, streams <-chan *echosse.Stream) {
	t.Helper()
	if hold == nil {
		hold = func(echo.Context, *echosse.Stream) error { return nil }
	}
	srv, ch := streamAppWith(t, echosse.Config{}, hold)
	return srv.URL + "/events", ch
}

func TestAfterFuncRunsOnceTheStreamEnds(t *testing.T) {
	url, streams := openStreams(t, nil)
	res := get(t, url)
	defer res.Body.Close()
	s := <-streams

	ran := make(chan error, 3)
	s.AfterFunc(func() { ran <- context.Cause(s.Context()) })
	stopB := s.AfterFunc(func() { ran <- errors.New("a stopped function ran") })
	if !stopB() {
		t.Fatal("stop of a pending function returned false")
	}
	if stopB() {
		t.Fatal("a second stop returned true")
	}
	select {
	case err := <-ran:
		t.Fatalf("a function ran before the stream ended: %v", err)
	case <-time.After(20 * time.Millisecond):
	}

	cause := errors.New("dropped by the test")
	s.Abort(cause)
	select {
	case err := <-ran:
		if err != cause {
			t.Fatalf("context.Cause in the function = %v, want %v", err, cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the function did not run after Abort")
	}

	// Registered after the end: runs at once, and cannot be stopped.
	stopC := s.AfterFunc(func() { ran <- nil })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a function registered after the end did not run")
	}
	if stopC() {
		t.Fatal("stop of a function that ran returned true")
	}
	<-s.Done()
	select {
	case err := <-ran:
		t.Fatalf("a stopped function ran: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestStreamContext(t *testing.T) {
	type key struct{}
	reqCtx := make(chan context.Context, 1)
	url, streams := openStreams(t, func(c echo.Context, s *echosse.Stream) error {
		reqCtx <- c.Request().Context()
		return nil
	})

	t.Run("Abort", func(t *testing.T) {
		res := get(t, url)
		defer res.Body.Close()
		s := <-streams
		if got := <-reqCtx; got != s.Context() {
			t.Fatal("c.Request().Context() is not the stream's context")
		}
		if s.Context().Value(http.ServerContextKey) == nil {
			t.Fatal("the stream's context lost the request's values")
		}
		child, cancel := context.WithCancel(context.WithValue(s.Context(), key{}, 1))
		defer cancel()
		cause := errors.New("dropped by the test")
		s.Abort(cause)
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a context derived from the stream's was not cancelled")
		}
		if got := context.Cause(s.Context()); got != cause {
			t.Fatalf("context.Cause = %v, want %v", got, cause)
		}
		if got := context.Cause(child); got != cause {
			t.Fatalf("context.Cause of a derived context = %v, want %v", got, cause)
		}
		<-s.Done()
		if err := s.Err(); err != cause {
			t.Fatalf("Err = %v, want %v", err, cause)
		}
	})

	t.Run("client gone", func(t *testing.T) {
		res := get(t, url)
		s := <-streams
		<-reqCtx
		if s.Err() != nil {
			t.Fatalf("Err = %v while the stream is open", s.Err())
		}
		res.Body.Close()
		select {
		case <-s.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the stream's context was not cancelled when the client left")
		}
		if got := context.Cause(s.Context()); !errors.Is(got, echosse.ErrClientGone) {
			t.Fatalf("context.Cause = %v, want ErrClientGone", got)
		}
		<-s.Done()
		if !errors.Is(s.Err(), echosse.ErrClientGone) {
			t.Fatalf("Err = %v, want ErrClientGone", s.Err())
		}
	})
}

// TestGoroutinesPerStream counts the server's goroutines per open stream:
// net/http's two per connection (the request goroutine and its background
// reader) when the handler returns at once, its request goroutine then
// being the pump, and one more, the pump's own, while the handler runs. It
// counts those started too: a handler that returns at once never gets a
// pump goroutine, even briefly.
// The clients are bare TCP connections, which need no goroutine.
func TestGoroutinesPerStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hold    bool
		perConn int
	}{
		{"handler returns", false, 2},
		{"handler runs", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hold func(echo.Context, *echosse.Stream) error
			if !tc.hold {
				// What is measured is that a handler that has returned
				// gets no pump goroutine. Under load, returning can take
				// longer than the 1 ms after which a handler that keeps
				// running gets one (TestHandOverAroundThePumpDelay tests
				// that hand-over): the delay is taken out of the count.
				echosse.SetPumpDelay(t, time.Hour)
			}
			if tc.hold {
				hold = func(_ echo.Context, s *echosse.Stream) error {
					<-s.Context().Done()
					return nil
				}
			}
			url, streams := openStreams(t, hold)
			addr := strings.TrimPrefix(strings.TrimSuffix(url, "/events"), "http://")
			const n = 20
			// A first GC starts the runtime's mark workers: not here.
			runtime.GC()
			waitFor(t, "a quiet process", settled())
			base := runtime.NumGoroutine()
			created := goroutinesCreated()
			var conns []net.Conn
			for range n {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				if _, err := fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				<-streams
			}
			// and the Server's one sweeper, which runs while a stream
			// is open (heartbeats)
			want := n*tc.perConn + 1
			var got int
			waitFor(t, fmt.Sprintf("%d goroutines per stream and the sweeper", tc.perConn), func() bool {
				got = runtime.NumGoroutine() - base
				return got == want
			})
			// and it stays so: no pump goroutine starts late
			time.Sleep(20 * time.Millisecond)
			if got = runtime.NumGoroutine() - base; got != want {
				t.Fatalf("%d goroutines for %d streams, want %d per stream and the sweeper", got, n, tc.perConn)
			}
			// None started and ended in between either, such as a pump
			// goroutine that runs only until the handler returns.
			if made := goroutinesCreated() - created; made != uint64(want) {
				t.Fatalf("%d goroutines created for %d streams, want %d per stream and the sweeper", made, n, tc.perConn)
			}
			for _, c := range conns {
				c.Close()
			}
			waitFor(t, "the streams' goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
		})
	}
}

// goroutinesCreated returns how many goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// settled returns a condition that holds once the goroutine count has not
// changed for a while: goroutines of earlier tests may still be ending.
func settled() func() bool {
	var last atomic.Int64
	last.Store(-1)
	var since time.Time
	return func() bool {
		n := int64(runtime.NumGoroutine())
		if last.Swap(n) != n {
			since = time.Now()
			return false
		}
		return time.Since(since) > 50*time.Millisecond
	}
}

// TestHandOverAroundThePumpDelay runs handlers that send some events
// themselves and return, or send all and close, at random times around
// the moment a still-running handler gets a pump goroutine, while other
// goroutines send too: whoever pumps, each client receives every event
// once, in order, then the close event.
func TestHandOverAroundThePumpDelay(t *testing.T) {
	const streams = 40
	var seed atomic.Int64
	srv, _ := streamApp(t, echosse.Config{BufferSize: 4}, func(s *echosse.Stream) error {
		r := rand.New(rand.NewPCG(uint64(seed.Add(1)), 7))
		total := 1 + r.IntN(60)
		inline := r.IntN(total + 1) // sent by the handler itself
		for i := range inline {
			if s.Send(event.Event{ID: fmt.Sprint(i)}) != nil {
				return nil
			}
		}
		time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
		rest := func() {
			for i := inline; i < total; i++ {
				if s.Send(event.Event{ID: fmt.Sprint(i)}) != nil {
					return
				}
			}
			close(s.C)
		}
		if r.IntN(2) == 0 {
			rest() // the handler closes the stream before it returns
		} else {
			go rest() // a goroutine goes on after the handler has returned
		}
		return nil
	})
	var wg sync.WaitGroup
	for range streams {
		res := get(t, srv.URL+"/events")
		wg.Go(func() {
			evs := decodeAllOrError(res.Body)
			last := len(evs) - 1
			if last < 1 || evs[last].Type != "close" {
				t.Errorf("got %d events, want some and the close event last", len(evs))
				return
			}
			for i, ev := range evs[:last] {
				if ev.ID != fmt.Sprint(i) {
					t.Errorf("event %d has ID %q: lost, repeated or out of order", i, ev.ID)
					return
				}
			}
		})
	}
	wg.Wait()
}

// decodeAllOrError is decodeAll for goroutines other than the test's.
func decodeAllOrError(r io.Reader) []event.Event {
	var evs []event.Event
	d := event.NewDecoder(r)
	for {
		ev, err := d.Decode()
		if err != nil {
			return evs
		}
		evs = append(evs, ev)
	}
}
