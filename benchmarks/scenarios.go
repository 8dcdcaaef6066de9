package main

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// options are the sizes of the scenarios, set by flags.
type options struct {
	Reps      int `json:"reps"`       // repetitions of A1-A3 and E
	HeavyReps int `json:"heavy_reps"` // repetitions of B1 and C1
	WideReps  int `json:"wide_reps"`  // repetitions of B2 and C2, the longest

	StreamTime   time.Duration `json:"stream_time"`   // A1, A2: how long the client reads
	LoneEvents   int           `json:"lone_events"`   // A3
	LoneInterval time.Duration `json:"lone_interval"` // A3

	IdleClients     int           `json:"idle_clients"`      // B1
	IdleGzipClients int           `json:"idle_gzip_clients"` // B2
	WarmEvents      int           `json:"warm_events"`       // B2: events after which a gzip stream is "warm"
	WarmInterval    time.Duration `json:"warm_interval"`     // B2: between those events
	IdleCPUClients  int           `json:"idle_cpu_clients"`  // B3
	IdleCPUWindow   time.Duration `json:"idle_cpu_window"`   // B3: how long the server's CPU is measured
	Heartbeat       time.Duration `json:"heartbeat"`         // B3: each stream's heartbeat interval

	FanoutSubs     int           `json:"fanout_subs"`     // C1
	ClientStreams  int           `json:"client_streams"`  // D2
	FanoutEvents   int           `json:"fanout_events"`   // C1
	FanoutInterval time.Duration `json:"fanout_interval"` // C1

	WideSubs     int           `json:"wide_subs"`      // C2
	WideGzipSubs int           `json:"wide_gzip_subs"` // C2 behind gzip
	WideRate     int           `json:"wide_rate"`      // C2, events per second
	WideDuration time.Duration `json:"wide_duration"`  // C2

	// Probes (C1, C2): subscriber processes that take the latency a
	// client sees, each holding ProbeStreams of the subscribers.
	Probes       int `json:"probes"`
	ProbeStreams int `json:"probe_streams"`

	DialConcurrency int    `json:"dial_concurrency"`
	ServerCPU       string `json:"server_cpu"` // taskset list for the server child, "" for none
	DriverCPU       string `json:"driver_cpu"` // taskset list for the probes, "" for none

	// Profile files the server child writes (-profile only).
	cpuProfile, memProfile string
	// MemProfileRate is the server child's runtime.MemProfileRate when it
	// profiles (-profile only): 1 records every allocation.
	MemProfileRate int `json:"-"`
}

// variant is one server configuration in a scenario.
type variant struct {
	Server     string `json:"server"`
	Gzip       bool   `json:"gzip"`
	BufferSize int    `json:"buffer_size,omitempty"`
	Compress   bool   `json:"compress,omitempty"` // echosse's own gzip (with Gzip)
	// Label names rows that are not a server (the encoders of E).
	Label string `json:"label,omitempty"`
	// Exe, when set, is the benchmark binary (built at another commit)
	// whose children serve this variant (-baseline).
	Exe string `json:"exe,omitempty"`
}

func (v variant) String() string {
	s := v.Server
	if v.Label != "" {
		s = v.Label
	}
	if v.BufferSize > 0 {
		s += fmt.Sprintf(" (BufferSize %d)", v.BufferSize)
	}
	if v.Compress {
		s += " (Compress)"
	}
	if v.Gzip {
		s += " +gzip"
	}
	if v.Exe != "" {
		s += " @baseline"
	}
	return s
}

// primary reports whether v is a row the ratios are computed for or
// against: the defaults, not an informational variant.
func (v variant) primary() bool { return v.BufferSize == 0 && !v.Compress && v.Exe == "" }

// withBaseline adds, after each of sc's primary echosse variants, the same
// served by the binary exe: the library at another commit, measured in the
// same run, interleaved with this one.
func withBaseline(sc *scenario, exe string) {
	var vs []variant
	for _, v := range sc.Variants {
		vs = append(vs, v)
		if v.Server == "echosse" && v.primary() && v.Label == "" {
			b := v
			b.Exe = exe
			vs = append(vs, b)
		}
	}
	sc.Variants = vs
}

