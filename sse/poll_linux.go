//go:build linux

package sse

// This file owns the poller on Linux: one goroutine that learns, for every
// taken-over connection at once, that its client left, so that an idle
// taken-over stream needs no goroutine of its own blocked in a read.

import (
	"crypto/tls"
	"sync"
	"syscall"
)

// connPoller waits in epoll(7) for the end of the connections streams
// took over: the client's FIN (EPOLLRDHUP), a reset or an error (EPOLLHUP,
// EPOLLERR, which epoll always reports). Each connection is armed once
// (EPOLLONESHOT) and never for reading: bytes a client sends wake nothing.
// The goroutine runs only while it watches a connection: it stops when the
// last one is removed, and the next add starts it again.
type connPoller struct {
	mu      sync.Mutex
	ready   bool // epfd and the wake pipe are open
	failed  bool // they could not be opened: streams read instead
	epfd    int
	wake    [2]int // a pipe whose read end, watched too, wakes the loop
	next    uint64
	conns   map[uint64]*Stream
	running bool // the loop's goroutine runs
}

// poller is the process's one connPoller.
var poller connPoller

// wakeKey is the key of the wake pipe's read end; streams' keys start at 1.
const wakeKey = 0

// add watches the connection s took over, and reports whether it could:
// not for a connection without a file descriptor, nor where epoll failed.
func (p *connPoller) add(s *Stream) bool {
	conn := s.conn
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.setUp() {
		return false
	}
	p.next++
	key := p.next
	ev := epollEvent(syscall.EPOLLRDHUP|syscall.EPOLLONESHOT, key)
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil || cerr != nil {
		return false
	}
	s.pollID = key
	p.conns[key] = s
	if !p.running {
		p.running = true
		go p.loop()
	}
	return true
}

// remove stops watching the connection of s, before it is closed.
func (p *connPoller) remove(s *Stream) {
	conn := s.conn
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	if raw, err := conn.(syscall.Conn).SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, s.pollID)
	if len(p.conns) == 0 && p.running {
		_, _ = syscall.Write(p.wake[1], []byte{0}) // the loop stops
	}
}

// setUp opens the epoll instance and the wake pipe the first time, and
// reports whether they are open. p.mu is held.
func (p *connPoller) setUp() bool {
	if p.ready || p.failed {
		return p.ready
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		p.failed = true
		return false
	}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		p.failed = true
		return false
	}
	ev := epollEvent(syscall.EPOLLIN, wakeKey)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		p.failed = true
		return false
	}
	p.epfd, p.ready = epfd, true
	p.conns = make(map[uint64]*Stream)
	return true
}

// loop waits for connections to end and tells their streams, until it
// watches none.
func (p *connPoller) loop() {
	var evs [64]syscall.EpollEvent
	var gone []*Stream
	for {
		n, err := syscall.EpollWait(p.epfd, evs[:], -1)
		if err != nil && err != syscall.EINTR {
			// Not expected of a valid epoll instance: tell every
			// stream, whose reads would then find out for themselves.
			p.mu.Lock()
			for k, s := range p.conns {
				delete(p.conns, k)
				gone = append(gone, s)
			}
			p.running = false
			p.mu.Unlock()
			for _, s := range gone {
				s.leave()
			}
			return
		}
		gone = gone[:0]
		p.mu.Lock()
		for _, ev := range evs[:max(n, 0)] {
			key := eventKey(ev)
			if key == wakeKey {
				var b [64]byte
				for {
					if m, _ := syscall.Read(p.wake[0], b[:]); m <= 0 {
						break
					}
				}
				continue
			}
			if s, ok := p.conns[key]; ok {
				delete(p.conns, key)
				gone = append(gone, s)
			}
		}
		stop := len(p.conns) == 0
		if stop {
			p.running = false
		}
		p.mu.Unlock()
		for _, s := range gone {
			s.leave()
		}
		if stop {
			return
		}
	}
}

// epollEvent returns an epoll event for events whose data is key.
func epollEvent(events uint32, key uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: events, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
}

// eventKey returns the key an epoll event carries.
func eventKey(ev syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
