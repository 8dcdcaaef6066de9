package sseclient_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

// got is a received event, its Data as the string the client gives.
type got struct {
	Type, Data, ID string
}

func gotFrom(t testing.TB, ev event.Event) got {
	t.Helper()
	data, ok := ev.Data.(string)
	if !ok {
		t.Fatalf("Data is %T, want string", ev.Data)
	}
	return got{ev.Type, data, ev.ID}
}

// newServer starts a real HTTP server and a client for it, and closes both
// when the test ends.
func newServer(t testing.TB, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	hc := srv.Client()
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		srv.Close()
	})
	return srv, hc
}

// collect ranges over the events of a GET of url until the loop ends, at
// most for the given time, and returns the events and the final error.
func collect(t testing.TB, c *sseclient.Client, req *http.Request, limit time.Duration) ([]got, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var evs []got
	for ev, err := range c.Events(ctx, req) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, gotFrom(t, ev))
	}
	t.Fatal("the loop ended without an error")
	return nil, nil
}

// collectViews is collect through Client.Views, each view copied at once.
func collectViews(t testing.TB, c *sseclient.Client, req *http.Request, limit time.Duration) ([]got, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var evs []got
	for v, err := range c.Views(ctx, req) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, gotFrom(t, v.Event()))
	}
	t.Fatal("the loop ended without an error")
	return nil, nil
}

func get(t testing.TB, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// streamHead writes the headers of an event stream.
func streamHead(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
}

// proxy forwards TCP connections to an upstream address and, as plan says
// for the n-th connection, cuts it after some bytes from the upstream or
// stalls it there: stops forwarding and holds both ends open, as a
// half-open connection does, until the client gives up.
type proxy struct {
	ln       net.Listener
	upstream string
	plan     func(n int) (cutAfter int, stall bool)
	conns    atomic.Int64
	stalls   atomic.Int64
	done     chan struct{}
	wg       sync.WaitGroup
}

func newProxy(t testing.TB, upstream string, plan func(n int) (int, bool)) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, plan: plan, done: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := int(p.conns.Add(1))
		p.wg.Go(func() { p.serve(c, n) })
	}
}

func (p *proxy) serve(c net.Conn, n int) {
	defer c.Close()
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer u.Close()
	cutAfter, stall := p.plan(n)
	clientGone := make(chan struct{})
	p.wg.Go(func() {
		defer close(clientGone)
		io.Copy(u, c)
		u.Close() // the client is gone: so is the upstream
	})
	served := make(chan struct{})
	defer close(served)
	p.wg.Go(func() {
		select {
		case <-p.done:
			c.Close()
			u.Close()
		case <-served:
		}
	})
	io.CopyN(c, u, int64(cutAfter))
	if stall {
		p.stalls.Add(1)
		select {
		case <-clientGone:
		case <-p.done:
		}
	}
	c.Close()
	u.Close()
	<-clientGone
}
