package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The load generator speaks HTTP/1.1 over plain TCP to 127.0.0.1: it
// writes the request line itself and reads the response with
// http.ReadResponse, which decodes the chunked body; with gzip it asks for
// it and decodes the body with compress/gzip.

// sseConn is one client's open event stream.
type sseConn struct {
	conn   net.Conn
	body   io.Reader     // decoded: de-chunked, and gunzipped if asked
	polled *polledReader // nil unless the connection is polled
}

// Sizes of the buffer a client reads the connection through: large for the
// one client of a throughput run (one read system call then takes many
// events, so that the client is never what limits the run), small for the
// thousands of a broadcast.
const (
	bigReadBuffer   = 256 << 10
	smallReadBuffer = 4 << 10
)

// dialSSE connects to addr, sends GET path and waits for the response
// headers, within timeout. It reads through a buffer of bufSize bytes, and
// polls the socket (see polledReader) if poll is set.
func dialSSE(ctx context.Context, addr, path string, gz bool, bufSize int, poll bool, timeout time.Duration) (*sseConn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var src io.Reader = conn
	if poll {
		rc, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			conn.Close()
			return nil, err
		}
		pr := &polledReader{rc: rc, deadline: time.Now().Add(timeout)}
		src = pr
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var req strings.Builder
	req.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n")
	if gz {
		req.WriteString("Accept-Encoding: gzip\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	res, err := http.ReadResponse(bufio.NewReaderSize(src, bufSize), nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the response headers: %w", err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		conn.Close()
		return nil, fmt.Errorf("GET %s: %s, Content-Type %q", path, res.Status, res.Header.Get("Content-Type"))
	}
	c := &sseConn{conn: conn, body: res.Body}
	if pr, ok := src.(*polledReader); ok {
		c.polled = pr
	}
	if gz {
		if ce := res.Header.Get("Content-Encoding"); ce != "gzip" {
			conn.Close()
			return nil, fmt.Errorf("GET %s: asked for gzip, got Content-Encoding %q", path, ce)
		}
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("reading the gzip header: %w", err)
		}
		c.body = zr
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *sseConn) Close() error { return c.conn.Close() }

// pollSleep is how long a polledReader sleeps when the socket is empty.
const pollSleep = 50 * time.Microsecond

// polledReader reads a TCP connection without ever waiting in Go's network
// poller: when the socket is empty it sleeps for pollSleep and reads again.
// A client that waits in the poller is woken by every write of the server,
// and on a virtual machine that wake-up (an interrupt to the other CPU)
// costs the server's CPU more than the write itself, and the client more
// than it can afford: the run would measure wake-ups. Polled, the client
// takes many events per read, as a client across a real network would, and
// the server is what limits the run.
type polledReader struct {
	rc       syscall.RawConn
	deadline time.Time
}

func (r *polledReader) Read(p []byte) (int, error) {
	var n int
	var err error
	cerr := r.rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				if time.Now().After(r.deadline) {
					n, err = 0, os.ErrDeadlineExceeded
					return true
				}
				ts := syscall.NsecToTimespec(int64(pollSleep))
				_ = syscall.Nanosleep(&ts, nil)
				continue
			}
			return true
		}
	})
	n = max(n, 0)
	if err == nil {
		err = cerr
	}
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// seqMarker starts the payload of every event the servers produce.
var seqMarker = []byte(`{"seq":`)

// countEvents reads until it has seen n payloads or until stop, whichever
// comes first, and returns how many it saw. It only counts, so that the
// client is never what limits a throughput run.
func (c *sseConn) countEvents(n int, stop time.Time) (int, error) {
	deadline := stop.Add(30 * time.Second)
	_ = c.conn.SetReadDeadline(deadline)
	if c.polled != nil {
		c.polled.deadline = deadline
	}
	buf := make([]byte, bigReadBuffer)
	carry, seen := 0, 0
	keep := len(seqMarker) - 1
	for {
		k, err := c.body.Read(buf[carry:])
		m := carry + k
		seen += bytes.Count(buf[:m], seqMarker)
		if seen >= n || time.Now().After(stop) {
			return seen, nil
		}
		if err != nil {
			return seen, fmt.Errorf("after %d of %d events: %w", seen, n, err)
		}
		if m > keep {
			carry = copy(buf, buf[m-keep:m])
		} else {
			carry = m
		}
	}
}

// dataMarker starts the line of every payload the servers produce.
var dataMarker = []byte(`data: {"seq":`)

// readEvents reads the stream and calls f for each payload with its seq
// and ts fields and the time (UnixNano) the read that completed it
// returned, until the connection ends. It parses in bulk, with one clock
// reading per read, so that thousands of clients cost one core little.
func (c *sseConn) readEvents(f func(seq int, ts, now int64)) error {
	buf := make([]byte, 0, 8<<10)
	for {
		if len(buf) == cap(buf) {
			// A line longer than the buffer: not a payload; keep its end.
			buf = buf[:copy(buf, buf[len(buf)-len(dataMarker):])]
		}
		n, err := c.body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		now := time.Now().UnixNano()
		pos := 0
		for {
			i := bytes.Index(buf[pos:], dataMarker)
			if i < 0 {
				// The end may hold the start of a marker.
				pos = max(pos, len(buf)-len(dataMarker)+1)
				break
			}
			start := pos + i
			j := bytes.IndexByte(buf[start:], '\n')
			if j < 0 {
				pos = start // the rest of the line is still to come
				break
			}
			seq, ts, ok := parsePayload(buf[start+len("data: ") : start+j])
			if !ok {
				return fmt.Errorf("malformed payload %q", buf[start:start+j])
			}
			f(seq, ts, now)
			pos = start + j + 1
		}
		buf = buf[:copy(buf, buf[pos:])]
		if err != nil {
			return err
		}
	}
}

