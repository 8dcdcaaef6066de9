package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/echosse/echo-sse/internal/browsertest"
	"github.com/echosse/echo-sse/internal/proxytest"
	"github.com/echosse/echo-sse/internal/redistest"
)

// TestPageResumesWhenAnInstanceDies runs the example as the deployment
// guide (docs/deploying.md) says: two instances of the built binary sharing
// one redis-server, behind nginx with max_fails=0 on their upstream. The
// example's page, served from another origin, signs in (cookie) in
// Chromium and opens its stream through nginx, while a publisher posts a
// notification every 40 ms through nginx too, to the page's user and to
// everyone in turn. Then the instance holding the page's stream goes away:
//
//   - kill -9: the stream breaks, the browser reconnects by itself with
//     Last-Event-ID, and nginx sends it to the other instance;
//   - SIGTERM: the instance shuts down as in a rolling deploy, each stream
//     ending with a retry hint (ShutdownRetry);
//   - both killed, one restarted: nginx answers the browser's reconnection
//     502, on which EventSource gives up for good; the page renews its
//     session and creates a new EventSource with ?lastEventID= until an
//     instance is back.
//
// The page must resume on the other instance from the last event it had,
// and show every notification that was accepted (201) exactly once, in
// order, with no gap reported: Redis's history covers the outage. A
// notification whose publish failed (nginx answered 502 when its instance
// died under it) may or may not have been stored, and is shown at most
// once.
func TestPageResumesWhenAnInstanceDies(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "notifications")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		name string
		// recreated: the page resumes on an EventSource of its own, made
		// with ?lastEventID=, not on the browser's own reconnection.
		recreated bool
		// fail takes the page's instance (on) away, and the other (other)
		// too if it likes; it returns the instance the page must resume
		// on.
		fail func(t *testing.T, d *deployment, on, other *instance) *instance
	}{
		{"kill -9", false, func(t *testing.T, d *deployment, on, other *instance) *instance {
			on.kill()
			return other
		}},
		{"SIGTERM", false, func(t *testing.T, d *deployment, on, other *instance) *instance {
			on.terminate(t)
			return other
		}},
		{"both killed, one restarted", true, func(t *testing.T, d *deployment, on, other *instance) *instance {
			other.kill()
			on.kill()
			// The browser's reconnection gets nginx's 502 and gives up;
			// the page's own retries get 502 too, until the instance is
			// back.
			browsertest.WaitFor(t, d.tab, "the page to be offline (nginx's 502)", stateIs("offline"), 10*time.Second)
			time.Sleep(1500 * time.Millisecond)
			back := d.start(t, other.name+"'", other.addr)
			t.Cleanup(func() {
				// The page's EventSource got 502, and so did the page's
				// own request to renew its session.
				log := d.nginx.AccessLog()
				for _, want := range []string{`"GET /events HTTP/1.1" 502 `, `"POST /refresh HTTP/1.1" 502 `} {
					if !strings.Contains(log, want) {
						t.Errorf("nginx's access log has no %s:\n%s", want, log)
					}
				}
			})
			return back
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each has its own Redis, instances, nginx and tab
			d := deploy(t, bin)
			a, b := d.start(t, "A", "127.0.0.1:0"), d.start(t, "B", "127.0.0.1:0")
			d.proxy(t, a, b)
			d.signIn(t, "ada")

			on := d.streamOf(t, "ada", a, b)
			other := map[*instance]*instance{a: b, b: a}[on]
			p := d.publish(t, "ada")
			p.waitFor(t, 20)
			p.mark()
			survivor := tt.fail(t, d, on, other)
			resumed := survivor.waitStream(t, "ada", func(l streamLine) bool { return l.lastEventID != "" }, 20*time.Second)
			browsertest.WaitFor(t, d.tab, "the page to be live again", stateIs("live"), 10*time.Second)
			p.mark()
			p.waitFor(t, p.count()+20)
			p.stop()

			r := d.received(t, p)
			page := readPageState(t, d.tab)
			var without time.Duration
			for _, ms := range page.Outages {
				without += time.Duration(ms * float64(time.Millisecond))
			}
			t.Logf("FIGURES %s: accepted=%d delivered=%d duplicates=%d missing=%d failed=%d (%d of them delivered) accepted-while-away=%d gaps=%d without-stream=%v (%d outages)",
				tt.name, r.accepted, r.delivered, r.duplicates, len(r.missing), r.failed, r.failedDelivered, p.between(), page.Gaps,
				without.Round(time.Millisecond), len(page.Outages))

			if r.duplicates != 0 {
				t.Errorf("%d notifications shown twice or more", r.duplicates)
			}
			if len(r.missing) != 0 {
				if page.Gaps == 0 {
					t.Errorf("accepted notifications %v never shown, and no gap was reported: silent loss", r.missing)
				} else {
					t.Errorf("accepted notifications %v never shown; a gap was reported, but Redis's history covers the outage", r.missing)
				}
			} else if page.Gaps != 0 {
				t.Errorf("%d gaps reported, but nothing was missing and the history covers the outage", page.Gaps)
			}
			if !r.inOrder {
				t.Errorf("the page shows the notifications out of order: %v", r.shown)
			}
			if !r.ids[resumed.lastEventID] {
				t.Errorf("%s resumed the stream from %q, not an ID the page received", survivor.name, resumed.lastEventID)
			}
			u, err := url.Parse(page.URL)
			if err != nil {
				t.Fatal(err)
			}
			if id := u.Query().Get("lastEventID"); tt.recreated && id != resumed.lastEventID {
				t.Errorf("the page's EventSource is on %s, want a new one with ?lastEventID=%s", page.URL, resumed.lastEventID)
			} else if !tt.recreated && u.RawQuery != "" {
				t.Errorf("the page's EventSource is on %s, want the one it first made, reconnected by the browser", page.URL)
			}
			if len(page.Outages) == 0 {
				t.Error("the page never lost its stream")
			}
			if p.between() == 0 {
				t.Error("nothing was accepted while the page had no stream: the replay was not tested")
			}
		})
	}
}