// metric is one column of a scenario's table.
type metric struct {
	Key    string `json:"key"`
	Label  string `json:"label"`
	Better int    `json:"better"` // +1 higher is better, -1 lower is better, 0 not compared
	Ratio  bool   `json:"ratio"`  // show echosse's ratios to the reference and the best peer
}

// scenario is one row group of the report.
type scenario struct {
	ID       string
	Title    string
	Notes    []string
	Variants []variant
	Reps     int
	Metrics  []metric
	Ref      string // the server the "echosse / Ref" ratio divides by
	// Pairs are more ratios, row over row, by the rows' names.
	Pairs [][2]string
	Run   func(ctx context.Context, v variant) (map[string]float64, error)
}

// variants returns each of names plain and, if gz, behind gzip, and then
// echosse with its own compression (Config.Compress).
func variants(gz bool, names ...string) []variant {
	var vs []variant
	for _, g := range []bool{false, true} {
		if g && !gz {
			break
		}
		for _, n := range names {
			vs = append(vs, variant{Server: n, Gzip: g})
		}
	}
	if gz {
		vs = append(vs, variant{Server: "echosse", Gzip: true, Compress: true})
	}
	return vs
}

var (
	allStreamServers = []string{"raw", "echo-cookbook", "r3labs", "gosse", "echosse", "echosse5", "echosse-nethttp", "echosse-takeover"}
	allHubServers    = []string{"raw", "raw-coalesce", "echo-cookbook", "r3labs", "gosse", "echosse", "echosse5", "echosse-nethttp", "echosse-takeover"}
	// C2 leaves out raw flushing after every event: it cannot keep up
	// with C1 already, and C2 is the longest scenario. It leaves out the
	// other doors too: they share the broker with echosse, which C1
	// compares them on.
	wideServers = []string{"raw-coalesce", "echo-cookbook", "r3labs", "gosse", "echosse"}
)

const (
	mEventsPerSec = "events_per_s"
	mCPUPerEvent  = "cpu_us_per_event"
	mAllocs       = "allocs_per_event"
	mWrites       = "writes_per_event"
	mP50          = "p50_ms"
	mP99          = "p99_ms"
	mMax          = "max_ms"
	mDriverP50    = "driver_p50_ms"
	mDriverP99    = "driver_p99_ms"
	mRSS          = "rss_kib_per_stream"
	mHeap         = "heap_kib_per_stream"
	mGoroutines   = "goroutines_per_stream"
	mDelivered    = "delivered"
	mBehind       = "behind_ms"
	mRampPerSec   = "conns_per_s"
	mSlow         = "slow_clients"
	mSwitches     = "ctx_switches_per_event"
	mClientCPU    = "client_cpu"
	mStacks       = "stack_kib_per_stream"
	mRSSAfter     = "rss_kib_per_stream_after_event"
	mStacksAfter  = "stack_kib_per_stream_after_event"
)

