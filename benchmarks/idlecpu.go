package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The idle CPU scenario (B3): o.IdleCPUClients idle /events streams, each
// sent a heartbeat every o.Heartbeat, held open for o.IdleCPUWindow while
// the server's CPU time is measured, and divided by streams × seconds.
// The clients count the heartbeat comments they receive over the same
// window: about one per stream per heartbeat interval, or the server is not
// doing the work the CPU is divided by.

// Metrics of B3.
const (
	mCPUPerStreamSec      = "cpu_us_per_stream_s"
	mCPUPerBeat           = "cpu_us_per_heartbeat"
	mBeatsPerStreamSec    = "heartbeats_per_stream_s"
	mBeatsMinPerStreamSec = "heartbeats_min_per_stream_s"
	mWritesPerStreamSec   = "writes_per_stream_s"
	mSwitchesPerStreamSec = "ctx_switches_per_stream_s"
)

// idleCPUServers are the servers of B3: the ones whose heartbeat is set
// through serverConfig.Heartbeat.
var idleCPUServers = []string{"raw", "echosse", "echosse5", "echosse-nethttp", "echosse-takeover"}

func idleCPUScenario(o options) *scenario {
	return &scenario{
		ID:    "B3",
		Title: fmt.Sprintf("Idle CPU, %d idle streams with a heartbeat every %v", o.IdleCPUClients, o.Heartbeat),
		Notes: []string{
			fmt.Sprintf("The streams held open with no event, each sent a heartbeat comment every %v: the server's CPU time (getrusage) over %v once every stream is open and has had its first heartbeat, per stream and second; the clients count the heartbeats they received over the same window (about %.3g per stream-second expected; \"fewest\" is the stream that got the fewest).", o.Heartbeat, o.IdleCPUWindow, float64(time.Second)/float64(o.Heartbeat)),
			"raw writes the heartbeat from its handler on a time.Ticker of its own, per connection (what a hand-written net/http SSE server does); echosse and its doors with Config.PingInterval, from the Server's sweeper goroutine; echosse-takeover with Config.Takeover on as well (its idle streams park, with no goroutine of their own: each heartbeat starts a pump goroutine, which writes it and parks the stream again; one epoll poller watches the connections).",
		},
		Variants: variants(false, idleCPUServers...),
		Reps:     o.HeavyReps,
		Metrics: []metric{
			{mCPUPerStreamSec, "server CPU µs/stream-s", -1, true},
			{mCPUPerBeat, "server CPU µs/heartbeat", -1, true},
			{mBeatsPerStreamSec, "heartbeats/stream-s received", 0, false},
			{mBeatsMinPerStreamSec, "fewest heartbeats/s one stream received", 0, false},
			{mWritesPerStreamSec, "write syscalls/stream-s", -1, false},
			{mSwitchesPerStreamSec, "context switches/stream-s", -1, false},
			{mGoroutines, "goroutines/stream", -1, false},
			{mClientCPU, "client CPU (cores)", 0, false},
		},
		Ref: "raw",
		Run: func(ctx context.Context, v variant) (map[string]float64, error) { return runIdleCPU(ctx, o, v) },
	}
}

// runIdleCPU is B3.
func runIdleCPU(ctx context.Context, o options, v variant) (map[string]float64, error) {
	n := o.IdleCPUClients
	cfg := childConfig{
		Server:         serverConfig{Name: v.Server, Gzip: v.Gzip, BufferSize: v.BufferSize, Compress: v.Compress, Heartbeat: o.Heartbeat},
		CPUProfile:     o.cpuProfile,
		MemProfile:     o.memProfile,
		MemProfileRate: o.MemProfileRate,
	}
	c, err := startChild(cfg, o.ServerCPU, v.Exe)
	if err != nil {
		return nil, err
	}
	m, err := measureIdleCPU(ctx, o, c, n)
	if serr := c.stop(); err == nil && serr != nil {
		err = serr
	}
	return m, err
}

