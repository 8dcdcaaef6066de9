package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Every server variant serves two endpoints on one loopback listener:
//
//	GET /stream?n=N&mode=M&interval=D  one client; the server itself produces
//	                                    N events for it (scenarios A1-A3)
//	GET /events?stream=events           a subscriber of the broadcast that the
//	                                    driver starts with "publish" (B, C)
//
// ("stream=events" is the query r3labs/sse needs to pick its stream; the
// others ignore it.)

// server is one SSE implementation under test, built in a server child.
type server interface {
	// publish sends data (one line of JSON) to every subscriber of /events
	// as one event, and returns once the implementation has accepted it.
	publish(data []byte)
	// subscribers reports how many /events clients are subscribed, so that
	// the driver knows when every one will receive the next publish.
	subscribers() int
}

// serverConfig is what a server child is asked to build.
type serverConfig struct {
	Name string `json:"name"`
	Gzip bool   `json:"gzip"`
	// BufferSize sets echosse.Config.BufferSize, or the same field of the
	// other doors' configurations (0: the library default).
	BufferSize int `json:"buffer_size,omitempty"`
	// Compress, with Gzip, uses the library's compression
	// (echosse.Config.Compress, or the other doors') instead of Echo's
	// Gzip middleware.
	Compress bool `json:"compress,omitempty"`
	// Heartbeat, when set, is how often an idle /events stream gets a
	// heartbeat comment: echosse's Config.PingInterval (and the other
	// doors'), a ticker per connection in raw. Zero leaves each server
	// as it is by default (echosse: every 25 s; raw: none).
	Heartbeat time.Duration `json:"heartbeat,omitempty"`
}

// counterer is a server that counts things worth reporting (echosse's
// broker: slow clients dropped).
type counterer interface {
	counters() map[string]float64
}

// builders maps a server name to its constructor. raw-coalesce is raw's
// broadcast hub flushing only when a subscriber's queue is empty; for
// /stream it is raw.
var builders = map[string]func(cfg serverConfig) (http.Handler, server, error){
	"raw":              func(cfg serverConfig) (http.Handler, server, error) { return newRaw(cfg, false) },
	"raw-coalesce":     func(cfg serverConfig) (http.Handler, server, error) { return newRaw(cfg, true) },
	"echo-cookbook":    newCookbook,
	"r3labs":           newR3labs,
	"gosse":            newGoSSE,
	"echosse":          newEchoSSE,
	"echosse5":         newEchoSSE5,
	"echosse-nethttp":  newNetHTTPSSE,
	"echosse-takeover": newEchoSSETakeover,
}

// serverNames lists the servers in the order the tables show them.
var serverNames = []string{"raw", "raw-coalesce", "echo-cookbook", "r3labs", "gosse", "echosse", "echosse5", "echosse-nethttp", "echosse-takeover"}

// doors are echosse's other front doors (Echo v5, net/http), compared
// with the Echo v4 door, echosse, and with the reference: neither a peer
// nor the row the budget's ratios are computed for.
var doors = []string{"echosse5", "echosse-nethttp", "echosse-takeover"}

// peers are the servers echosse is compared against; raw is the limit, not
// a peer.
var peers = []string{"echo-cookbook", "r3labs", "gosse"}

func isPeer(name string) bool { return slices.Contains(peers, name) }

// buildServer builds the named server, behind Echo's Gzip middleware when
// cfg.Gzip is set.
func buildServer(cfg serverConfig) (http.Handler, server, error) {
	b, ok := builders[cfg.Name]
	if !ok {
		return nil, nil, fmt.Errorf("unknown server %q", cfg.Name)
	}
	return b(cfg)
}

// behindEchoGzip serves h through an Echo instance whose only middleware is
// Gzip, so that servers written for net/http are compressed the same way
// the Echo-based ones are.
func behindEchoGzip(h http.Handler) http.Handler {
	e := newEcho()
	e.Use(middleware.Gzip())
	e.Any("/*", echo.WrapHandler(h))
	return e
}

func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	return e
}

// Production modes of /stream.
const (
	modeFlush = "flush" // as fast as possible, a flush after each event
	modeBurst = "burst" // as fast as possible, flushes left to the server
	modeLone  = "lone"  // one event per interval, stamped with the time it is produced
)

// streamParams are the parameters of a /stream request.
type streamParams struct {
	n        int
	mode     string
	interval time.Duration
	every    int // raw's flush period in burst mode
}

func parseStreamParams(r *http.Request) (streamParams, error) {
	q := r.URL.Query()
	p := streamParams{mode: q.Get("mode"), every: 64}
	var err error
	if p.n, err = strconv.Atoi(q.Get("n")); err != nil || p.n <= 0 {
		return p, fmt.Errorf("bad n %q", q.Get("n"))
	}
	if s := q.Get("interval"); s != "" {
		if p.interval, err = time.ParseDuration(s); err != nil {
			return p, err
		}
	}
	if s := q.Get("every"); s != "" {
		if p.every, err = strconv.Atoi(s); err != nil || p.every <= 0 {
			return p, fmt.Errorf("bad every %q", s)
		}
	}
	switch p.mode {
	case modeFlush, modeBurst:
	case modeLone:
		if p.interval <= 0 {
			return p, fmt.Errorf("mode lone needs an interval")
		}
	default:
		return p, fmt.Errorf("bad mode %q", p.mode)
	}
	return p, nil
}

// payloadSize is the length of the JSON payload of every throughput event.
const payloadSize = 100

// makePayload returns one line of JSON, payloadSize bytes long when ts has
// 19 digits (as UnixNano has today) and seq fewer than 9:
//
//	{"seq":7,"ts":1763940000000000000,"sym":"ECHO","px":1234.5678,"qty":100,"pad":"xxxx"}
//
// The client reads seq to check order and ts to compute latency.
func makePayload(seq int, ts int64) []byte {
	b := make([]byte, 0, payloadSize+16)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"sym":"ECHO","px":1234.5678,"qty":100,"pad":"`...)
	for len(b) < payloadSize-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// ringSize is how many distinct pre-built events a throughput producer
// cycles through, so that building them costs nothing per event.
const ringSize = 256

// payloadRing returns ringSize payloads with seq 0..ringSize-1 and a fixed
// timestamp.
func payloadRing() [][]byte {
	ts := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixNano()
	r := make([][]byte, ringSize)
	for i := range r {
		r[i] = makePayload(i, ts)
	}
	return r
}

// produce runs the /stream producer for servers that publish through a
// broker of their own (r3labs, go-sse): emit(i) hands event i over. In lone
// mode, fresh(i) builds event i with the current time.
func produce(ctx context.Context, p streamParams, emit func(i int), fresh func(i int)) {
	switch p.mode {
	case modeFlush, modeBurst:
		for i := range p.n {
			if i&1023 == 0 && ctx.Err() != nil {
				return
			}
			emit(i)
			produced.Add(1)
		}
	case modeLone:
		paced(ctx, p.n, p.interval, fresh)
	}
}

// paced calls f(i) for i in [0, n) at start + i*interval, sleeping in
// between, until ctx is done.
func paced(ctx context.Context, n int, interval time.Duration, f func(i int)) {
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		f(i)
	}
}

// produced counts the events /stream producers have handed over, in
// throughput modes: a run's CPU and allocations are divided by it.
var produced atomic.Int64

// yield lets the goroutine that receives what was just sent run before the
// next send: with GOMAXPROCS=1 (the pinned server child) a producer that
// yields after each send hands events over one at a time.
func yield() { runtime.Gosched() }