// scenarios returns every scenario sized by o.
func scenarios(o options) []*scenario {
	throughputMetrics := []metric{
		{mEventsPerSec, "events/s", +1, true},
		{mCPUPerEvent, "server CPU µs/event", -1, true},
		{mAllocs, "allocs/event", -1, false},
		{mWrites, "write syscalls/event", 0, false},
		{mSwitches, "context switches/event", 0, false},
		{mClientCPU, "client CPU (cores)", 0, false},
	}
	latencyMetrics := []metric{
		{mP50, "p50 latency ms", -1, true},
		{mP99, "p99 latency ms", -1, true},
		{mMax, "max ms", 0, false},
	}
	// Idle streams: the channel of a stream with a smaller buffer than the
	// default 8 events (the largest thing an idle stream holds), beside,
	// for the memory it saves and what it costs in A1 and A3.
	smallBuffer := variant{Server: "echosse-takeover", BufferSize: 4}
	burst := variants(true, allStreamServers...)
	burst = append(burst, variant{Server: "echosse", BufferSize: 64}, variant{Server: "echosse", BufferSize: 64, Gzip: true})
	// Broadcast: with the broker's default policy a stream whose buffer is
	// full is dropped; a buffer as large as the run's events shows what
	// echosse does when no stream is ever dropped.
	fanout := append(variants(true, allHubServers...), variant{Server: "echosse", BufferSize: 1024})
	wide := append(variants(true, wideServers...), variant{Server: "echosse", BufferSize: 1024})

	return []*scenario{
		{
			ID:    "A1",
			Title: "One client, a flush per event",
			Notes: []string{
				fmt.Sprintf("%d-byte JSON events produced by the server as fast as it can, read for %v per run; events/s seen by the client; CPU, allocations, write system calls and context switches counted in the server process, per event it produced. client CPU shows the load generator was not the limit.", payloadSize, o.StreamTime),
				"echosse's producer (the same for its doors echosse5 and echosse-nethttp) yields after each send so that its pump takes events one at a time (a flush per event; see write syscalls/event).",
			},
			Variants: append(variants(true, allStreamServers...), smallBuffer),
			Reps:     o.Reps,
			Metrics:  throughputMetrics,
			Ref:      "raw",
			Run: func(ctx context.Context, v variant) (map[string]float64, error) {
				return runStream(ctx, o, v, modeFlush)
			},
		},
		{
			ID:    "A2",
			Title: "One client, burst (producer far faster than the network)",
			Notes: []string{
				fmt.Sprintf("Read for %v per run; raw flushes once per 64 events, echosse's pump writes what is queued with one flush (up to BufferSize+1 events), the peers flush per event as they always do.", o.StreamTime),
			},
			Variants: burst,
			Reps:     o.Reps,
			Metrics:  throughputMetrics,
			Ref:      "raw",
			Run: func(ctx context.Context, v variant) (map[string]float64, error) {
				return runStream(ctx, o, v, modeBurst)
			},
		},
		{
			ID:    "A3",
			Title: "One client, a lone event on an idle stream",
			Notes: []string{
				fmt.Sprintf("%d events, one every %v; latency from the moment the server hands the event over to the moment the client has parsed it.", o.LoneEvents, o.LoneInterval),
			},
			Variants: append(variants(true, allStreamServers...), smallBuffer),
			Reps:     o.Reps,
			Metrics:  latencyMetrics,
			Ref:      "raw",
			Run:      func(ctx context.Context, v variant) (map[string]float64, error) { return runLone(ctx, o, v) },
		},
		{
			ID:    "B1",
			Title: fmt.Sprintf("%d idle streams", o.IdleClients),
			Notes: []string{
				"Memory and goroutines of the server process after the ramp, less its figures before, per stream; then one broadcast event, which every stream must receive, and memory again once it has arrived (a stream that has written an event, as streams are in use).",
				"heap = Go heap committed (objects + unused + free spans); stack = goroutine stacks.",
				"echosse-takeover (BufferSize 4) is echosse-takeover with Config.BufferSize 4 instead of the default 8: its channel takes 432 bytes instead of 816.",
			},
			Variants: append(variants(false, allStreamServers...), smallBuffer),
			Reps:     o.HeavyReps,
			Metrics: []metric{
				{mRSS, "RSS KiB/stream", -1, true},
				{mHeap, "heap KiB/stream", -1, true},
				{mStacks, "stack KiB/stream", -1, true},
				{mGoroutines, "goroutines/stream", -1, false},
				{mDelivered, "streams that got the broadcast", +1, false},
				{mRSSAfter, "RSS KiB/stream after the event", -1, true},
				{mStacksAfter, "stack KiB/stream after the event", -1, true},
				{mRampPerSec, "ramp conns/s", 0, false},
			},
			Ref: "raw",
			Run: func(ctx context.Context, v variant) (map[string]float64, error) { return runIdle(ctx, o, v) },
		},
		{
			ID:    "B2",
			Title: fmt.Sprintf("%d gzip'd streams, fresh and warm", o.IdleGzipClients),
			Notes: []string{
				fmt.Sprintf("Behind Echo's Gzip: memory per stream when fresh, after 20 events and after %d (broadcast one per %v), each measured 1.5 s after the last event arrived. Fewer streams than B1: a warm gzip'd stream costs hundreds of KiB.", o.WarmEvents, o.WarmInterval),
				"echosse (Compress) is the library's own compression (Config.Compress) instead of Echo's Gzip.",
			},
			Variants: append(variants(false, allStreamServers...), variant{Server: "echosse", Compress: true}),
			Reps:     o.WideReps,
			Metrics: []metric{
				{"rss_fresh", "RSS KiB fresh", -1, true},
				{"heap_fresh", "heap KiB fresh", -1, true},
				{"rss_20", "RSS KiB after 20", -1, true},
				{"heap_20", "heap KiB after 20", -1, true},
				{"rss_warm", fmt.Sprintf("RSS KiB after %d", o.WarmEvents), -1, true},
				{"heap_warm", fmt.Sprintf("heap KiB after %d", o.WarmEvents), -1, true},
				{mGoroutines, "goroutines/stream", -1, false},
				{mDelivered, "delivered", +1, false},
				{mSlow, "streams dropped as slow", -1, false},
			},
			Ref: "raw",
			Run: func(ctx context.Context, v variant) (map[string]float64, error) {
				v.Gzip = true
				return runWarm(ctx, o, v)
			},
		},
		{
			ID:    "C1",
			Title: fmt.Sprintf("Broadcast, %d subscribers, %d events at one per %v", o.FanoutSubs, o.FanoutEvents, o.FanoutInterval),
			Notes: []string{
				"events/s = deliveries / (last delivery - first publish). Latency from the publish call to the read that brought the event, taken by the probes (separate subscriber processes, see the README); load generator p50/p99 are the same over the driver's own subscribers. behind = how long after its slot the last publish returned.",
				"raw flushes after each event; raw-coalesce flushes only when a subscriber's queue is empty (the reference of the budget).",
				"echosse broadcasts through its broker package with the default configuration (BufferSize 8, slow clients aborted): \"streams dropped as slow\" counts the streams it aborted, whose events then count as undelivered (a browser would reconnect and catch up from the history). echosse5 and echosse-nethttp broadcast through the same broker.",
			},
			Variants: fanout,
			Reps:     o.HeavyReps,
			Metrics:  fanoutMetrics(),
			Ref:      "raw-coalesce",
			Run: func(ctx context.Context, v variant) (map[string]float64, error) {
				return runFanout(ctx, o, v, o.FanoutSubs, o.FanoutEvents, o.FanoutInterval)
			},
		},
		{
			ID:    "C2",
			Title: fmt.Sprintf("Broadcast, %d subscribers at %d events/s for %v", o.WideSubs, o.WideRate, o.WideDuration),
			Notes: []string{
				fmt.Sprintf("Behind gzip with %d subscribers instead (memory). A publisher that falls behind stops at twice the duration plus 2 s (in C1 too); delivered then says how much got through.", o.WideGzipSubs),
			},
			Variants: wide,
			Reps:     o.WideReps,
			Metrics:  fanoutMetrics(),
			Ref:      "raw-coalesce",
			Run: func(ctx context.Context, v variant) (map[string]float64, error) {
				subs := o.WideSubs
				if v.Gzip {
					subs = o.WideGzipSubs
				}
				n := int(o.WideDuration.Seconds() * float64(o.WideRate))
				return runFanout(ctx, o, v, subs, n, time.Second/time.Duration(o.WideRate))
			},
		},
	}
}

