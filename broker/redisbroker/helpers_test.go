package redisbroker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

var prefixes atomic.Int64

// testPrefix returns a key prefix no other test uses, so that tests share
// the Redis server without seeing each other's topics.
func testPrefix(t testing.TB) string {
	return strings.NewReplacer("{", "(", "}", ")").Replace(t.Name()) + "-" + itoa(prefixes.Add(1))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// newClient returns a client of the Redis at addr, closed when the test
// ends (after the brokers and backends, which were made after it).
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// errorLog records what a backend tells its ErrorHandler.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) handle(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// all returns the recorded errors.
func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// count returns how many recorded errors match target.
func (l *errorLog) count(target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, err := range l.errs {
		if target == nil || errors.Is(err, target) {
			n++
		}
	}
	return n
}

// instance is one process of a scaled-out app: a broker on the Redis
// backend, and an Echo server whose GET /events?topic=a&topic=b subscribes
// its stream to the topics given (sending a "gap" event on ErrGap).
type instance struct {
	b       *broker.Broker
	backend *Backend
	srv     *httptest.Server
	client  *http.Client
	errs    *errorLog
	notices *errorLog // what the backend tells its NoticeHandler
}

// newInstance starts an instance on the Redis client talks to, with cfg
// (whose ErrorHandler and NoticeHandler are replaced by recording ones).
func newInstance(t testing.TB, client redis.UniversalClient, cfg Config) *instance {
	t.Helper()
	return newInstanceWith(t, client, cfg, func(b *Backend) broker.Backend { return b })
}

// newInstanceWith is newInstance with the broker's backend wrapped.
func newInstanceWith(t testing.TB, client redis.UniversalClient, cfg Config, wrap func(*Backend) broker.Backend) *instance {
	t.Helper()
	errs, notices := &errorLog{}, &errorLog{}
	cfg.ErrorHandler, cfg.NoticeHandler = errs.handle, notices.handle
	backend, err := New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Backend: wrap(backend)})
	if err != nil {
		t.Fatal(err)
	}
	in := serve(t, b)
	in.backend, in.errs, in.notices = backend, errs, notices
	return in
}

// serve serves b's streams on a loopback port until the test ends.
func serve(t testing.TB, b *broker.Broker) *instance {
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		if err := b.Subscribe(s, c.QueryParams()["topic"]...); errors.Is(err, broker.ErrGap) {
			return s.Send(event.Event{Type: "gap", Data: err.Error()})
		} else if err != nil {
			return err
		}
		return nil
	})
	srv := httptest.NewServer(e)
	in := &instance{b: b, srv: srv, client: srv.Client()}
	t.Cleanup(func() {
		b.Close() // ends every stream, and closes the backend
		srv.CloseClientConnections()
		srv.Close()
		in.client.CloseIdleConnections()
	})
	return in
}

// publish publishes data on topic through in and returns the ID.
func (in *instance) publish(t testing.TB, topic, data string) string {
	t.Helper()
	id, err := in.b.Publish(context.Background(), topic, event.Event{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// session is one connection of a browser-like client.
type session struct {
	resp *http.Response
	dec  *event.Decoder
	from string // the Last-Event-ID it connected with
	seen bool

	cancel context.CancelFunc
}

// dial opens a stream on topics at in, sending lastID as Last-Event-ID if
// set, as a reconnecting browser does. The stream is closed when the test
// ends, if not before.
func (in *instance) dial(t testing.TB, lastID string, topics ...string) *session {
	t.Helper()
	s, err := in.open(lastID, topics...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// open is dial for any goroutine: the caller closes the stream.
func (in *instance) open(lastID string, topics ...string) (*session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	q := url.Values{"topic": topics}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.srv.URL+"/events?"+q.Encode(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, errors.New("GET /events: " + resp.Status)
	}
	return &session{resp: resp, dec: event.NewDecoder(resp.Body), from: lastID, cancel: cancel}, nil
}

// next returns the next event, failing the test if the stream ends.
func (s *session) next(t testing.TB) event.Event {
	t.Helper()
	ev, err := s.dec.Decode()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	s.seen = true
	return ev
}

// lastID returns the Last-Event-ID to reconnect with.
func (s *session) lastID() string {
	if !s.seen {
		return s.from
	}
	return s.dec.LastEventID()
}

func (s *session) close() {
	s.resp.Body.Close()
	s.cancel()
}

// eventually waits until cond holds, failing the test after 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// inEachMode runs f as a subtest for each Delivery: what it checks holds
// with the single log and with interest-based delivery alike.
func inEachMode(t *testing.T, f func(t *testing.T, mode Delivery)) {
	for _, mode := range []Delivery{DeliverAll, DeliverInterest} {
		t.Run(mode.String(), func(t *testing.T) { f(t, mode) })
	}
}
