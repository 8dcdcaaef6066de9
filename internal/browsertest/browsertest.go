// Package browsertest runs a package's tests with one headless Chromium
// (Debian's chromium package) driven by chromedp: each test opens tabs in
// it, and steps in a tab are bounded in time.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(browsertest.WithBrowser(m)) }
//
//	tab := browsertest.NewTab(t)
//	browsertest.Do(t, tab, chromedp.Navigate(url))
//	browsertest.WaitFor(t, tab, "the page to be live", `document.body.dataset.state === "live"`, 5*time.Second)
package browsertest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser; scripts/test.sh
// installs the package when it is missing.
const Path = "/usr/bin/chromium"

// browser is the shared browser, set while WithBrowser's Run runs the tests.
var browser context.Context

// A Main runs a package's tests with the shared browser started; see
// [WithBrowser].
type Main struct{ m *testing.M }

// WithBrowser returns m's tests wrapped so that the shared browser is
// started before them and stopped after them, its process gone before
// goleak looks for leftovers: pass it to goleak.VerifyTestMain.
func WithBrowser(m *testing.M) Main { return Main{m} }

// Run starts the browser, runs the tests and stops the browser. It fails
// (returns 1) without running a test when the browser cannot start, saying
// to run scripts/test.sh when it is not installed.
func (w Main) Run() int {
	if _, err := os.Stat(Path); err != nil {
		fmt.Fprintf(os.Stderr, "browsertest: the browser tests need %s (Debian's chromium package): run scripts/test.sh, which installs it\n", Path)
		return 1
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, --no-first-run, --disable-background-networking, --disable-sync, ...
		chromedp.ExecPath(Path),
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
		fmt.Fprintf(os.Stderr, "browsertest: cannot start %s: %v\n", Path, err)
		return 1
	}
	browser = ctx
	code := w.m.Run()

	closing, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := chromedp.Cancel(ctx); err != nil && closing.Err() == nil { // closes the browser gracefully
		fmt.Fprintf(os.Stderr, "browsertest: closing the browser: %v\n", err)
	}
	return code
}

// NewTab opens a tab in the shared browser, closed when the test ends. Each
// tab has a browser context of its own, as a separate profile would: its
// own cookies, storage and cache, so that no test sees what another left.
// The test fails if the page throws an uncaught exception. It needs the
// tests to run under [WithBrowser].
func NewTab(t *testing.T) context.Context {
	t.Helper()
	if browser == nil {
		t.Fatal("browsertest: no browser: run the package's tests with browsertest.WithBrowser in its TestMain")
	}
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	// As for the browser (see Main.Run), the first Run on tab gets tab
	// itself, and a timer bounds it.
	const openTimeout = 15 * time.Second
	slow := time.AfterFunc(openTimeout, cancel)
	err := chromedp.Do(tab) // opens the tab
	if !slow.Stop() {
		err = fmt.Errorf("not opened within %v: %w", openTimeout, err)
	}
	if err != nil {
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	var (
		mu         sync.Mutex
		exceptions []string
	)
	console := chromedp.Console(tab)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return // the tab is closed
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for _, e := range exceptions {
			t.Errorf("the page threw: %s", e)
		}
	})
	return tab
}

// stepTimeout bounds each Do, Eval and Capture.
const stepTimeout = 15 * time.Second

// Do runs steps in tab, failing the test on an error or after 15 seconds.
func Do(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// Eval returns the value of a JavaScript expression in tab, decoded from
// JSON into a T; it fails the test on an error or after 15 seconds.
func Eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// WaitFor waits until a JavaScript expression is true in tab, polled every
// 10 ms, for at most timeout; the test fails, naming what, if it is not.
func WaitFor(t *testing.T, tab context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(10*time.Millisecond),
		chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		t.Fatalf("waiting %v for %s: %v", timeout, what, err)
	}
}

// Capture returns a PNG of tab's viewport.
func Capture(t *testing.T, tab context.Context) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	return png
}