func fanoutMetrics() []metric {
	return []metric{
		{mDelivered, "delivered", +1, false},
		{mEventsPerSec, "events/s", +1, true},
		{mP50, "p50 ms", -1, true},
		{mP99, "p99 ms", -1, true},
		{mMax, "max ms", 0, false},
		{mDriverP50, "load generator p50 ms", 0, false},
		{mDriverP99, "load generator p99 ms", 0, false},
		{mBehind, "behind ms", -1, false},
		{mCPUPerEvent, "server CPU µs/delivery", -1, true},
		{mSlow, "streams dropped as slow", -1, false},
		{mClientCPU, "client CPU (cores)", 0, false},
	}
}

// withChild runs f against a fresh server child for v, and stops it.
func withChild(o options, v variant, f func(c *childProc) (map[string]float64, error)) (map[string]float64, error) {
	cfg := childConfig{
		Server:         serverConfig{Name: v.Server, Gzip: v.Gzip, BufferSize: v.BufferSize, Compress: v.Compress},
		CPUProfile:     o.cpuProfile,
		MemProfile:     o.memProfile,
		MemProfileRate: o.MemProfileRate,
	}
	c, err := startChild(cfg, o.ServerCPU, v.Exe)
	if err != nil {
		return nil, err
	}
	m, err := f(c)
	if serr := c.stop(); err == nil && serr != nil {
		err = serr
	}
	return m, err
}

