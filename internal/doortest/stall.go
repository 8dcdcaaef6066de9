package doortest

// This file tests a client whose connection stops taking bytes at once, so
// that the write timeout is met in a flush rather than in a write.

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testFlushTimeout: a stream whose connection takes no more bytes after
// the first event ends with ErrWriteTimeout once its next flush has
// waited WriteTimeout, and the error handler is told: the door hands the
// core a writer whose flush reports the failure (Echo v5's Response.Flush
// drops it).
func testFlushTimeout(t *testing.T, d Door) {
	const writeTimeout = 200 * time.Millisecond
	streams := make(chan *sse.Stream, 1)
	next := make(chan struct{})
	errs := &errLog{}
	var stalls stallListener
	cfg := Config{Config: sse.Config{WriteTimeout: writeTimeout}, OnError: errs.add}
	r := serve(t, d, cfg, streamsTo(streams, func(s *sse.Stream, _ *http.Request) error {
		go func() {
			if s.Send(event.Event{Data: "one"}) != nil {
				return
			}
			select {
			case <-next:
				s.Send(event.Event{Data: "two"}) // short: its flush is what waits
			case <-s.Context().Done():
			}
		}()
		return nil
	}), func(srv *httptest.Server) {
		stalls.Listener = srv.Listener
		srv.Listener = &stalls
	})
	res := r.get(t, "/events")
	expectStream(t, res)
	s := receive(t, streams, "the stream")
	dec := event.NewDecoder(res.Body)
	expectEvent(t, dec, "message", "one")
	stalls.stallAll()
	close(next)
	expectReason(t, ended(t, s), sse.ErrWriteTimeout)
	told := false
	for _, err := range errs.all() {
		told = told || errors.Is(err, sse.ErrWriteTimeout)
	}
	if !told {
		t.Fatalf("the error handler was told %v, want ErrWriteTimeout", errs.all())
	}
}

// stallListener is a listener whose connections can be made to take no
// more bytes: a write then waits for its deadline and fails as a write to
// a full socket does.
type stallListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*stallConn
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &stallConn{Conn: c, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns = append(l.conns, sc)
	l.mu.Unlock()
	return sc, nil
}

// stallAll stalls every connection accepted so far.
func (l *stallListener) stallAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.mu.Lock()
		c.stalled = true
		c.mu.Unlock()
	}
}

// stallConn is a connection of a stallListener.
type stallConn struct {
	net.Conn
	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	stalled  bool
	deadline time.Time
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	stalled, deadline := c.stalled, c.deadline
	c.mu.Unlock()
	if !stalled {
		return c.Conn.Write(b)
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		tm := time.NewTimer(time.Until(deadline))
		defer tm.Stop()
		expired = tm.C
	}
	select {
	case <-expired:
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