// readPageState reads the page's EventSource URL, its gaps and its
// outages.
func readPageState(t *testing.T, tab context.Context) pageState {
	t.Helper()
	return browsertest.Eval[pageState](t, tab, `({
		url: notifications.source.url,
		gaps: notifications.gaps,
		outages: notifications.outages.map((o) => o.to - o.from),
	})`)
}

// pageState is what the page tells scripts (window.notifications).
type pageState struct {
	URL     string    `json:"url"` // the EventSource's
	Gaps    int       `json:"gaps"`
	Outages []float64 `json:"outages"` // ms each
}

// stateIs is true when the page shows its stream in state.
func stateIs(state string) string {
	return fmt.Sprintf(`document.getElementById("status").dataset.state === %q`, state)
}

// A deployment is what the test runs: a redis-server, the instances, nginx
// in front of them, the page's origin and a tab.
type deployment struct {
	bin    string
	redis  string // redis:// URL
	origin string // the page's
	nginx  *proxytest.Nginx
	api    string          // through nginx
	tab    context.Context // the page's, in the shared browser
}

// deploy starts redis-server and the page's origin: the example's binary
// again, serving page/ with -page (and its API, which the page does not
// use); the instances and nginx come after.
func deploy(t *testing.T, bin string) *deployment {
	t.Helper()
	rs, err := redistest.Start(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Stop() })
	d := &deployment{bin: bin, redis: "redis://" + rs.Addr + "/0"}
	pages := d.start(t, "pages", "127.0.0.1:0", "-page", "127.0.0.1:0")
	d.origin = "http://" + pages.page
	return d
}

// proxy starts nginx in front of the instances, with max_fails=0 as
// docs/deploying.md says.
func (d *deployment) proxy(t *testing.T, ins ...*instance) {
	t.Helper()
	var servers []string
	for _, in := range ins {
		servers = append(servers, in.addr+" max_fails=0")
	}
	n, err := proxytest.StartNginxUpstream(t.TempDir(), servers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
	})
	d.nginx, d.api = n, "http://"+n.Addr
}

