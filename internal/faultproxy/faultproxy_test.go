package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers every line it reads with the same line, and records
// the lines, until the test ends.
type echoServer struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	ends  int // connections whose end of stream it read
	wg    sync.WaitGroup
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	var conns []net.Conn
	var connsMu sync.Mutex
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						if errors.Is(err, io.EOF) {
							s.mu.Lock()
							s.ends++
							s.mu.Unlock()
						}
						c.Close()
						return
					}
					s.mu.Lock()
					s.lines = append(s.lines, strings.TrimSpace(line))
					s.mu.Unlock()
					c.Write([]byte(line)) // to a closed client: an error, ignored
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) got() (lines []string, ends int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...), s.ends
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

// roundTrip sends line and returns the answer, or the error met within d.
func (c *client) roundTrip(line string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	return strings.TrimSpace(got), err
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForwards(t *testing.T) {
	srv := startEcho(t)
	p := startProxy(t, srv.ln.Addr().String())
	c := dial(t, p.Addr())
	for _, line := range []string{"a", "b", strings.Repeat("x", 100_000)} {
		got, err := c.roundTrip(line, 5*time.Second)
		if err != nil || got != line {
			t.Fatalf("round trip of %d bytes: got %d bytes, %v", len(line), len(got), err)
		}
	}
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() = %d, want 1", n)
	}
	c.Close()
	eventually(t, "the link to go", func() bool { return p.Conns() == 0 })
}

// While paused, a request goes unanswered and the server does not see it;
// on Resume it gets there, and the answer comes back, on the same
// connection, as from a server that was stopped and woke up.
func TestPauseHoldsAndResumeDelivers(t *testing.T) {
	srv := startEcho(t)
	p := startProxy(t, srv.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("before", time.Second); err != nil {
		t.Fatal(err)
	}
	p.Pause()
	p.Pause() // twice: still one pause
	_, err := c.roundTrip("during", 200*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("round trip while paused: %v, want a timeout", err)
	}
	// A connection made while paused is accepted, and held too.
	late := dial(t, p.Addr())
	late.Write([]byte("late\n"))
	time.Sleep(50 * time.Millisecond)
	if lines, _ := srv.got(); len(lines) != 1 {
		t.Fatalf("the server got %q while paused", lines)
	}
	p.Resume()
	p.Resume()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := c.r.ReadString('\n'); err != nil || got != "during\n" {
		t.Fatalf("after Resume: got %q, %v", got, err)
	}
	late.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := late.r.ReadString('\n'); err != nil || got != "late\n" {
		t.Fatalf("the late connection after Resume: got %q, %v", got, err)
	}
}

// A client that gives up during a pause and closes its connection still
// has its request delivered on Resume, then its close: a request that
// timed out on the client may have been carried out all the same.
func TestPauseDeliversWhatAClosedClientSent(t *testing.T) {
	srv := startEcho(t)
	p := startProxy(t, srv.ln.Addr().String())
	c := dial(t, p.Addr())
	p.Pause()
	c.Write([]byte("orphan\n"))
	time.Sleep(20 * time.Millisecond)
	c.Close()
	time.Sleep(20 * time.Millisecond)
	if lines, _ := srv.got(); len(lines) != 0 {
		t.Fatalf("the server got %q while paused", lines)
	}
	p.Resume()
	eventually(t, "the request and the close", func() bool {
		lines, ends := srv.got()
		return len(lines) == 1 && lines[0] == "orphan" && ends == 1
	})
	eventually(t, "the link to go", func() bool { return p.Conns() == 0 })
}

func TestCut(t *testing.T) {
	srv := startEcho(t)
	p := startProxy(t, srv.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("a", time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut() = %d, want 1", n)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("read after Cut: %v, want EOF", err)
	}
	eventually(t, "the server to see the end", func() bool { _, ends := srv.got(); return ends == 1 })
	// New connections work.
	if got, err := dial(t, p.Addr()).roundTrip("b", time.Second); err != nil || got != "b" {
		t.Fatalf("after Cut: %q, %v", got, err)
	}
}

func TestReset(t *testing.T) {
	srv := startEcho(t)
	p := startProxy(t, srv.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("a", time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Reset(); n != 1 {
		t.Fatalf("Reset() = %d, want 1", n)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	_, err := c.r.ReadString('\n')
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after Reset: %v, want a connection reset", err)
	}
}

func TestSetDelay(t *testing.T) {
	srv := startEcho(t)
	p := startProxy(t, srv.ln.Addr().String())
	c := dial(t, p.Addr())
	p.SetDelay(100 * time.Millisecond)
	start := time.Now()
	if _, err := c.roundTrip("slow", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("round trip with 100 ms each way took %v", d)
	}
	p.SetDelay(0)
	start = time.Now()
	if _, err := c.roundTrip("fast", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("round trip without delay took %v", d)
	}
}

// A target that is down: the client's connection is closed at once, and
// DialErr says why.
func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := startProxy(t, addr)
	c := dial(t, p.Addr())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from a proxy whose target is down: %v", err)
	}
	if err := p.DialErr(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("DialErr() = %v, want connection refused", err)
	}
}

// Close ends every connection, paused or not, and every goroutine (goleak
// checks the latter in TestMain).
func TestCloseWhilePaused(t *testing.T) {
	srv := startEcho(t)
	p, err := Start(srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	p.Pause()
	c.Write([]byte("held\n"))
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after Close: %v, want the connection closed", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("the proxy still accepts connections after Close")
	}
}