// endless is the event count of a throughput run's /stream: the client
// stops reading first.
const endless = 1 << 40

// runStream is A1 and A2: one client reads for o.StreamTime what the
// server produces in mode as fast as it can. Events/s is what the client
// counted; the server's CPU, allocations, writes and context switches are
// divided by the events it produced meanwhile (a few more, still in the
// socket buffers, than the client counted).
func runStream(ctx context.Context, o options, v variant, mode string) (map[string]float64, error) {
	return withChild(o, v, func(c *childProc) (map[string]float64, error) {
		before, err := c.stats()
		if err != nil {
			return nil, err
		}
		path := fmt.Sprintf("/stream?stream=events&mode=%s&n=%d", mode, endless)
		client := ownCPUNanos()
		conn, err := dialSSE(ctx, c.hello.Addr, path, v.Gzip, bigReadBuffer, true, 10*time.Second)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		start := time.Now()
		seen, err := conn.countEvents(endless, start.Add(o.StreamTime))
		elapsed := time.Since(start)
		client = ownCPUNanos() - client
		if err != nil {
			return nil, err
		}
		after, err := c.stats()
		if err != nil {
			return nil, err
		}
		n := float64(after.Produced - before.Produced)
		if seen == 0 || n == 0 {
			return nil, fmt.Errorf("no events in %v", elapsed)
		}
		return map[string]float64{
			mClientCPU:    float64(client) / float64(elapsed),
			mEventsPerSec: float64(seen) / elapsed.Seconds(),
			mCPUPerEvent:  float64(after.CPUNanos-before.CPUNanos) / n / 1e3,
			mAllocs:       float64(after.Mallocs-before.Mallocs) / n,
			mWrites:       float64(after.WriteCalls-before.WriteCalls-1) / n, // less the stats answer
			mSwitches:     float64(after.CtxSwitches-before.CtxSwitches) / n,
		}, nil
	})
}

// runLone is A3: one event per interval on an otherwise idle stream.
func runLone(ctx context.Context, o options, v variant) (map[string]float64, error) {
	return withChild(o, v, func(c *childProc) (map[string]float64, error) {
		path := fmt.Sprintf("/stream?stream=events&mode=%s&n=%d&interval=%s", modeLone, o.LoneEvents, url.QueryEscape(o.LoneInterval.String()))
		conn, err := dialSSE(ctx, c.hello.Addr, path, v.Gzip, smallReadBuffer, false, 10*time.Second)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		var h histogram
		got := 0
		_ = conn.conn.SetReadDeadline(time.Now().Add(time.Duration(o.LoneEvents)*o.LoneInterval + 30*time.Second))
		err = conn.readEvents(func(seq int, ts, now int64) {
			h.add(now - ts)
			if got++; got == o.LoneEvents {
				conn.Close() // ends readEvents
			}
		})
		if got < o.LoneEvents {
			return nil, fmt.Errorf("got %d of %d events: %v", got, o.LoneEvents, err)
		}
		return map[string]float64{
			mP50: h.quantile(0.50) / 1e6,
			mP99: h.quantile(0.99) / 1e6,
			mMax: h.quantile(1) / 1e6,
		}, nil
	})
}

// ramp opens n subscribers and waits until the server counts them all.
func ramp(ctx context.Context, o options, c *childProc, gz bool, n int) (*clientGroup, time.Duration, error) {
	g, _, took, err := rampProbed(ctx, o, c, gz, n, 0)
	return g, took, err
}