// signIn loads the page in a new tab, pointed at the API through nginx,
// signs in as user and waits for the stream to be live.
func (d *deployment) signIn(t *testing.T, user string) {
	t.Helper()
	d.tab = browsertest.NewTab(t)
	browsertest.Do(t, d.tab,
		chromedp.Navigate(d.origin+"/?api="+url.QueryEscape(d.api)),
		chromedp.SendKeys(chromedp.CSS("#name"), user),
		chromedp.Click(chromedp.CSS("#signin-button")),
	)
	browsertest.WaitFor(t, d.tab, "the page's stream to be live", stateIs("live"), 10*time.Second)
}

// streamOf returns the instance that logged the opening of user's stream.
func (d *deployment) streamOf(t *testing.T, user string, ins ...*instance) *instance {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, in := range ins {
			if len(in.streams(user)) > 0 {
				return in
			}
		}
	}
	t.Fatalf("no instance logged the opening of %s's stream", user)
	return nil
}

// received reads what the page shows and counts it against what p
// published.
func (d *deployment) received(t *testing.T, p *publisher) result {
	t.Helper()
	const shown = `[...document.querySelectorAll("#list li[data-id]")].reverse().map((li) => [li.dataset.id, li.querySelector(".text").textContent])`
	accepted := p.acceptedSet()
	// Until every accepted one is shown, or 10 s; then a moment more for
	// a duplicate on its way.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n := 0
		for _, row := range browsertest.Eval[[][2]string](t, d.tab, shown) {
			if seq, err := strconv.Atoi(row[1]); err == nil && accepted[seq] {
				n++
			}
		}
		if n >= len(accepted) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	rows := browsertest.Eval[[][2]string](t, d.tab, shown)

	r := result{accepted: len(accepted), ids: map[string]bool{}, inOrder: true}
	times := map[int]int{}
	last, lastID := 0, uint64(0)
	for _, row := range rows {
		seq, err := strconv.Atoi(row[1])
		if err != nil {
			t.Fatalf("the page shows %q, not a notification of the test's", row[1])
		}
		id, err := strconv.ParseUint(row[0], 10, 64)
		if err != nil {
			t.Fatalf("the page shows ID %q, not a Redis backend's", row[0])
		}
		r.ids[row[0]] = true
		r.shown = append(r.shown, seq)
		r.delivered++
		times[seq]++
		if times[seq] > 1 {
			r.duplicates++
		}
		if seq <= last || id <= lastID {
			r.inOrder = false
		}
		last, lastID = seq, id
	}
	for seq := 1; seq <= p.count(); seq++ {
		switch {
		case accepted[seq] && times[seq] == 0:
			r.missing = append(r.missing, seq)
		case !accepted[seq]:
			r.failed++
			if times[seq] > 0 {
				r.failedDelivered++
			}
		}
	}
	return r
}

// result is what the page showed, against what was published.
type result struct {
	accepted        int             // publishes answered 201
	delivered       int             // notifications shown, duplicates included
	duplicates      int             // shown once more than once
	missing         []int           // accepted, never shown
	failed          int             // publishes not answered 201
	failedDelivered int             // of those, shown all the same
	inOrder         bool            // in the order published, IDs growing
	ids             map[string]bool // the event IDs shown
	shown           []int           // the numbers shown, oldest first
}

// An instance is the example's binary running as a process of its own.
type instance struct {
	name string
	addr string
	page string // with -page, where it serves the page
	cmd  *exec.Cmd
	out  *lines
	done chan struct{} // closed when the process has exited
	err  error         // its exit, once done
}

