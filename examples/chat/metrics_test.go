package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/stallnet"
)

// TestMetrics scripts a room's life and checks that GET /metrics, scraped
// over HTTP and parsed with Prometheus's own text parser, says exactly
// what happened: four pages open one after the other (the most the
// server takes), a fifth is refused, three messages go to all, two pages
// leave, the fourth stops reading and is dropped at its write timeout, a
// last message goes to the first page alone; then the server shuts down.
// What the pages received (events, bytes) is counted by the pages.
func TestMetrics(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stalls := stallnet.Wrap(ln)
	ts := startServerOn(t, stalls, config{Retry: time.Second, MaxClients: 4, WriteTimeout: writeTimeout})

	var pages []*page
	published := 1 // the presence the server publishes when it starts
	open := func() *page {
		p := openPage(t, ts.url+"/events")
		pages = append(pages, p)
		published++ // the count with this page
		for _, q := range pages {
			q.waitFor(t, fmt.Sprintf(`{"online":%d}`, len(pages)))
		}
		return p
	}
	a, b, c, d := open(), open(), open(), open()

	// Over MaxClients: a stream that holds only a retry hint.
	res, err := client(t).Get(ts.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	refused, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(string(refused), ": too many clients") {
		t.Fatalf("the fifth page got %q, want a retry hint", refused)
	}

	post := func(text string, to ...*page) {
		t.Helper()
		postMessage(t, ts.url, text)
		published++
		for _, p := range to {
			p.waitFor(t, text)
		}
	}
	for i := range 3 {
		post(fmt.Sprintf("message %d", i), a, b, c, d)
	}

	// b leaves, and the others learn it; then c.
	b.leave()
	published++
	for _, p := range []*page{a, c, d} {
		p.waitFor(t, `{"online":3}`)
	}
	c.leave()
	published++
	a.waitFor(t, `{"online":2}`)
	d.waitFor(t, `{"online":2}`)

	// d's connection takes no more bytes: the next write waits for the
	// write timeout, and d's stream ends.
	if !stalls.Stall(d.local()) {
		t.Fatalf("no connection from %s", d.local())
	}
	post("the last message", a)
	published++ // d's leaving
	a.waitFor(t, `{"online":1}`)

	received := func(ps ...*page) (events, bytes int) {
		for _, p := range ps {
			e, b := p.counts()
			events, bytes = events+e, bytes+b
		}
		return events, bytes
	}
	events, bytes := received(a, b, c, d)
	flushes := len(pages) + events + 1 // at each open, each event alone, and d's that waited
	// A flush is counted as it returns, which may be a hair after its
	// page has read it.
	m := waitMetrics(t, ts.url+"/metrics", func(m metrics) bool {
		return m.value("echosse_streams_ended_total", "reason", "write_timeout") == 1 &&
			m.value("echosse_events_written_total") == float64(events) &&
			m.value("echosse_flush_duration_seconds_count") == float64(flushes)
	})
	want := map[string]float64{
		"echosse_streams_open":                                  1,
		"echosse_streams_opened_total":                          4,
		`echosse_streams_refused_total{overflow="retry"}`:       1,
		`echosse_streams_refused_total{overflow="unavailable"}`: 0,
		`echosse_streams_ended_total{reason="client_gone"}`:     2,
		`echosse_streams_ended_total{reason="write_timeout"}`:   1,
		`echosse_streams_ended_total{reason="closed"}`:          0,
		`echosse_streams_ended_total{reason="shutdown"}`:        0,
		`echosse_streams_ended_total{reason="aborted"}`:         0,
		`echosse_streams_ended_total{reason="handler_error"}`:   0,
		`echosse_streams_ended_total{reason="handler_panic"}`:   0,
		`echosse_streams_ended_total{reason="pump_panic"}`:      0,
		"echosse_events_written_total":                          float64(events),
		"echosse_events_invalid_total":                          0,
		"echosse_encoded_bytes_total":                           float64(bytes),
		"echosse_written_bytes_total":                           float64(bytes),
		"echosse_heartbeats_total":                              0,
		"echosse_flush_duration_seconds_count":                  float64(flushes),
		"echosse_compressors":                                   0,
		"echosse_compressor_waits_total":                        0,
		"echosse_compressor_steals_total":                       0,
		"echosse_broker_subscribers":                            1,
		"echosse_broker_topics":                                 2,
		`echosse_broker_topic_subscribers{topic="chat"}`:        1,
		`echosse_broker_topic_subscribers{topic="presence"}`:    1,
		"echosse_broker_published_total":                        float64(published),
		"echosse_broker_replayed_total":                         0,
		"echosse_broker_gaps_total":                             0,
		"echosse_broker_slow_clients_total":                     0,
		"echosse_broker_dropped_total":                          0,
	}
	m.expect(t, "before the shutdown", want)
	// The write that waited for the timeout is the one slow flush.
	if slow := m.bucket("echosse_flush_duration_seconds", 1) - m.bucket("echosse_flush_duration_seconds", 0.1); slow < 1 {
		t.Errorf("flushes between 100 ms and 1 s: %v, want d's", slow)
	}
	if sum := m.value("echosse_flush_duration_seconds_sum"); sum < (writeTimeout - writeTimeout/8).Seconds() { // a deadline may be kept from a write up to 1/8 of the timeout before
		t.Errorf("flush time %vs, want at least d's %v", sum, writeTimeout)
	}
	// The script's own arithmetic: a saw the counts 1, 2, 3, 4, 3, 2, 1
	// and four messages; b the counts 2, 3, 4 and three messages; c 3, 4,
	// 3 and three; d 4, 3, 2 and three.
	if events != 11+6+6+6 || published != 12 {
		t.Errorf("the pages received %d events of %d published, want 29 of 12", events, published)
	}

	// The shutdown: a receives the close event, and the server is gone,
	// so its /metrics is read through a server of the test's.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	a.waitEnd(t)
	after := httptest.NewServer(ts.metrics)
	t.Cleanup(after.Close)
	_, bytes = received(a, b, c, d)
	m = waitMetrics(t, after.URL, func(m metrics) bool { return m.value("echosse_encoded_bytes_total") == float64(bytes) })
	want["echosse_streams_open"] = 0
	want[`echosse_streams_ended_total{reason="shutdown"}`] = 1
	want["echosse_encoded_bytes_total"] = float64(bytes) // the close event
	want["echosse_written_bytes_total"] = float64(bytes)
	want["echosse_flush_duration_seconds_count"] = float64(flushes + 1)
	want["echosse_broker_subscribers"] = 0
	want["echosse_broker_topics"] = 0
	want[`echosse_broker_topic_subscribers{topic="chat"}`] = 0
	want[`echosse_broker_topic_subscribers{topic="presence"}`] = 0
	m.expect(t, "after the shutdown", want)
}

// page is a client of GET /events that counts the events and bytes it
// receives.
type page struct {
	res   *http.Response
	addr  string             // its connection's local address
	stop  context.CancelFunc // leaves
	ended chan struct{}      // closed when its stream has ended

	mu     sync.Mutex
	bytes  int
	events []event.Event // the close event aside
	closed bool          // it received the close event
	seen   int           // events waitFor has looked at
}

// openPage opens a stream of url on a connection of its own and reads it
// until it ends or the page leaves.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &page{stop: cancel, ended: make(chan struct{})}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { p.addr = info.Conn.LocalAddr().String() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	p.res = res
	t.Cleanup(func() {
		p.leave()
		<-p.ended
		tr.CloseIdleConnections()
	})
	go func() {
		defer close(p.ended)
		d := event.NewDecoder(countBytes{p})
		for {
			ev, err := d.Decode()
			if err != nil {
				return
			}
			p.mu.Lock()
			if ev.Type == "close" {
				p.closed = true
			} else {
				p.events = append(p.events, ev)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// countBytes reads p's body, counting.
type countBytes struct{ p *page }

func (c countBytes) Read(b []byte) (int, error) {
	n, err := c.p.res.Body.Read(b)
	c.p.mu.Lock()
	c.p.bytes += n
	c.p.mu.Unlock()
	return n, err
}

// leave closes the page's connection.
func (p *page) leave() {
	p.stop()
	p.res.Body.Close()
}

// local returns the local address of the page's connection.
func (p *page) local() string { return p.addr }

// counts returns the events and bytes the page has received.
func (p *page) counts() (events, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events), p.bytes
}

// waitFor waits until the page has received an event whose data
// contains s, after the one the last waitFor found.
func (p *page) waitFor(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		found := false
		for ; p.seen < len(p.events) && !found; p.seen++ {
			found = strings.Contains(fmt.Sprint(p.events[p.seen].Data), s)
		}
		p.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not receive %q", s)
		}
	}
}

// waitEnd waits until the page's stream has ended with the close event.
func (p *page) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-p.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the page's stream did not end")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		t.Error("the page's stream ended without the close event")
	}
}