// rampProbed is ramp with probes: of the n subscribers, o.ProbeStreams in
// each of the probes processes (see probe.go), opened at even intervals
// among the driver's own, so that they sit across the server's list of
// subscribers rather than at one end of it.
func rampProbed(ctx context.Context, o options, c *childProc, gz bool, n, probes int) (*clientGroup, []*probeProc, time.Duration, error) {
	const path = "/events?stream=events"
	own := n - probes*o.ProbeStreams
	if probes > 0 && own < 0 {
		return nil, nil, 0, fmt.Errorf("%d probes of %d streams are more than %d subscribers", probes, o.ProbeStreams, n)
	}
	start := time.Now()
	g := &clientGroup{}
	var ps []*probeProc
	fail := func(err error) (*clientGroup, []*probeProc, time.Duration, error) {
		stopProbes(ps)
		g.close()
		return nil, nil, 0, err
	}
	opened := 0
	for k := range probes + 1 {
		upTo := own * (k + 1) / (probes + 1)
		if err := g.open(ctx, c.hello.Addr, path, gz, upTo-opened, o.DialConcurrency, 30*time.Second); err != nil {
			return fail(err)
		}
		opened = upTo
		if k < probes {
			p, err := startProbe(probeConfig{Addr: c.hello.Addr, Path: path, Gzip: gz, Streams: o.ProbeStreams}, o.DriverCPU)
			if err != nil {
				return fail(err)
			}
			ps = append(ps, p)
		}
	}
	took := time.Since(start)
	deadline := time.Now().Add(30 * time.Second)
	for {
		subs, err := c.subscribers()
		if err != nil {
			return fail(err)
		}
		if subs >= n {
			return g, ps, took, nil
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the server counts %d of %d subscribers", subs, n))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stopProbes(ps []*probeProc) {
	for _, p := range ps {
		p.stop()
	}
}

// settle lets connection set-up finish in the server before memory is read.
const settle = time.Second

func perStream(after, before int64, n int) float64 {
	return float64(after-before) / float64(n) / 1024
}

// runIdle is B1: n idle streams, then one broadcast.
func runIdle(ctx context.Context, o options, v variant) (map[string]float64, error) {
	n := o.IdleClients
	return withChild(o, v, func(c *childProc) (map[string]float64, error) {
		before, err := c.stats()
		if err != nil {
			return nil, err
		}
		g, took, err := ramp(ctx, o, c, v.Gzip, n)
		if err != nil {
			return nil, err
		}
		defer g.close()
		time.Sleep(settle)
		after, err := c.stats()
		if err != nil {
			return nil, err
		}
		if err := c.heapProfile(); err != nil {
			return nil, err
		}
		if _, err := c.publish(1, 0, time.Minute); err != nil {
			return nil, err
		}
		g.waitDelivered(int64(n), 30*time.Second)
		time.Sleep(settle)
		later, err := c.stats()
		if err != nil {
			return nil, err
		}
		reached := 0
		for _, cl := range g.clients {
			if cl.count.Load() >= 1 {
				reached++
			}
		}
		return map[string]float64{
			mRSS:         perStream(after.RSS, before.RSS, n),
			mHeap:        perStream(after.HeapCommitted, before.HeapCommitted, n),
			mStacks:      perStream(after.Stacks, before.Stacks, n),
			mGoroutines:  float64(after.Goroutines-before.Goroutines) / float64(n),
			mDelivered:   float64(reached) / float64(n),
			mRampPerSec:  float64(n) / took.Seconds(),
			mRSSAfter:    perStream(later.RSS, before.RSS, n),
			mStacksAfter: perStream(later.Stacks, before.Stacks, n),
		}, nil
	})
}

// runWarm is B2: gzip'd streams fresh, after 20 events and after
// o.WarmEvents. Memory is divided by the streams still subscribed: a
// server that drops slow streams (echosse's broker) frees their memory;
// delivered and slow streams say how many.
func runWarm(ctx context.Context, o options, v variant) (map[string]float64, error) {
	n := o.IdleGzipClients
	return withChild(o, v, func(c *childProc) (map[string]float64, error) {
		before, err := c.stats()
		if err != nil {
			return nil, err
		}
		g, _, err := ramp(ctx, o, c, v.Gzip, n)
		if err != nil {
			return nil, err
		}
		defer g.close()
		m := map[string]float64{}
		sent := 0
		snap := func(suffix string, events int) error {
			if events > 0 {
				if _, err := c.publish(events, o.WarmInterval, 5*time.Minute); err != nil {
					return err
				}
			}
			sent += events
			g.waitDelivered(int64(n)*int64(sent), 2*time.Minute)
			// Longer than echosse's CompressIdle (1s), after which an idle
			// stream gives its compressor back.
			time.Sleep(settle + settle/2)
			s, err := c.stats()
			if err != nil {
				return err
			}
			subs, err := c.subscribers()
			if err != nil {
				return err
			}
			if subs == 0 {
				return fmt.Errorf("no stream left after %d events", sent)
			}
			if suffix == "warm" {
				if err := c.heapProfile(); err != nil {
					return err
				}
			}
			m["rss_"+suffix] = perStream(s.RSS, before.RSS, subs)
			m["heap_"+suffix] = perStream(s.HeapCommitted, before.HeapCommitted, subs)
			if suffix == "fresh" {
				m[mGoroutines] = float64(s.Goroutines-before.Goroutines) / float64(subs)
			}
			if x, ok := s.Counters["slow_clients"]; ok {
				m[mSlow] = x
			}
			return nil
		}
		if err := snap("fresh", 0); err != nil {
			return m, err
		}
		if err := snap("20", 20); err != nil {
			return m, err
		}
		if err := snap("warm", o.WarmEvents-20); err != nil {
			return m, err
		}
		m[mDelivered] = float64(g.delivered.Load()) / float64(n*o.WarmEvents)
		return m, nil
	})
}

// runFanout is C1 and C2: subs subscribers, n events one per interval.
// With o.Probes, the latency figures are the probes' (what a client with a
// core of its own sees), and the driver's subscribers' are reported beside
// as "load generator p50/p99"; without, the driver's subscribers take them.
func runFanout(ctx context.Context, o options, v variant, subs, n int, interval time.Duration) (map[string]float64, error) {
	return withChild(o, v, func(c *childProc) (map[string]float64, error) {
		g, probes, _, err := rampProbed(ctx, o, c, v.Gzip, subs, o.Probes)
		if err != nil {
			return nil, err
		}
		defer g.close()
		defer stopProbes(probes)
		before, err := c.stats()
		if err != nil {
			return nil, err
		}
		span := time.Duration(n) * interval
		client := ownCPUNanos()
		start := time.Now()
		rep, err := c.publish(n, interval, 2*span+2*time.Second)
		if err != nil {
			return nil, err
		}
		want := int64(subs) * int64(n)
		own := int64(subs - len(probes)*o.ProbeStreams)
		// Bounded: a server whose queues hold many seconds of events is
		// reported as not having delivered them all.
		g.waitDelivered(own*int64(rep.Published), span/2+10*time.Second)
		after, err := c.stats()
		if err != nil {
			return nil, err
		}
		clientCPU := float64(ownCPUNanos()-client) / float64(time.Since(start))
		got := g.delivered.Load()
		disorder := g.disorder.Load()
		last := g.lastRecv()
		var probed histogram
		for _, p := range probes {
			r, err := p.report(int64(rep.Published), stall)
			if err != nil {
				return nil, err
			}
			got += r.Received
			disorder += r.Disorder
			last = max(last, r.LastRecv)
			for _, ns := range r.Latency {
				probed.add(ns)
			}
		}
		lat := &g.hist
		if len(probes) > 0 {
			lat = &probed
		}
		m := map[string]float64{
			mClientCPU: clientCPU,
			mDelivered: float64(got) / float64(want),
			mBehind:    float64(rep.LagEndNS) / 1e6,
			mP50:       lat.quantile(0.50) / 1e6,
			mP99:       lat.quantile(0.99) / 1e6,
			mMax:       lat.quantile(1) / 1e6,
		}
		if len(probes) > 0 {
			m[mDriverP50] = g.hist.quantile(0.50) / 1e6
			m[mDriverP99] = g.hist.quantile(0.99) / 1e6
		}
		if x, ok := after.Counters["slow_clients"]; ok {
			m[mSlow] = x
		}
		if got > 0 {
			m[mEventsPerSec] = float64(got) / (float64(last-rep.FirstNS) / 1e9)
			m[mCPUPerEvent] = float64(after.CPUNanos-before.CPUNanos) / float64(got) / 1e3
		}
		if disorder > 0 {
			return m, fmt.Errorf("%d events out of order or repeated", disorder)
		}
		return m, nil
	})
}