// start runs the example's binary on addr ("127.0.0.1:0" for a free port),
// sharing the deployment's Redis and allowing its page's origin, with more
// flags if given; it is killed with the test unless it ended before.
func (d *deployment) start(t *testing.T, name, addr string, flags ...string) *instance {
	t.Helper()
	in := &instance{name: name, out: &lines{}, done: make(chan struct{})}
	in.cmd = exec.Command(d.bin, append([]string{"-addr", addr, "-redis", d.redis, "-origin", d.origin}, flags...)...)
	in.cmd.Env = append(os.Environ(), "NOTIFY_SECRET=the same on every instance")
	in.cmd.Stdout, in.cmd.Stderr = in.out, in.out
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		in.err = in.cmd.Wait()
		close(in.done)
	}()
	t.Cleanup(func() {
		in.kill()
		if t.Failed() {
			t.Logf("%s's log:\n%s", in.name, strings.Join(in.out.all(), "\n"))
		}
	})
	withPage := slices.Contains(flags, "-page")
	for deadline := time.Now().Add(10 * time.Second); in.addr == "" || withPage && in.page == ""; time.Sleep(10 * time.Millisecond) {
		for _, l := range in.out.all() {
			if _, a, ok := strings.Cut(l, "listening on http://"); ok {
				in.addr = a
			}
			if _, a, ok := strings.Cut(l, "the page on http://"); ok {
				in.page = a
			}
		}
		select {
		case <-in.done:
			t.Fatalf("%s exited at start (%v):\n%s", name, in.err, strings.Join(in.out.all(), "\n"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say where it listens:\n%s", name, strings.Join(in.out.all(), "\n"))
		}
	}
	return in
}

// kill kills the process at once (SIGKILL), as a crash or the OOM killer
// would, and waits for it to exit. Killing an exited instance does
// nothing.
func (in *instance) kill() {
	in.cmd.Process.Kill()
	<-in.done
}

// terminate stops the process as an orchestrator does (SIGTERM), and waits
// for it to exit, well, within 15 seconds.
func (in *instance) terminate(t *testing.T) {
	t.Helper()
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		if in.err != nil {
			t.Errorf("%s exited with %v after SIGTERM", in.name, in.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not exit within 15 s of SIGTERM", in.name)
	}
}

// streamLine is a stream's opening, as an instance logs it.
type streamLine struct {
	lastEventID string
	gap         bool
}

var (
	userField   = regexp.MustCompile(` user=(\S+)`)
	lastIDField = regexp.MustCompile(` lastEventID=(\S*)`)
)

// streams returns the openings of user's streams the instance logged.
func (in *instance) streams(user string) []streamLine {
	var got []streamLine
	for _, l := range in.out.all() {
		if !strings.Contains(l, `msg="stream open"`) {
			continue
		}
		if m := userField.FindStringSubmatch(l); m == nil || m[1] != user {
			continue
		}
		s := streamLine{gap: strings.Contains(l, " gap=true")}
		if m := lastIDField.FindStringSubmatch(l); m != nil && m[1] != `""` {
			s.lastEventID = m[1]
		}
		got = append(got, s)
	}
	return got
}

// waitStream waits for the instance to log the opening of a stream of
// user's that match accepts, and returns it.
func (in *instance) waitStream(t *testing.T, user string, match func(streamLine) bool, timeout time.Duration) streamLine {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range in.streams(user) {
			if match(s) {
				return s
			}
		}
	}
	t.Fatalf("%s logged no stream of %s's resuming within %v", in.name, user, timeout)
	return streamLine{}
}

// lines collects what a process writes, line by line.
type lines struct {
	mu      sync.Mutex
	partial []byte
	done    []string
}

// Write implements [io.Writer].
func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			return len(p), nil
		}
		l.done = append(l.done, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
}

// all returns the complete lines written so far.
func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.done...)
}

// A publisher posts numbered notifications to the API (through nginx,
// where there is one), signed in as a user of its own (again when its
// token has expired), every 40 ms, alternately to one user and to
// everyone, and remembers what was answered.
type publisher struct {
	mu       sync.Mutex
	outcomes []outcome // by number - 1
	marks    []time.Time
	quit     chan struct{}
	done     chan struct{}
}

// outcome is what a publish was answered.
type outcome struct {
	accepted bool      // 201
	at       time.Time // when the answer came
}

