// Package stallnet is a listener for tests whose connections can be made
// to take no more bytes, as a client's that stops reading does once the
// buffers between them are full: a write then waits for its deadline and
// fails as a write to a full socket does. A real client's kernel takes
// some bytes before it stops, and how many is not known; a stalled
// connection takes none from then on, so a test knows exactly what its
// client received.
package stallnet

import (
	"net"
	"os"
	"sync"
	"time"
)

// A Listener wraps a listener; its connections stall when told to.
type Listener struct {
	net.Listener

	mu    sync.Mutex
	conns map[string]*conn // by remote address
}

// Wrap returns a Listener accepting from ln.
func Wrap(ln net.Listener) *Listener { return &Listener{Listener: ln} }

// Accept implements [net.Listener].
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &conn{Conn: c, closed: make(chan struct{})}
	l.mu.Lock()
	if l.conns == nil {
		l.conns = make(map[string]*conn)
	}
	l.conns[c.RemoteAddr().String()] = sc
	l.mu.Unlock()
	return sc, nil
}

// Stall makes the connection from remote address addr (the client's local
// address) take no more bytes, and reports whether there is one.
func (l *Listener) Stall(addr string) bool {
	l.mu.Lock()
	c := l.conns[addr]
	l.mu.Unlock()
	if c != nil {
		c.stall()
	}
	return c != nil
}

// StallAll makes every connection accepted so far take no more bytes.
func (l *Listener) StallAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.stall()
	}
}

// conn is a connection of a Listener.
type conn struct {
	net.Conn
	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	stalled  bool
	deadline time.Time
}

func (c *conn) stall() {
	c.mu.Lock()
	c.stalled = true
	c.mu.Unlock()
}

func (c *conn) Write(b []byte) (int, error) {
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

func (c *conn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
