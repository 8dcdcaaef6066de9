package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// These tests script the HTTP surface the README documents, with Go's
// client and the event package's decoder (which reads a stream as a
// browser does); the browser tests drive the page itself.

func TestPostMessages(t *testing.T) {
	ts := startServer(t, time.Second)
	c := client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name        string
		contentType string
		accept      string
		body        string
		wantStatus  int
		wantBody    string // a substring
	}{
		{"json", "application/json", "", `{"name":"Ada","text":"hello"}`, http.StatusCreated, `"name":"Ada","text":"hello"`},
		{"form", "application/x-www-form-urlencoded", "", "name=Grace&text=hi+there", http.StatusCreated, `"name":"Grace","text":"hi there"`},
		{"form from a page without JavaScript", "application/x-www-form-urlencoded", "text/html,application/xhtml+xml,*/*;q=0.8", "name=Linus&text=plain", http.StatusSeeOther, ""},
		{"spaces trimmed", "application/json", "", `{"name":"  Ada ","text":" trimmed  "}`, http.StatusCreated, `"name":"Ada","text":"trimmed"`},
		{"no name", "application/json", "", `{"text":"hello"}`, http.StatusBadRequest, "name is required"},
		{"blank text", "application/x-www-form-urlencoded", "", "name=Ada&text=+++", http.StatusBadRequest, "text is required"},
		{"name too long", "application/json", "", `{"name":"` + strings.Repeat("n", maxName+1) + `","text":"x"}`, http.StatusBadRequest, "name is too long"},
		{"text too long", "application/json", "", `{"name":"Ada","text":"` + strings.Repeat("é", maxText+1) + `"}`, http.StatusBadRequest, "text is too long"},
		{"broken json", "application/json", "", `{"name":`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url+"/messages", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("got %s %s, want %d with %s", res.Status, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == http.StatusSeeOther && res.Header.Get("Location") != "/" {
				t.Errorf("redirected to %q, want /", res.Header.Get("Location"))
			}
		})
	}

	// The four accepted ones are the recent messages, in order, with their IDs.
	var recent struct {
		Messages    []message `json:"messages"`
		LastEventID string    `json:"lastEventID"`
	}
	getJSON(t, c, ts.url+"/api/messages", &recent)
	var names []string
	for _, m := range recent.Messages {
		names = append(names, m.Name)
		if m.ID == "" || m.Time.IsZero() {
			t.Errorf("recent message %+v lacks its ID or time", m)
		}
	}
	if got := strings.Join(names, ","); got != "Ada,Grace,Linus,Ada" {
		t.Errorf("recent messages from %s, want Ada,Grace,Linus,Ada", got)
	}
	if n := len(recent.Messages); n > 0 && recent.LastEventID != recent.Messages[n-1].ID {
		t.Errorf("lastEventID %q, want the last message's ID %q", recent.LastEventID, recent.Messages[n-1].ID)
	}
}

func TestEventsResumeFromLastEventID(t *testing.T) {
	ts := startServer(t, time.Second)
	c := client(t)
	post(t, c, ts.url, "Ada", "before")
	var recent struct {
		LastEventID string `json:"lastEventID"`
	}
	getJSON(t, c, ts.url+"/api/messages", &recent)
	post(t, c, ts.url, "Grace", "missed")

	// What the page does: resume from the ID GET /api/messages gave.
	events := openStream(t, c, ts.url+"/events?lastEventID="+url.QueryEscape(recent.LastEventID), "")
	ev := next(t, events, "message")
	var m message
	if err := json.Unmarshal([]byte(ev.Data.(string)), &m); err != nil || m.Name != "Grace" || m.Text != "missed" {
		t.Errorf("first message %q, want Grace's missed one", ev.Data)
	}
	if ev := next(t, events, "presence"); ev.Data != `{"online":1}` {
		t.Errorf("presence %q, want one page online", ev.Data)
	}
	post(t, c, ts.url, "Ada", "live")
	if ev := next(t, events, "message"); !strings.Contains(ev.Data.(string), `"text":"live"`) {
		t.Errorf("live message %q, want Ada's", ev.Data)
	}

	var got stats
	getJSON(t, c, ts.url+"/api/stats", &got)
	if got.Online != 1 || got.Broker.Replayed < 1 || got.Broker.Topics[topicChat] != 1 {
		t.Errorf("stats %+v, want one page online, subscribed to %q, and the replay counted", got, topicChat)
	}
}

func TestEventsTellAPageItsHistoryIsGone(t *testing.T) {
	ts := startServer(t, time.Second)
	// An ID from an earlier run of the server, say.
	events := openStream(t, client(t), ts.url+"/events", "12345")
	ev := next(t, events, "reset")
	if !strings.Contains(ev.Data.(string), "no longer on the server") {
		t.Errorf("reset event %q, want the page told its messages are gone", ev.Data)
	}
	if ev.ID != "" {
		t.Errorf("the reset event has ID %q; it should have none, so that the page keeps its own", ev.ID)
	}
}

func TestShutdownSendsTheCloseEvent(t *testing.T) {
	ts := startServer(t, time.Second)
	events := openStream(t, client(t), ts.url+"/events", "")
	next(t, events, "presence")
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events, "close"); ev.Data != "" {
		t.Errorf("close event with data %q, want none", ev.Data)
	}
	if ev, err := events.Decode(); !errors.Is(err, io.EOF) {
		t.Errorf("after the close event got %+v, %v; want the end of the stream", ev, err)
	}
}

// TestShutdownClosesUnusedConnections holds a connection that never sends a
// request, as a browser's preconnect does: shutdown closes it at once
// instead of waiting the five seconds http.Server gives such connections.
func TestShutdownClosesUnusedConnections(t *testing.T) {
	ts := startServer(t, time.Second)
	events := openStream(t, client(t), ts.url+"/events", "")
	next(t, events, "presence")
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Wait until the server has accepted it: a request on another
	// connection is served after the accept of this one's dial.
	getJSON(t, client(t), ts.url+"/api/stats", new(map[string]any))

	start := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with an unused connection open, want well under the 5 s http.Server waits for one", d)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the unused connection read %d bytes, %v after the shutdown, want EOF: the server closed it", n, err)
	}
}

// openStream opens an event stream as a browser does, asking for gzip,
// and checks that it comes gzip'd.
func openStream(t *testing.T, c *http.Client, url, lastEventID string) *event.Decoder {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Accept-Encoding", "gzip") // set by hand, so the client leaves the body compressed
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s, %s", url, res.Status, res.Header.Get("Content-Type"))
	}
	if enc := res.Header.Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("GET %s: Content-Encoding %q, want gzip", url, enc)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return event.NewDecoder(zr)
}

// next returns the next event of type typ, skipping the others (presence
// changes, say).
func next(t *testing.T, d *event.Decoder, typ string) event.Event {
	t.Helper()
	for {
		ev, err := d.Decode()
		if err != nil {
			t.Fatalf("waiting for a %q event: %v", typ, err)
		}
		if ev.Type == typ {
			return ev
		}
	}
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
