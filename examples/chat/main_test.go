package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

// chromium is Debian's chromium package; scripts/test.sh installs it.
const chromium = "/usr/bin/chromium"

// browser is the one headless Chromium the tests share; each test opens
// its own tabs in it with newTab.
var browser context.Context

func TestMain(m *testing.M) { goleak.VerifyTestMain(withBrowser{m}) }

// withBrowser runs the tests with the shared browser started, and stops it,
// waiting for its process to exit, before goleak looks for leftovers.
type withBrowser struct{ m *testing.M }

func (w withBrowser) Run() int {
	if _, err := os.Stat(chromium); err != nil {
		fmt.Fprintf(os.Stderr, "examples/chat: the browser tests need %s (Debian's chromium package): run scripts/test.sh, which installs it\n", chromium)
		return 1
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, --no-first-run, --disable-background-networking, --disable-sync, ...
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		// Nothing may reach for the network: this machine's is loopback only.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		// No user-data-dir: chromedp makes a fresh temporary one per run and
		// removes it when the browser exits.
	)
	allocCtx, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, stopBrowser := chromedp.NewContext(allocCtx)
	defer stopAlloc() // waits for the browser process to exit
	defer stopBrowser()

	// The first Run on ctx starts the browser and ties the browser's life to
	// the context it is given, so it gets ctx itself, which lives as long
	// as the package's tests: a context with a timeout would stop the
	// browser when the timeout ends, under whichever test runs then. The
	// start is bounded instead by a timer that cancels ctx; each step of a
	// test has its own timeout, on a context derived from its tab.
	const startTimeout = 30 * time.Second
	slow := time.AfterFunc(startTimeout, stopBrowser)
	err := chromedp.Do(ctx) // starts the browser
	if !slow.Stop() {
		err = fmt.Errorf("not started within %v: %w", startTimeout, err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "examples/chat: cannot start %s: %v\n", chromium, err)
		return 1
	}
	browser = ctx
	code := w.m.Run()

	closing, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := chromedp.Cancel(ctx); err != nil && closing.Err() == nil { // closes the browser gracefully
		fmt.Fprintf(os.Stderr, "examples/chat: closing the browser: %v\n", err)
	}
	return code
}

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
