package broker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// httpEnv is an Echo server whose GET /events?topic=a&topic=b subscribes
// its stream to the topics given; on ErrGap the handler sends a "gap"
// event.
type httpEnv struct {
	b      *Broker
	srv    *httptest.Server
	client *http.Client
}

func newHTTP(t *testing.T, b *Broker, cfg echosse.Config) *httpEnv {
	t.Helper()
	e := echo.New()
	e.Use(echosse.Middleware(cfg))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		if err := b.Subscribe(s, c.QueryParams()["topic"]...); errors.Is(err, ErrGap) {
			return s.Send(event.Event{Type: "gap", Data: ""})
		} else if err != nil {
			return err
		}
		return nil
	})
	srv := httptest.NewServer(e)
	env := &httpEnv{b: b, srv: srv, client: srv.Client()}
	t.Cleanup(func() {
		b.Close() // ends every stream
		srv.CloseClientConnections()
		srv.Close()
		env.client.CloseIdleConnections()
	})
	return env
}

// httpSession is one connection of a browser-like client.
type httpSession struct {
	resp *http.Response
	dec  *event.Decoder
	// The client's last event ID when it connected: like an EventSource,
	// it keeps it when a connection ends before an event arrives.
	from string
	seen bool // an event arrived
}

// dial opens a stream on topics, sending lastID as Last-Event-ID if set.
func (env *httpEnv) dial(ctx context.Context, lastID string, topics []string) (*httpSession, error) {
	q := url.Values{"topic": topics}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.srv.URL+"/events?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := env.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errors.New(resp.Status)
	}
	return &httpSession{resp: resp, dec: event.NewDecoder(resp.Body), from: lastID}, nil
}

func (s *httpSession) next() (event.Event, error) {
	ev, err := s.dec.Decode()
	if err == nil {
		s.seen = true
	}
	return ev, err
}

// lastID returns the Last-Event-ID to reconnect with.
func (s *httpSession) lastID() string {
	if !s.seen {
		return s.from
	}
	return s.dec.LastEventID()
}

func (s *httpSession) close() { s.resp.Body.Close() }

func TestHTTPForcedDisconnectMissesNothing(t *testing.T) {
	b, _ := newBroker(t, Config{})
	env := newHTTP(t, b, echosse.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	sess, err := env.dial(ctx, "", []string{"news"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first subscription", func() bool { return b.Stats().Subscribers == 1 })

	const total = 300
	published := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := b.Publish(ctx, "news", event.Event{Data: strconv.Itoa(i)}); err != nil {
				published <- err
				return
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		published <- nil
	}()

	var got []string
	disconnects := 0
	for len(got) < total {
		ev, err := sess.next()
		if err == nil {
			got = append(got, ev.Data.(string))
			if ev.Type == "gap" {
				t.Fatal("unexpected gap")
			}
			if len(got)%50 != 0 {
				continue
			}
			// Force a disconnect: from the client's side, or from the
			// server's, while events keep being published.
			if disconnects%2 == 0 {
				sess.close()
			} else {
				env.srv.CloseClientConnections()
			}
			disconnects++
			time.Sleep(5 * time.Millisecond)
		} else if ctx.Err() != nil {
			t.Fatalf("after %d events: %v", len(got), ctx.Err())
		}
		sess.close()
		if sess, err = env.dial(ctx, sess.lastID(), []string{"news"}); err != nil {
			t.Fatal(err)
		}
	}
	sess.close()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	want := make([]string, total)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want 0..%d, each once, in order", got, total-1)
	}
	if disconnects < 5 {
		t.Fatalf("only %d disconnects", disconnects)
	}
	st := b.Stats()
	if st.Gaps != 0 {
		t.Fatalf("got %+v: want no gap", st)
	}
	t.Logf("%d disconnects, %d events replayed", disconnects, st.Replayed)
}

func TestHTTPGapTellsTheHandler(t *testing.T) {
	b, _ := newBroker(t, Config{HistorySize: 2})
	env := newHTTP(t, b, echosse.Config{})
	for range 5 {
		publish(t, b, "news", "x")
	}
	sess, err := env.dial(t.Context(), "1", []string{"news"})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	ev, err := sess.next()
	if err != nil || ev.Type != "gap" {
		t.Fatalf("got %+v, %v; want the handler's gap event", ev, err)
	}
	id := publish(t, b, "news", "live")
	if ev, err := sess.next(); err != nil || ev.ID != id || ev.Data != "live" {
		t.Fatalf("got %+v, %v; want the live event %s", ev, err, id)
	}
}

func TestHTTPCloseEndsStreams(t *testing.T) {
	b, _ := newBroker(t, Config{})
	env := newHTTP(t, b, echosse.Config{})
	var sessions []*httpSession
	for range 3 {
		sess, err := env.dial(t.Context(), "", []string{"news", "chat"})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.close()
		sessions = append(sessions, sess)
	}
	eventually(t, "the subscriptions", func() bool { return b.Stats().Subscribers == 3 })
	publish(t, b, "chat", "last")
	for _, sess := range sessions {
		if ev, err := sess.next(); err != nil || ev.Data != "last" {
			t.Fatalf("got %+v, %v; want the event published", ev, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, sess := range sessions {
		wg.Go(func() {
			// The response ends without the close event: the browser
			// will reconnect and resume.
			if ev, err := sess.next(); err == nil {
				t.Errorf("got %+v, want the end of the stream", ev)
			}
		})
	}
	wg.Wait()
}
