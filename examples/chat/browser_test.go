package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/echosse/echo-sse/internal/browsertest"
)

// update rewrites the screenshot committed as docs/chat.png.
var update = flag.Bool("update", false, "rewrite docs/chat.png with the screenshot")

// These tests drive the page in the shared headless Chromium (see TestMain):
// the browser's own EventSource receives the events, through Echo's Gzip.

// TestTwoPagesSeeAMessageAtOnce runs with Echo's Gzip in front of the
// streams, with the streams compressing themselves (Config.Compress), and
// with those streams taking their connections over (Config.Takeover).
func TestTwoPagesSeeAMessageAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name               string
		compress, takeover bool
	}{{"echo-gzip", false, false}, {"stream-compress", true, false}, {"stream-compress-takeover", true, true}} {
		t.Run(tt.name, func(t *testing.T) {
			twoPagesSeeAMessageAtOnce(t, tt.compress, tt.takeover)
		})
	}
}

func twoPagesSeeAMessageAtOnce(t *testing.T, compress, takeover bool) {
	ts := startServerWith(t, "127.0.0.1:0", config{Retry: time.Second, Compress: compress, Takeover: takeover})
	sender, receiver := browsertest.NewTab(t), browsertest.NewTab(t)

	watch, cancel := context.WithTimeout(receiver, 30*time.Second)
	defer cancel()
	responses := chromedp.Events(watch, network.ResponseReceived) // subscribed before the page loads

	openRoom(t, sender, ts.url)
	openRoom(t, receiver, ts.url)
	for _, tab := range []context.Context{sender, receiver} {
		browsertest.WaitFor(t, tab, "the presence event counting both pages", `document.getElementById("online").textContent === "2"`, 5*time.Second)
	}

	const text = "Hello from the other page"
	browsertest.Do(t, sender,
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.SendKeys(chromedp.CSS("#text"), text),
	)
	start := time.Now()
	browsertest.Do(t, sender, chromedp.Click(chromedp.CSS("#send")))
	browsertest.WaitFor(t, receiver, "the message in the other page", hasText(text), time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the message took %v to reach the other page, want under a second", d)
	} else {
		t.Logf("from the click in one page to the message in the other: %v", d.Round(time.Millisecond))
	}

	// The other page shows who sent it and when.
	got := browsertest.Eval[shownMessage](t, receiver, lastMessage)
	if got.Name != "Ada" || got.Text != text || got.Own {
		t.Errorf("the other page shows %+v, want Ada's message, not marked as its own", got)
	}
	if when, err := time.Parse(time.RFC3339, got.Time); err != nil || time.Since(when) > time.Minute || got.Clock == "" {
		t.Errorf("the message's time is %q, shown as %q; want the time it was sent", got.Time, got.Clock)
	}
	// The sender's page shows it too, as its own, from the stream.
	browsertest.WaitFor(t, sender, "the message in the sender's page", hasText(text), time.Second)
	if own := browsertest.Eval[shownMessage](t, sender, lastMessage); !own.Own {
		t.Errorf("the sender's page shows %+v, want it marked as its own", own)
	}
	// The field is cleared once the POST is answered, which may come
	// after the message arrived on the stream.
	browsertest.WaitFor(t, sender, "the message field to be cleared after sending", `document.getElementById("text").value === ""`, time.Second)

	// The stream the browser read was gzip'd.
	for ev, err := range responses {
		if err != nil {
			t.Fatalf("no response for /events seen: %v", err)
		}
		if u, _ := url.Parse(ev.Response.URL); u == nil || u.Path != "/events" {
			continue
		}
		if enc := header(ev.Response.Headers, "Content-Encoding"); enc != "gzip" {
			t.Errorf("/events came with Content-Encoding %q, want gzip", enc)
		}
		if typ := ev.Response.MimeType; typ != "text/event-stream" {
			t.Errorf("/events came as %q, want text/event-stream", typ)
		}
		// A taken-over stream's response ends with its connection.
		if conn := header(ev.Response.Headers, "Connection"); takeover != (conn == "close") {
			t.Errorf("/events came with Connection %q (Takeover %v)", conn, takeover)
		}
		break
	}
}

func TestPageResumesAfterDropWithMissedMessagesOnce(t *testing.T) {
	forStreamPaths(t, pageResumesAfterDropWithMissedMessagesOnce)
}