// parsePayload reads seq and ts from a payload makePayload built.
func parsePayload(b []byte) (seq int, ts int64, ok bool) {
	b = b[len(seqMarker):]
	n, b := leadingInt(b)
	rest, ok := bytes.CutPrefix(b, []byte(`,"ts":`))
	if !ok {
		return 0, 0, false
	}
	t, _ := leadingInt(rest)
	return int(n), t, true
}

func leadingInt(b []byte) (int64, []byte) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, b[i:]
}

// clientGroup is many subscribers of /events reading concurrently.
type clientGroup struct {
	hist      histogram
	delivered atomic.Int64
	disorder  atomic.Int64 // events received out of order or twice
	clients   []*client
	wg        sync.WaitGroup
}

type client struct {
	conn     *sseConn
	count    atomic.Int64
	lastRecv atomic.Int64 // UnixNano of the last payload received
}

// startClients opens n subscribers to path, at most conc at a time, and
// returns once every one has its response headers (or the first error).
// Each then reads its stream until closed, recording every payload's
// latency from the ts it carries.
func startClients(ctx context.Context, addr, path string, gz bool, n, conc int, timeout time.Duration) (*clientGroup, error) {
	g := &clientGroup{}
	if err := g.open(ctx, addr, path, gz, n, conc, timeout); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// open adds n subscribers to g, as startClients does. On error, some may
// have been added: the caller closes g.
func (g *clientGroup) open(ctx context.Context, addr, path string, gz bool, n, conc int, timeout time.Duration) error {
	first := len(g.clients)
	g.clients = append(g.clients, make([]*client, n)...)
	return dialMany(ctx, addr, path, gz, n, conc, timeout, func(i int, c *sseConn) {
		cl := &client{conn: c}
		g.clients[first+i] = cl
		g.wg.Go(func() { g.read(cl) })
	}, first)
}

// dialMany opens n subscribers to path, at most conc at a time, handing
// each to opened with its index, and returns once every one has its
// response headers, or the first error (its client numbered from first).
func dialMany(ctx context.Context, addr, path string, gz bool, n, conc int, timeout time.Duration, opened func(i int, c *sseConn), first int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, conc)
	var dialing sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		dialing.Go(func() {
			defer func() { <-sem }()
			c, err := dialSSE(ctx, addr, path, gz, smallReadBuffer, false, timeout)
			if err != nil {
				cancel(fmt.Errorf("client %d: %w", first+i, err))
				return
			}
			opened(i, c)
		})
	}
	dialing.Wait()
	return context.Cause(ctx)
}

func (g *clientGroup) read(cl *client) {
	last := -1
	_ = cl.conn.readEvents(func(seq int, ts, now int64) {
		g.hist.add(now - ts)
		if seq <= last {
			g.disorder.Add(1)
		}
		last = seq
		cl.count.Add(1)
		cl.lastRecv.Store(now)
		g.delivered.Add(1)
	})
}

// stall is how long waitDelivered waits for the next payload before it
// concludes that no more will come (the server dropped some subscribers).
// -quick shortens it.
var stall = 3 * time.Second

// waitDelivered waits until want payloads have arrived in all, or none has
// for stall, or timeout.
func (g *clientGroup) waitDelivered(want int64, timeout time.Duration) bool {
	now := time.Now()
	deadline := now.Add(timeout)
	last, changed := g.delivered.Load(), now
	for {
		d := g.delivered.Load()
		if d >= want {
			return true
		}
		now = time.Now()
		if d != last {
			last, changed = d, now
		}
		if now.Sub(changed) > stall || now.After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// minCount is the fewest payloads any one client received.
func (g *clientGroup) minCount() int64 {
	m := int64(-1)
	for _, c := range g.clients {
		if c == nil {
			continue
		}
		if n := c.count.Load(); m < 0 || n < m {
			m = n
		}
	}
	return m
}

// lastRecv is when the last payload arrived, over all clients.
func (g *clientGroup) lastRecv() int64 {
	var m int64
	for _, c := range g.clients {
		if c != nil {
			m = max(m, c.lastRecv.Load())
		}
	}
	return m
}

// close closes every connection and waits for the readers to end.
func (g *clientGroup) close() {
	for _, c := range g.clients {
		if c != nil {
			c.conn.Close()
		}
	}
	g.wg.Wait()
}

// histogram counts durations in nanoseconds in log-linear buckets: exact
// below 128 ns, then 128 buckets per power of two (under 0.8% error). It
// is safe for concurrent use.
type histogram struct {
	counts [58 << 7]atomic.Uint64
}

func histIndex(v uint64) int {
	if v < 128 {
		return int(v)
	}
	shift := bits.Len64(v) - 8
	return (shift+1)<<7 + int(v>>shift) - 128
}

// histValue is the middle of bucket i.
func histValue(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	shift := i>>7 - 1
	lo := uint64(i&127+128) << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *histogram) add(ns int64) {
	if ns < 0 {
		ns = 0 // clocks of two processes; never seen, but never negative
	}
	h.counts[histIndex(uint64(ns))].Add(1)
}

func (h *histogram) total() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// quantile returns the q-quantile (0 < q <= 1) in nanoseconds, or 0 when
// empty.
func (h *histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= rank {
			return histValue(i)
		}
	}
	return histValue(len(h.counts) - 1)
}
