package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(WithBrowser(m)) }

// TestTabRunsAPage loads a page from a loopback server in a tab, waits for
// what its script does a moment later, reads a value back, and takes a
// screenshot.
func TestTabRunsAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>t</title><p id="p">waiting</p>
<script>setTimeout(() => { document.getElementById("p").textContent = "done"; }, 200);</script>`)
	}))
	defer srv.Close()
	tab := NewTab(t)
	Do(t, tab, chromedp.Navigate(srv.URL))
	start := time.Now()
	WaitFor(t, tab, "the script's change", `document.getElementById("p").textContent === "done"`, 5*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("WaitFor returned after %v", d)
	}
	if got := Eval[[]int](t, tab, `[1, 2, 3].map((x) => x * 2)`); fmt.Sprint(got) != "[2 4 6]" {
		t.Errorf("Eval got %v, want [2 4 6]", got)
	}
	if png := Capture(t, tab); !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("Capture returned %d bytes that are not a PNG", len(png))
	}
}

// TestTabsDoNotShareCookies: a cookie one tab got is not sent by another.
func TestTabsDoNotShareCookies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "one", Path: "/"})
		}
		c, _ := r.Cookie("session")
		fmt.Fprintf(w, `<!doctype html><title>t</title><p id="p">%v</p>`, c != nil)
	}))
	defer srv.Close()
	first, second := NewTab(t), NewTab(t)
	Do(t, first, chromedp.Navigate(srv.URL+"/set"), chromedp.Navigate(srv.URL+"/"))
	if got := Eval[string](t, first, `document.getElementById("p").textContent`); got != "true" {
		t.Fatalf("the tab that got the cookie does not send it back (%s)", got)
	}
	Do(t, second, chromedp.Navigate(srv.URL+"/"))
	if got := Eval[string](t, second, `document.getElementById("p").textContent`); got != "false" {
		t.Errorf("another tab sends the first one's cookie")
	}
}
