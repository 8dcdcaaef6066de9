package redisbroker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// TestClosedChannelDoesNotTakeTheBrokerDown has a handler close its
// stream's channel after Subscribe, which the broker forbids, while the
// stream is still subscribed (its client reads nothing, and its pump is
// stuck writing an event too big for the connection's buffers): the
// broker's next send on it, from the backend's log reader, must not panic
// and take the process down, but end that subscription, abort the stream
// with ErrChannelClosed and tell the ErrorHandler, while another client
// receives every event.
func TestClosedChannelDoesNotTakeTheBrokerDown(t *testing.T) {
	client := newClient(t, shared.Addr)
	backend, err := New(client, Config{Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	b, err := broker.New(broker.Config{Backend: backend, ErrorHandler: func(err error) { errs <- err }})
	if err != nil {
		t.Fatal(err)
	}
	closeNow, closed := make(chan struct{}), make(chan struct{})
	aborted := make(chan error, 1)
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		if err := b.Subscribe(s, "a"); err != nil {
			return err
		}
		if c.QueryParam("bad") == "" {
			return nil
		}
		select {
		case <-closeNow:
		case <-s.Done():
			return nil
		}
		close(s.C) // the mistake
		// Nothing is being published now; this takes the broker's lock,
		// so that the race detector sees the close happen before the
		// broker's next send (a program that makes this mistake has a
		// data race besides).
		b.Stats()
		close(closed)
		// Its pump is stuck writing until the write timeout: the cause is
		// known before the stream is done.
		<-s.Context().Done()
		aborted <- context.Cause(s.Context())
		return nil
	})
	srv := httptest.NewServer(e)
	hc := srv.Client()
	t.Cleanup(func() {
		b.Close()
		srv.CloseClientConnections()
		srv.Close()
		hc.CloseIdleConnections()
	})
	open := func(query string) *http.Response {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?"+query, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	open("bad=1") // never read
	good := event.NewDecoder(open("").Body)
	eventually(t, "two subscribers", func() bool { return b.Stats().Subscribers == 2 })

	ctx := context.Background()
	next := func(want string) {
		t.Helper()
		ev, err := good.Decode()
		if err != nil {
			t.Fatalf("the other client: %v", err)
		}
		if d, _ := ev.Data.(string); d != want {
			t.Fatalf("the other client got %d bytes, want %d", len(d), len(want))
		}
	}
	// More than the bad connection's buffers hold: its pump takes it
	// from the channel and is stuck writing it.
	big := strings.Repeat("x", 16<<20)
	if _, err := b.Publish(ctx, "a", event.Event{Data: big}); err != nil {
		t.Fatal(err)
	}
	next(big)
	close(closeNow)
	<-closed
	for i := range 10 {
		if _, err := b.Publish(ctx, "a", event.Event{Data: itoa(int64(i))}); err != nil {
			t.Fatal(err)
		}
		next(itoa(int64(i)))
	}
	select {
	case err := <-errs:
		if !errors.Is(err, broker.ErrChannelClosed) {
			t.Fatalf("ErrorHandler got %v, want ErrChannelClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ErrorHandler was not told")
	}
	select {
	case err := <-aborted:
		if !errors.Is(err, broker.ErrChannelClosed) {
			t.Fatalf("the stream ended with %v, want ErrChannelClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not aborted")
	}
	if st := b.Stats(); st.Subscribers != 1 {
		t.Fatalf("%d subscribers, want 1", st.Subscribers)
	}
	if st := backend.Stats(); !st.Connected || st.Delivered != 11 {
		t.Fatalf("the log reader: %+v", st)
	}
}