// publish starts a publisher to user and everyone, stopped with the test.
func (d *deployment) publish(t *testing.T, to string) *publisher {
	t.Helper()
	bob := signIn(t, d.api, "bob")
	bob.c.Timeout = 10 * time.Second
	p := &publisher{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for seq := 1; ; seq++ {
			form := url.Values{"text": {strconv.Itoa(seq)}}
			if seq%2 == 1 {
				form.Set("to", to)
			}
			res, err := bob.c.PostForm(d.api+"/notify", form)
			if err == nil && res.StatusCode == http.StatusUnauthorized {
				// The token expired (the echo-jwt middleware refused it:
				// nothing was published); sign in again and retry.
				res.Body.Close()
				if res, err = bob.c.PostForm(d.api+"/login", url.Values{"user": {"bob"}}); err == nil {
					res.Body.Close()
					res, err = bob.c.PostForm(d.api+"/notify", form)
				}
			}
			o := outcome{at: time.Now()}
			if err == nil {
				o.accepted = res.StatusCode == http.StatusCreated
				res.Body.Close()
			}
			p.mu.Lock()
			p.outcomes = append(p.outcomes, o)
			p.mu.Unlock()
			select {
			case <-p.quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// stop stops the publisher and waits for its last publish; once or more.
func (p *publisher) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
}

// count returns the number of publishes answered so far.
func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.outcomes)
}

// waitFor waits until n publishes were answered, for at most 20 s.
func (p *publisher) waitFor(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); p.count() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes answered in 20 s, want %d", p.count(), n)
		}
	}
}

// mark notes the time: the first mark is when the page's instance goes
// away, the second when the page has resumed.
func (p *publisher) mark() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marks = append(p.marks, time.Now())
}

// between returns the number of publishes accepted between the two marks:
// while the page had no stream.
func (p *publisher) between() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.outcomes {
		if o.accepted && len(p.marks) == 2 && o.at.After(p.marks[0]) && o.at.Before(p.marks[1]) {
			n++
		}
	}
	return n
}

// acceptedSet returns the numbers of the publishes answered 201.
func (p *publisher) acceptedSet() map[int]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := map[int]bool{}
	for i, o := range p.outcomes {
		if o.accepted {
			set[i+1] = true
		}
	}
	return set
}

// TestPageRenewsItsSession: with tokens valid for 3 s, the page renews its
// session halfway to each expiry, so that when a stream ends at the expiry
// of the token it was opened with, the browser's own reconnection is
// accepted and resumes from its Last-Event-ID: every accepted notification
// is shown once, in order, and the page is never signed out.
func TestPageRenewsItsSession(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "notifications")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	d := deploy(t, bin)
	in := d.start(t, "A", "127.0.0.1:0", "-ttl", "3s")
	d.api = "http://" + in.addr
	d.signIn(t, "ada")
	p := d.publish(t, "ada")
	// The first stream ends when its token expires, within 3 s; the
	// browser reconnects 3 s later.
	in.waitStream(t, "ada", func(l streamLine) bool { return l.lastEventID != "" }, 15*time.Second)
	browsertest.WaitFor(t, d.tab, "the page to be live again", stateIs("live"), 10*time.Second)
	p.waitFor(t, p.count()+20)
	p.stop()

	r := d.received(t, p)
	page := readPageState(t, d.tab)
	var outages []time.Duration
	for _, ms := range page.Outages {
		outages = append(outages, time.Duration(ms*float64(time.Millisecond)).Round(time.Millisecond))
	}
	t.Logf("FIGURES token expiry: accepted=%d delivered=%d duplicates=%d missing=%d failed=%d gaps=%d without-stream=%v",
		r.accepted, r.delivered, r.duplicates, len(r.missing), r.failed, page.Gaps, outages)
	if r.duplicates != 0 || len(r.missing) != 0 || r.failed != 0 || page.Gaps != 0 || !r.inOrder {
		t.Errorf("got %d duplicates, missing %v, %d failed publishes, %d gaps, in order %v; want every notification once, in order",
			r.duplicates, r.missing, r.failed, page.Gaps, r.inOrder)
	}
	if len(page.Outages) == 0 {
		t.Error("the page's stream never ended: the token's expiry did not end it")
	}
	if u, err := url.Parse(page.URL); err != nil || u.RawQuery != "" {
		t.Errorf("the page's EventSource is on %s, want the first one, reconnected by the browser", page.URL)
	}
	if got := browsertest.Eval[string](t, d.tab, `document.getElementById("status").dataset.state`); got == "signed-out" || got == "offline" {
		t.Errorf("the page is %s, want it live or reconnecting by itself", got)
	}
}