func measureIdleCPU(ctx context.Context, o options, c *childProc, n int) (map[string]float64, error) {
	before, err := c.stats()
	if err != nil {
		return nil, err
	}
	g, err := startBeatClients(ctx, c.hello.Addr, "/events?stream=events", n, o.DialConcurrency, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer g.close()
	if err := waitSubscribers(c, n, 30*time.Second); err != nil {
		return nil, err
	}
	// Every stream open and past its first heartbeat: the ramp's work
	// is over.
	time.Sleep(settle + o.Heartbeat)
	if err := g.err(); err != nil {
		return nil, err
	}
	b0 := g.snapshot()
	client := ownCPUNanos()
	s0, err := c.stats()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.IdleCPUWindow):
	}
	s1, err := c.stats()
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	client = ownCPUNanos() - client
	b1 := g.snapshot()
	if err := g.err(); err != nil {
		return nil, err
	}
	var beats int64
	fewest := int64(-1)
	for i := range b1 {
		d := b1[i] - b0[i]
		beats += d
		if fewest < 0 || d < fewest {
			fewest = d
		}
	}
	streamSecs := float64(n) * secs
	cpu := float64(s1.CPUNanos - s0.CPUNanos)
	m := map[string]float64{
		mCPUPerStreamSec:      cpu / streamSecs / 1e3,
		mBeatsPerStreamSec:    float64(beats) / streamSecs,
		mBeatsMinPerStreamSec: float64(fewest) / secs,
		// Less the stats answer.
		mWritesPerStreamSec:   float64(s1.WriteCalls-s0.WriteCalls-1) / streamSecs,
		mSwitchesPerStreamSec: float64(s1.CtxSwitches-s0.CtxSwitches) / streamSecs,
		mGoroutines:           float64(s0.Goroutines-before.Goroutines) / float64(n),
		mClientCPU:            float64(client) / (secs * 1e9),
	}
	if beats > 0 {
		m[mCPUPerBeat] = cpu / float64(beats) / 1e3
	}
	// The CPU is divided by streams that were sent their heartbeats: a
	// server that sends fewer than half of them is not doing that work.
	if want := streamSecs * float64(time.Second) / float64(o.Heartbeat); float64(beats) < want/2 {
		return m, fmt.Errorf("the clients received %d heartbeats in %.1f s, want about %.0f", beats, secs, want)
	}
	if fewest == 0 {
		return m, fmt.Errorf("a stream received no heartbeat in %.1f s", secs)
	}
	return m, nil
}

// waitSubscribers waits until the server counts n subscribers.
func waitSubscribers(c *childProc, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		subs, err := c.subscribers()
		if err != nil {
			return err
		}
		if subs >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server counts %d of %d subscribers", subs, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// beatGroup is many idle subscribers counting the heartbeats (comment
// lines) they receive.
type beatGroup struct {
	conns  []*sseConn
	beats  []atomic.Int64 // comment lines, per stream
	events atomic.Int64   // any other line that starts an event
	wg     sync.WaitGroup
	mu     sync.Mutex
	first  error // the first stream that ended before close
	closed atomic.Bool
}

// startBeatClients opens n subscribers to path, at most conc at a time,
// and returns once every one has its response headers (or the first
// error). Each then counts the comment lines of its stream until closed.
func startBeatClients(ctx context.Context, addr, path string, n, conc int, timeout time.Duration) (*beatGroup, error) {
	g := &beatGroup{conns: make([]*sseConn, n), beats: make([]atomic.Int64, n)}
	err := dialMany(ctx, addr, path, false, n, conc, timeout, func(i int, c *sseConn) {
		g.conns[i] = c
		g.wg.Go(func() { g.read(i, c) })
	}, 0)
	if err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// read counts the lines of stream i that start with ':' (comments: the
// heartbeats) until the connection ends.
func (g *beatGroup) read(i int, c *sseConn) {
	buf := make([]byte, 512)
	lineStart := true
	for {
		k, err := c.body.Read(buf)
		for _, b := range buf[:k] {
			if lineStart && b == ':' {
				g.beats[i].Add(1)
			} else if lineStart && b != '\n' {
				g.events.Add(1)
			}
			lineStart = b == '\n'
		}
		if err != nil {
			if !g.closed.Load() {
				g.mu.Lock()
				if g.first == nil {
					g.first = fmt.Errorf("stream %d ended: %w", i, err)
				}
				g.mu.Unlock()
			}
			return
		}
	}
}

// snapshot is every stream's heartbeat count.
func (g *beatGroup) snapshot() []int64 {
	s := make([]int64, len(g.beats))
	for i := range g.beats {
		s[i] = g.beats[i].Load()
	}
	return s
}

// err reports a stream that ended, or lines other than comments.
func (g *beatGroup) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.first != nil {
		return g.first
	}
	if e := g.events.Load(); e > 0 {
		return fmt.Errorf("%d lines other than comments on idle streams", e)
	}
	return nil
}

// close closes every connection and waits for the readers to end.
func (g *beatGroup) close() {
	g.closed.Store(true)
	for _, c := range g.conns {
		if c != nil {
			c.Close()
		}
	}
	g.wg.Wait()
}

// idleCPUBudget is the budget's line for B3: each server's CPU per
// stream-second (with the heartbeats its clients received), then the
// taken-over path beside today's path (echosse) and raw, per pair of runs.
func idleCPUBudget(r scenarioReport) (string, string) {
	var parts []string
	for _, name := range idleCPUServers {
		c, ok1 := rowCell(r, name, mCPUPerStreamSec)
		b, ok2 := rowCell(r, name, mBeatsPerStreamSec)
		if ok1 && ok2 {
			parts = append(parts, fmt.Sprintf("%s %s µs (%s heartbeats/stream-s)", name, fmtNum(c.Median), fmtNum(b.Median)))
		}
	}
	for _, ratio := range []string{"echosse-takeover / echosse", "echosse-takeover / raw", "echosse / raw"} {
		if s, ok := ratioCell(r, ratio, mCPUPerStreamSec); ok {
			parts = append(parts, ratio+" "+fmtSummary(s, fmtRatio))
		}
	}
	if len(parts) == 0 {
		return "no figures", "misses"
	}
	return strings.Join(parts, "; "), "reported"
}