// forStreamPaths runs test with the server's defaults and with its streams
// compressing themselves and taking their connections over
// (Config.Takeover), each time with the config to start the server with.
func forStreamPaths(t *testing.T, test func(t *testing.T, cfg config)) {
	t.Run("net/http", func(t *testing.T) { test(t, config{}) })
	t.Run("takeover", func(t *testing.T) { test(t, config{Compress: true, Takeover: true}) })
}

func pageResumesAfterDropWithMissedMessagesOnce(t *testing.T, cfg config) {
	// The retry delay is the time the test has to publish while the page
	// is away; long enough to be sure, short enough to be quick.
	cfg.Retry = 1500 * time.Millisecond
	ts := startServerWith(t, "127.0.0.1:0", cfg)
	c := client(t)
	tab := browsertest.NewTab(t)
	openRoom(t, tab, ts.url)
	post(t, c, ts.url, "Grace", "before the drop")
	browsertest.WaitFor(t, tab, "the first message", hasText("before the drop"), 5*time.Second)

	replayed := ts.b.Stats().Replayed
	ts.dropStreams() // as a network failure would: no close event
	browsertest.WaitFor(t, tab, "the page to show it is reconnecting", stateIs("reconnecting"), 5*time.Second)
	missed := []string{"missed one", "missed two", "missed three"}
	for _, text := range missed {
		post(t, c, ts.url, "Linus", text)
	}
	if n := ts.online(); n != 0 {
		t.Fatalf("%d pages online while the messages were published; the page came back too soon to test the replay", n)
	}

	browsertest.WaitFor(t, tab, "the page to be live again", stateIs("live"), 10*time.Second)
	post(t, c, ts.url, "Grace", "after the reconnect")
	browsertest.WaitFor(t, tab, "the message posted after the reconnect", hasText("after the reconnect"), 5*time.Second)

	want := slices.Concat([]string{"before the drop"}, missed, []string{"after the reconnect"})
	if got := browsertest.Eval[[]string](t, tab, messageTexts); !slices.Equal(got, want) {
		t.Errorf("the page shows %q, want %q: each message once, in order", got, want)
	}
	if n := ts.b.Stats().Replayed - replayed; n < uint64(len(missed)) {
		t.Errorf("the broker replayed %d events on the reconnect, want at least %d (the page should resume from its Last-Event-ID)", n, len(missed))
	}
}

// TestCloseEventStopsThePage shuts the server down as Ctrl-C does: the page
// receives the close event, shows it, and stays closed until asked to
// reconnect.
func TestCloseEventStopsThePage(t *testing.T) { forStreamPaths(t, closeEventStopsThePage) }

func closeEventStopsThePage(t *testing.T, cfg config) {
	retry := 500 * time.Millisecond
	cfg.Retry = retry
	ts := startServerWith(t, "127.0.0.1:0", cfg)
	tab := browsertest.NewTab(t)
	openRoom(t, tab, ts.url)
	// A listener of the test's own, beside the page's, on the page's EventSource.
	browsertest.Do(t, tab, chromedp.Evaluate[chromedp.Void](`
		window.closeEvents = [];
		chat.source.addEventListener("close", (e) => closeEvents.push(e.data));
	`))

	if err := ts.stop(); err != nil { // what Ctrl-C does
		t.Fatal(err)
	}
	browsertest.WaitFor(t, tab, "the close event", `closeEvents.length > 0`, 5*time.Second)
	if got := browsertest.Eval[[]string](t, tab, `closeEvents`); !slices.Equal(got, []string{""}) {
		t.Errorf("close events %q reached addEventListener, want one with empty data", got)
	}
	browsertest.WaitFor(t, tab, "the page to show the stream closed", stateIs("closed"), time.Second)
	if notice := browsertest.Eval[string](t, tab, `document.querySelector("#messages .notice:last-child").textContent`); !strings.Contains(notice, "closed the stream") {
		t.Errorf("the page's last notice is %q, want one saying the server closed the stream", notice)
	}

	// It stays closed: well past the retry delay, the EventSource has not
	// reopened (readyState 2 is CLOSED, which never reconnects).
	time.Sleep(2 * retry)
	if rs := browsertest.Eval[int](t, tab, `chat.source.readyState`); rs != 2 {
		t.Errorf("the EventSource's readyState is %d after the close event, want 2 (CLOSED)", rs)
	}
	if st := browsertest.Eval[string](t, tab, `document.getElementById("status").dataset.state`); st != "closed" {
		t.Errorf("the page shows %q after the close event, want closed", st)
	}

	// The server comes back on the same address, as a new process whose
	// history is empty. The page's Reconnect button resumes from its last
	// event ID; the server cannot replay it, and says so.
	again := startServerAt(t, strings.TrimPrefix(ts.url, "http://"), retry)
	browsertest.Do(t, tab, chromedp.Click(chromedp.CSS("#messages .notice:last-child button")))
	browsertest.WaitFor(t, tab, "the page to be live again", stateIs("live"), 5*time.Second)
	browsertest.WaitFor(t, tab, "a notice that the missed messages are gone",
		`[...document.querySelectorAll("#messages .notice")].some((e) => e.textContent.includes("no longer on the server"))`, 5*time.Second)
	post(t, client(t), again.url, "Ada", "back again")
	browsertest.WaitFor(t, tab, "a message posted after the restart", hasText("back again"), 5*time.Second)
}

