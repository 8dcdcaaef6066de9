package sseclient_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

// replayServer is an echosse server keeping a log of n events, which it
// replays after the Last-Event-ID a request carries; with nothing left to
// send it answers 204. Requests it counts as faulty get 503 with
// Retry-After or a redirect instead.
type replayServer struct {
	n                     int
	requests, unavailable atomic.Int64
	redirects             atomic.Int64
	faults                bool
}

func (rs *replayServer) handler() http.Handler {
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	stream := func(c echo.Context) error {
		from := 0
		if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
			var err error
			if from, err = strconv.Atoi(id); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "bad Last-Event-ID")
			}
		}
		if from >= rs.n {
			return c.NoContent(http.StatusNoContent)
		}
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			for i := from + 1; i <= rs.n; i++ {
				if s.Send(event.Event{ID: strconv.Itoa(i), Data: fmt.Sprintf("event %d", i)}) != nil {
					return
				}
			}
		}()
		return nil
	}
	e.GET("/moved", stream)
	e.GET("/events", func(c echo.Context) error {
		k := rs.requests.Add(1)
		switch {
		case rs.faults && k%7 == 3:
			rs.unavailable.Add(1)
			c.Response().Header().Set("Retry-After", "0")
			return c.NoContent(http.StatusServiceUnavailable)
		case rs.faults && k%11 == 5:
			rs.redirects.Add(1)
			return c.Redirect(http.StatusTemporaryRedirect, "/moved")
		}
		return stream(c)
	})
	return e
}

// Through a proxy that cuts connections at random points (in the headers,
// mid-event, between events) and stalls every tenth one, and a server that
// now and then answers 503 or redirects, every event arrives exactly once
// and in order, across at least 50 reconnects.
func TestReconnectExactlyOnce(t *testing.T) {
	t.Parallel()
	rs := &replayServer{n: 500, faults: true}
	srv, _ := newServer(t, rs.handler())
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 13))
	p := newProxy(t, srv.Listener.Addr().String(), func(n int) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		return 1 + rnd.IntN(500), n%10 == 0
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var reasons sync.Map
	c := &sseclient.Client{
		HTTPClient:      &http.Client{Transport: tr},
		Retry:           time.Millisecond,
		MinBackoff:      time.Millisecond,
		MaxBackoff:      5 * time.Millisecond,
		RetryStatus:     sseclient.Transient,
		ReadIdleTimeout: 100 * time.Millisecond,
		OnRetry: func(reason error, _ time.Duration) {
			var se *sseclient.StatusError
			switch {
			case errors.Is(reason, sseclient.ErrIdleTimeout):
				reasons.Store("idle", true)
			case errors.As(reason, &se):
				reasons.Store("status", true)
			}
		},
	}
	evs, err := collect(t, c, get(t, p.URL()+"/events"), 40*time.Second)
	if !errors.Is(err, sseclient.ErrNoContent) {
		t.Fatalf("got error %v, want ErrNoContent", err)
	}
	next := 1
	for _, ev := range evs {
		if ev.Type == "close" {
			continue
		}
		if want := (got{"message", fmt.Sprintf("event %d", next), strconv.Itoa(next)}); ev != want {
			t.Fatalf("got %q, want %q", ev, want)
		}
		next++
	}
	if next != rs.n+1 {
		t.Fatalf("got %d events, want %d", next-1, rs.n)
	}
	t.Logf("%d connections, %d stalled, %d requests reached the server, %d answered 503, %d redirected",
		p.conns.Load(), p.stalls.Load(), rs.requests.Load(), rs.unavailable.Load(), rs.redirects.Load())
	if p.conns.Load() < 50 {
		t.Errorf("got %d connections, want at least 50", p.conns.Load())
	}
	if p.stalls.Load() < 3 || rs.unavailable.Load() < 3 || rs.redirects.Load() < 3 {
		t.Errorf("too few faults: %d stalls, %d 503s, %d redirects; want at least 3 each", p.stalls.Load(), rs.unavailable.Load(), rs.redirects.Load())
	}
	for _, r := range []string{"idle", "status"} {
		if _, ok := reasons.Load(r); !ok {
			t.Errorf("OnRetry never saw a %s reason", r)
		}
	}
}

// Without faults, a stream that ends is resumed where it ended: the second
// request carries the ID of the last event.
func TestReconnectLastEventID(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ids []string
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, strings.Join(r.Header.Values("Last-Event-ID"), ","))
		n := len(ids)
		mu.Unlock()
		if n > 3 {
			w.Header().Set("Content-Type", "text/plain")
			return
		}
		streamHead(w)
		switch n {
		case 1:
			w.Write([]byte("id: a\ndata: 1\n\ndata: 2\n\n"))
		case 2:
			// The ID carries over from the last connection, until this
			// one resets it.
			w.Write([]byte("data: 2b\n\nid\ndata: 3\n\n"))
		case 3:
			w.Write([]byte("id: b\ndata: 4\n\nid: c\ndata: never ended\n"))
		}
	}))
	c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond}
	req := get(t, srv.URL)
	req.Header.Set("Last-Event-ID", "start")
	evs, err := collect(t, c, req, 10*time.Second)
	want := []got{{"message", "1", "a"}, {"message", "2", "a"}, {"message", "2b", "a"}, {"message", "3", ""}, {"message", "4", "b"}}
	if fmt.Sprintf("%q", evs) != fmt.Sprintf("%q", want) {
		t.Errorf("\ngot  %q\nwant %q", evs, want)
	}
	if !errors.Is(err, sseclient.ErrContentType) {
		t.Errorf("got error %v, want ErrContentType", err)
	}
	if want := []string{"start", "a", "", "b"}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("Last-Event-ID headers: got %q, want %q", ids, want)
	}
}
