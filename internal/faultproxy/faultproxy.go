// Package faultproxy is a TCP proxy for tests that puts between a client
// and a server the faults of a network or of a stalled server: it pauses
// forwarding (what a client sees of a server in a long fork or on a stalled
// VM: connections stay up, requests go unanswered, and the server gets them
// all when it wakes), cuts connections (FIN), resets them (RST), and slows
// them down.
//
//	p, err := faultproxy.Start(redisAddr)
//	...
//	defer p.Close()
//	client := redis.NewClient(&redis.Options{Addr: p.Addr()})
//	p.Pause()
//	time.Sleep(2 * time.Second) // the client's requests time out
//	p.Resume()                  // and reach the server now
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// A Proxy forwards the connections it accepts on a loopback port to a
// target address, each to a connection of its own. Its methods are safe for
// concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	links   map[*link]struct{}
	resume  chan struct{} // open while paused, closed by Resume
	delay   time.Duration
	closed  bool
	dialErr error // the last failure to reach the target

	wg sync.WaitGroup // the accept loop and every link's pumps
}

// link is one client connection and its connection to the target.
type link struct {
	client, server *net.TCPConn
	done           chan struct{} // closed when the link is torn down
	once           sync.Once
	pumps          sync.WaitGroup
}

// Start listens on a free loopback port and forwards every connection to
// target (host:port), until Close.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Pause stops forwarding, in both directions, on every connection and on
// those accepted from now on: what either side sends waits (in the
// proxy, one read's worth per direction, and in the kernel's buffers)
// until Resume. Connections stay open; one that a side closes meanwhile
// has what it sent before closing delivered on Resume, then its close,
// as a server that was stopped finds it when it wakes. Pausing a paused
// proxy does nothing.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

// Resume forwards again everything that waited, in order. Resuming a
// proxy that is not paused does nothing.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

// SetDelay makes every chunk of data forwarded from now on, in either
// direction, wait d first (0: no delay): a slow network. Data keeps its
// order.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Cut closes every open connection, on both sides, as a middlebox that
// gives up on them would: each side reads an end of stream (FIN); what
// waited in the proxy is dropped. New connections are accepted as usual.
// It returns the number of connections it cut.
func (p *Proxy) Cut() int { return p.teardown(false) }

// Reset is Cut with a reset (RST) instead: each side's next read or write
// fails with "connection reset by peer".
func (p *Proxy) Reset() int { return p.teardown(true) }

// Conns returns the number of connections being forwarded.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// DialErr returns the last error met connecting to the target, nil if
// none: a connection accepted while the target is down is closed at once.
func (p *Proxy) DialErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dialErr
}

// Close stops listening, closes every connection (dropping what waits in
// a pause), and returns once every goroutine of the proxy has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true // what waits is dropped, not let through
	p.mu.Unlock()
	err := p.ln.Close()
	p.teardown(false)
	p.wg.Wait()
	return err
}

func (p *Proxy) teardown(reset bool) int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(reset)
	}
	return len(links)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Lock()
			p.dialErr = err
			p.mu.Unlock()
			c.Close()
			continue
		}
		l := &link{client: c.(*net.TCPConn), server: s.(*net.TCPConn), done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.links[l] = struct{}{}
		p.mu.Unlock()
		l.pumps.Add(2)
		p.wg.Add(3)
		go p.pump(l, l.server, l.client)
		go p.pump(l, l.client, l.server)
		go func() {
			defer p.wg.Done()
			l.pumps.Wait()
			l.close(false)
			p.mu.Lock()
			delete(p.links, l)
			p.mu.Unlock()
		}()
	}
}

// pump copies from src to dst, holding each chunk while the proxy is
// paused or slowed, and passes src's end of stream on to dst after the
// data.
func (p *Proxy) pump(l *link, dst, src *net.TCPConn) {
	defer p.wg.Done()
	defer l.pumps.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close(false)
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if !p.hold(l) { // the end waits too: it comes after the data
					return
				}
				dst.CloseWrite()
				return
			}
			l.close(false)
			return
		}
	}
}

// hold waits while the proxy is paused, then for the delay; it returns
// false if the link was torn down meanwhile.
func (p *Proxy) hold(l *link) bool {
	var delay time.Duration
	for {
		p.mu.Lock()
		resume, closed := p.resume, p.closed
		delay = p.delay
		p.mu.Unlock()
		if closed {
			return false
		}
		if resume == nil {
			break
		}
		select {
		case <-resume:
		case <-l.done:
			return false
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-l.done:
			return false
		}
	}
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// close tears the link down: both connections closed, with a reset if
// asked.
func (l *link) close(reset bool) {
	l.once.Do(func() {
		if reset {
			l.client.SetLinger(0)
			l.server.SetLinger(0)
		}
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
}