// TestScreenshot writes pictures of a live room, on a desktop and on a
// phone, to $SCREENSHOT_DIR (or a temporary directory it logs). With
// -update it rewrites docs/chat.png, the one the README shows.
func TestScreenshot(t *testing.T) {
	ts := startServer(t, time.Second)
	c := client(t)
	tab := browsertest.NewTab(t)
	browsertest.Do(t, tab, chromedp.EmulateViewport(960, 640, chromedp.EmulateScale(2)))
	openRoom(t, tab, ts.url)
	for range 2 { // more people in the room
		openRoom(t, browsertest.NewTab(t), ts.url)
	}
	browsertest.Do(t, tab, chromedp.SendKeys(chromedp.CSS("#name"), "Ada"))

	conversation := []struct{ name, text string }{
		{"Grace", "Morning! Is the new build out yet?"},
		{"Ada", "Rolling out now: 3 of 5 regions done."},
		{"Linus", "Dashboards look green on my side. Latency is down about 20%."},
		{"Grace", "Nice. I'll keep this page open and watch it live."},
		{"Ada", "All 5 regions done ✓"},
	}
	for _, m := range conversation {
		post(t, c, ts.url, m.name, m.text)
	}
	browsertest.WaitFor(t, tab, "the conversation", hasText(conversation[len(conversation)-1].text), 5*time.Second)
	browsertest.WaitFor(t, tab, "three pages online", `document.getElementById("online").textContent === "3"`, 5*time.Second)
	browsertest.Do(t, tab, chromedp.SendKeys(chromedp.CSS("#text"), "Great work, everyone"))

	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "echosse-chat")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	desktop := browsertest.Capture(t, tab)
	write(t, filepath.Join(dir, "chat.png"), desktop)
	if *update {
		write(t, filepath.Join("..", "..", "docs", "chat.png"), desktop)
	}

	browsertest.Do(t, tab, chromedp.EmulateViewport(390, 780, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	write(t, filepath.Join(dir, "chat-phone.png"), browsertest.Capture(t, tab))
}

// openRoom loads the page in tab and waits until its stream is live.
func openRoom(t *testing.T, tab context.Context, url string) {
	t.Helper()
	browsertest.Do(t, tab, chromedp.Navigate(url+"/"))
	browsertest.WaitFor(t, tab, "the page's stream to be live", stateIs("live"), 5*time.Second)
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// post posts a message as JSON, as the page does.
func post(t *testing.T, c *http.Client, base, name, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "text": text})
	res, err := c.Post(base+"/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /messages: %s", res.Status)
	}
}

// online returns the number of open streams.
func (s *server) online() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// header returns a response header as the browser reports it, whatever its
// case.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// stateIs is true when the page shows its stream in state.
func stateIs(state string) string {
	return fmt.Sprintf(`document.getElementById("status").dataset.state === %q`, state)
}

// hasText is true when the page shows a message with text.
func hasText(text string) string {
	return fmt.Sprintf(`%s.includes(%q)`, messageTexts, text)
}

// messageTexts is the texts of the messages the page shows, oldest first.
const messageTexts = `[...document.querySelectorAll("#messages .msg .text")].map((e) => e.textContent)`

// shownMessage is a message as the page shows it.
type shownMessage struct {
	Name  string `json:"name"`
	Text  string `json:"text"`
	Time  string `json:"time"`  // the datetime attribute
	Clock string `json:"clock"` // the time shown
	Own   bool   `json:"own"`
}

const lastMessage = `(() => {
	const m = document.querySelector("#messages .msg:last-of-type");
	const time = m.querySelector("time");
	return {
		name: m.querySelector(".who").textContent,
		text: m.querySelector(".text").textContent,
		time: time.dateTime,
		clock: time.textContent,
		own: m.classList.contains("own"),
	};
})()`
