package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/redistest"
)

// startRedis starts a redis-server for the test, and returns a function
// that starts chat servers on it, each with its own client, as separate
// processes would have.
func startRedis(t *testing.T) func() *testServer {
	t.Helper()
	srv, err := redistest.Start(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return func() *testServer {
		client := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { client.Close() }) // after the server's shutdown
		return startServerWith(t, "127.0.0.1:0", config{Retry: time.Second, Redis: client})
	}
}

// Two chat servers on one Redis are one room: a page on one receives what
// is posted on the other, both list the same conversation with the same
// IDs, and the count of pages online is the room's.
func TestTwoServersShareARoomThroughRedis(t *testing.T) {
	start := startRedis(t)
	a, b := start(), start()
	c := client(t)

	// The servers' own counts, published at their start, may come first.
	onA := openStream(t, c, a.url+"/events", "")
	presenceUntil(t, onA, `{"online":1}`)
	onB := openStream(t, c, b.url+"/events", "")
	presenceUntil(t, onB, `{"online":2}`)
	presenceUntil(t, onA, `{"online":2}`)

	post(t, c, b.url, "Ada", "posted on B")
	post(t, c, a.url, "Grace", "posted on A")
	var fromStream []message
	for range 2 {
		ev := next(t, onA, "message")
		var m message
		if err := json.Unmarshal([]byte(ev.Data.(string)), &m); err != nil {
			t.Fatal(err)
		}
		m.ID = ev.ID
		fromStream = append(fromStream, m)
	}
	if fromStream[0].Text != "posted on B" || fromStream[1].Text != "posted on A" {
		t.Fatalf("the page on A got %+v", fromStream)
	}

	// Both servers list the conversation, with the IDs the stream gave.
	for name, ts := range map[string]*testServer{"A": a, "B": b} {
		var recent struct {
			Messages    []message `json:"messages"`
			LastEventID string    `json:"lastEventID"`
		}
		getJSON(t, c, ts.url+"/api/messages", &recent)
		if !slices.EqualFunc(recent.Messages, fromStream, func(x, y message) bool {
			return x.ID == y.ID && x.Text == y.Text && x.Name == y.Name && x.Time.Equal(y.Time)
		}) {
			t.Errorf("GET /api/messages on %s: %+v, want %+v", name, recent.Messages, fromStream)
		}
		if recent.LastEventID == "" {
			t.Errorf("GET /api/messages on %s gave no ID to resume from", name)
		}
	}

	// A page that loads on B now resumes from the ID B gave, and misses
	// nothing posted on A in between.
	var recent struct {
		LastEventID string `json:"lastEventID"`
	}
	getJSON(t, c, b.url+"/api/messages", &recent)
	post(t, c, a.url, "Linus", "in between")
	late := openStream(t, c, b.url+"/events?lastEventID="+url.QueryEscape(recent.LastEventID), "")
	if ev := next(t, late, "message"); !strings.Contains(ev.Data.(string), "in between") {
		t.Errorf("got %q, want the message posted in between", ev.Data)
	}

	var st stats
	getJSON(t, c, a.url+"/api/stats", &st)
	if st.Redis == nil || !st.Redis.Connected || st.Redis.Delivered == 0 || st.Online != 1 {
		t.Errorf("stats on A %+v, want the Redis backend's counters", st)
	}
}

// A server that restarts on the same Redis finds the room as it was: its
// conversation, and pages resume from their Last-Event-ID with no reset.
func TestServerRestartKeepsTheRoomInRedis(t *testing.T) {
	start := startRedis(t)
	a := start()
	c := client(t)
	post(t, c, a.url, "Ada", "before the restart")
	var recent struct {
		LastEventID string `json:"lastEventID"`
	}
	getJSON(t, c, a.url+"/api/messages", &recent)
	post(t, c, a.url, "Ada", "missed")
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}

	again := start()
	var after struct {
		Messages []message `json:"messages"`
	}
	getJSON(t, c, again.url+"/api/messages", &after)
	if len(after.Messages) != 2 || after.Messages[1].Text != "missed" {
		t.Fatalf("after the restart: %+v, want both messages", after.Messages)
	}
	events := openStream(t, c, again.url+"/events", recent.LastEventID)
	ev, err := events.Decode()
	for err == nil && ev.Type == "presence" {
		ev, err = events.Decode()
	}
	if err != nil || ev.Type != "message" || !strings.Contains(ev.Data.(string), `"text":"missed"`) {
		t.Fatalf("got %+v, %v; want the missed message replayed, not a reset", ev, err)
	}
}

// presenceUntil reads presence events until one has the data want.
func presenceUntil(t *testing.T, d *event.Decoder, want string) {
	t.Helper()
	var seen []any
	for range 10 {
		ev := next(t, d, "presence")
		if ev.Data == want {
			return
		}
		seen = append(seen, ev.Data)
	}
	t.Fatalf("presence events %q, never %s", seen, want)
}

// TestMetricsThroughRedis: with -redis, GET /metrics has the backend's
// counters too: what this server published, what it read back from the
// log, and the reader's lag, none once it has caught up.
func TestMetricsThroughRedis(t *testing.T) {
	start := startRedis(t)
	a := start()
	page := openPage(t, a.url+"/events")
	page.waitFor(t, `{"online":1}`)
	for i := range 3 {
		postMessage(t, a.url, "through Redis "+strconv.Itoa(i))
		page.waitFor(t, "through Redis "+strconv.Itoa(i))
	}
	// Published: the two counts (at the start, and with the page), the
	// three messages; all read back.
	want := map[string]float64{
		"echosse_redis_published_total":      5,
		"echosse_redis_delivered_total":      5,
		"echosse_redis_publish_errors_total": 0,
		"echosse_redis_lost_total":           0,
		"echosse_redis_recovered_total":      0,
		"echosse_redis_reconnects_total":     0,
		"echosse_redis_connected":            1,
		"echosse_redis_reader_lag_messages":  0,
		"echosse_broker_published_total":     5,
		"echosse_streams_open":               1,
	}
	m := waitMetrics(t, a.url+"/metrics", func(m metrics) bool { return m.value("echosse_redis_delivered_total") == 5 })
	m.expect(t, "with -redis", want)
}