// postMessage posts a message as a page's script does.
func postMessage(t *testing.T, url, text string) {
	t.Helper()
	body, _ := json.Marshal(posted{Name: "metrics", Text: text})
	res, err := client(t).Post(url+"/messages", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /messages: %s", res.Status)
	}
}

// metrics are the metric families of one scrape.
type metrics map[string]*dto.MetricFamily

// scrape reads url's metrics with Prometheus's text parser.
func scrape(t *testing.T, url string) metrics {
	t.Helper()
	res, err := client(t).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return mfs
}

// waitMetrics scrapes url until ready holds of the scrape, for 10 s at
// most; then it returns the last scrape, for the test to say what is
// wrong with it.
func waitMetrics(t *testing.T, url string, ready func(metrics) bool) metrics {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		m := scrape(t, url)
		if ready(m) {
			return m
		}
		if time.Now().After(deadline) {
			return m
		}
	}
}

// value returns the value of the series of name (with a _count or _sum
// suffix, a histogram's) with the label pairs given, or -1 if none.
func (m metrics) value(name string, labels ...string) float64 {
	base, suffix := name, ""
	for _, s := range []string{"_count", "_sum"} {
		if b, ok := strings.CutSuffix(name, s); ok && m[b] != nil && m[b].GetType() == dto.MetricType_HISTOGRAM {
			base, suffix = b, s
		}
	}
	mf := m[base]
	if mf == nil {
		return -1
	}
	for _, mt := range mf.Metric {
		if !hasLabels(mt, labels) {
			continue
		}
		switch {
		case suffix == "_count":
			return float64(mt.GetHistogram().GetSampleCount())
		case suffix == "_sum":
			return mt.GetHistogram().GetSampleSum()
		case mt.Counter != nil:
			return mt.Counter.GetValue()
		case mt.Gauge != nil:
			return mt.Gauge.GetValue()
		}
	}
	return -1
}

// bucket returns the cumulative count of histogram name's bucket le.
func (m metrics) bucket(name string, le float64) float64 {
	for _, mt := range m[name].GetMetric() {
		for _, b := range mt.GetHistogram().GetBucket() {
			if b.GetUpperBound() == le {
				return float64(b.GetCumulativeCount())
			}
		}
	}
	return -1
}

func hasLabels(mt *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range mt.Label {
			found = found || l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}
		if !found {
			return false
		}
	}
	return true
}

// expect checks every series of want, written name{label="value"}.
func (m metrics) expect(t *testing.T, when string, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		name, labels := series, []string(nil)
		if i := strings.IndexByte(series, '{'); i >= 0 {
			name = series[:i]
			for pair := range strings.SplitSeq(strings.Trim(series[i:], "{}"), ",") {
				k, val, _ := strings.Cut(pair, "=")
				labels = append(labels, k, strings.Trim(val, `"`))
			}
		}
		if got := m.value(name, labels...); got != v {
			t.Errorf("%s: %s = %v, want %v", when, series, got, v)
		}
	}
}
