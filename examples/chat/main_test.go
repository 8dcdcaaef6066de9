package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/internal/browsertest"
)

// The browser tests run in one headless Chromium the package's tests
// share (internal/browsertest); each test opens its own tabs in it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(browsertest.WithBrowser(m)) }

// testServer is a chat server on a loopback port, shut down with its test.
type testServer struct {
	*server
	url  string
	stop func() error // shuts the server down, as Ctrl-C does; once
}

// startServer starts a chat server on a free loopback port, which tells
// browsers to reconnect after retry.
func startServer(t *testing.T, retry time.Duration) *testServer {
	t.Helper()
	return startServerAt(t, "127.0.0.1:0", retry)
}

// startServerAt is startServer on the address addr.
func startServerAt(t *testing.T, addr string, retry time.Duration) *testServer {
	t.Helper()
	return startServerWith(t, addr, config{Retry: retry})
}

// startServerWith is startServerAt with cfg, whose Log is the test's. A
// test run by TestOnEcho5 gets a server on Echo v5.
func startServerWith(t *testing.T, addr string, cfg config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, ln, cfg)
}

// startServerOn is startServerWith on the listener ln.
func startServerOn(t *testing.T, ln net.Listener, cfg config) *testServer {
	t.Helper()
	cfg.Log = t.Output()
	if cfg.Echo == 0 && strings.HasPrefix(t.Name(), "TestOnEcho5/") {
		cfg.Echo = 5
	}
	srv, err := newServer(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.serve(ln) }()
	ts := &testServer{server: srv, url: "http://" + ln.Addr().String()}
	ts.stop = sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.shutdown(ctx)
		if serr := <-served; serr != nil && err == nil {
			err = serr
		}
		return err
	})
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ts
}

// client returns an HTTP client whose connections close with the test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}
