package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

const pageOrigin = "http://pages.example"

// start runs the app with tokens valid for ttl, torn down with the test.
func start(t *testing.T, ttl time.Duration) string {
	t.Helper()
	e, b, err := newApp(config{
		Secret: []byte("test secret"), Origin: pageOrigin, TokenTTL: ttl, StreamsPerUser: 2,
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	brokers.Store(srv.URL, b)
	t.Cleanup(func() {
		brokers.Delete(srv.URL)
		srv.CloseClientConnections()
		srv.Close()
		b.Close()
	})
	return srv.URL
}

// brokers maps the base URL of each app start runs to its broker, so that
// a test can wait for a stream's subscription.
var brokers sync.Map

// waitLimit bounds every wait of these tests.
const waitLimit = 10 * time.Second

// waitSubscribed waits until n streams are subscribed to the broker of the
// app at base. A stream's headers arrive when it opens, before its handler
// subscribes it: what is published meanwhile is not for it.
func waitSubscribed(t *testing.T, base string, n int) {
	t.Helper()
	b, _ := brokers.Load(base)
	for deadline := time.Now().Add(waitLimit); b.(*broker.Broker).Counters().Subscribers < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams subscribed after %v, want %d", b.(*broker.Broker).Counters().Subscribers, waitLimit, n)
		}
	}
}

// user is a signed-in browser: a client with its own cookie jar.
type user struct {
	t    *testing.T
	base string
	c    *http.Client
}

func signIn(t *testing.T, base, name string) *user {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	u := &user{t: t, base: base, c: &http.Client{Jar: jar, Transport: tr}}
	if res := u.post("/login", url.Values{"user": {name}}); res.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %s", name, res.Status)
	}
	return u
}

func (u *user) post(path string, form url.Values) *http.Response {
	u.t.Helper()
	res, err := u.c.PostForm(u.base+path, form)
	if err != nil {
		u.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// open opens the user's stream as a page on pageOrigin does.
func (u *user) open() (*http.Response, *event.Decoder) {
	u.t.Helper()
	req, _ := http.NewRequestWithContext(u.t.Context(), http.MethodGet, u.base+"/events", nil)
	req.Header.Set("Origin", pageOrigin)
	req.Header.Set("Accept", "text/event-stream")
	res, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { res.Body.Close() })
	return res, event.NewDecoder(bufio.NewReader(res.Body))
}

// next returns the next notification on d, skipping heartbeats.
// It waits at most waitLimit: the test's cleanup closes the response,
// which ends the read left behind.
func next(t *testing.T, d *event.Decoder) event.Event {
	t.Helper()
	type result struct {
		ev  event.Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		ev, err := d.Decode()
		got <- result{ev, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("reading the stream: %v", r.err)
		}
		return r.ev
	case <-time.After(waitLimit):
		t.Fatalf("no event on the stream in %v", waitLimit)
		return event.Event{}
	}
}

func TestNotificationsReachTheirUsers(t *testing.T) {
	base := start(t, time.Hour)
	ada, bob := signIn(t, base, "ada"), signIn(t, base, "bob")
	resA, da := ada.open()
	resB, db := bob.open()
	for _, res := range []*http.Response{resA, resB} {
		if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != pageOrigin || res.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("GET /events: %s, CORS %q %q", res.Status, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Access-Control-Allow-Credentials"))
		}
	}
	waitSubscribed(t, base, 2)
	if res := bob.post("/notify", url.Values{"to": {"ada"}, "text": {"for ada"}}); res.StatusCode != http.StatusCreated {
		t.Fatalf("notify: %s", res.Status)
	}
	if res := ada.post("/notify", url.Values{"text": {"for all"}}); res.StatusCode != http.StatusCreated {
		t.Fatalf("broadcast: %s", res.Status)
	}
	if ev := next(t, da); ev.Type != "notification" || !strings.Contains(ev.Data.(string), `"text":"for ada"`) || !strings.Contains(ev.Data.(string), `"from":"bob"`) {
		t.Errorf("ada got %+v, want bob's notification", ev)
	}
	if ev := next(t, da); !strings.Contains(ev.Data.(string), "for all") {
		t.Errorf("ada got %+v, want the broadcast", ev)
	}
	if ev := next(t, db); !strings.Contains(ev.Data.(string), "for all") {
		t.Errorf("bob got %+v, want the broadcast alone", ev)
	}
}

// TestSignedOutGets401WithCORS: without a session the stream is refused
// with 401, and the answer carries the CORS headers, so a page on the
// other origin can see the status (CORS sits outside the auth).
func TestSignedOutGets401WithCORS(t *testing.T) {
	base := start(t, time.Hour)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/events", nil)
	req.Header.Set("Origin", pageOrigin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Access-Control-Allow-Origin") != pageOrigin {
		t.Fatalf("got %s with Access-Control-Allow-Origin %q, want 401 with %q", res.Status, res.Header.Get("Access-Control-Allow-Origin"), pageOrigin)
	}
}

// TestStreamEndsAtTokenExpiry: the stream ends when its token expires,
// without the close event (a browser would reconnect); the reconnection
// gets 401 (the jar has dropped the expired cookie, as a browser's does),
// and one with a fresh session streams again.
func TestStreamEndsAtTokenExpiry(t *testing.T) {
	const ttl = 1500 * time.Millisecond // JWT expiry is in whole seconds
	base := start(t, ttl)
	ada := signIn(t, base, "ada")
	start := time.Now()
	_, d := ada.open()
	ev, err := d.Decode()
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %+v, %v; want the stream to end", ev, err)
	}
	if lived := time.Since(start); lived < 500*time.Millisecond || lived > ttl+2*time.Second {
		t.Errorf("the stream ended after %v, want about %v", lived, ttl)
	}
	res, _ := ada.open()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnecting with the expired cookie: got %s, want 401", res.Status)
	}

	ada = signIn(t, base, "ada") // the page refreshes in time, in practice
	res, _ = ada.open()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("with a fresh token: got %s, want 200", res.Status)
	}
}

// TestStreamsPerUserCap: a user's third stream gets the retry answer
// (200, a retry hint, the end), not an error a browser gives up on.
func TestStreamsPerUserCap(t *testing.T) {
	base := start(t, time.Hour)
	ada := signIn(t, base, "ada")
	ada.open()
	ada.open()
	res, d := ada.open()
	_, err := d.Decode()
	if res.StatusCode != http.StatusOK || !errors.Is(err, io.EOF) || d.Retry() < time.Second {
		t.Fatalf("third stream: got %s, %v, retry %v; want 200, the end, a retry hint", res.Status, err, d.Retry())
	}
	if res, _ := signIn(t, base, "bob").open(); res.StatusCode != http.StatusOK {
		t.Fatalf("another user: got %s, want 200", res.Status)
	}
}
