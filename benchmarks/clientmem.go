package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echosse/echo-sse/sseclient"
	r3sse "github.com/r3labs/sse/v2"
	gosse "github.com/tmaxmax/go-sse"
)

// The client memory scenario (D2): o.ClientStreams streams, each a client
// of one library ranging in a goroutine of the driver, held open against a
// raw server child's /events (a net/http handler that answers and waits),
// until each has received one broadcast event. The driver's own memory
// (GC'd, runtime/metrics and VmRSS) after less before, per stream.

var clientMemRows = []variant{
	{Server: "echosse", Label: ""},
	{Server: "r3labs", Label: "r3labs Client"},
	{Server: "gosse", Label: "gosse Connection"},
}

const mClientHeap = "heap_objects_kib_per_stream"

func clientMemScenario(o options) *scenario {
	return &scenario{
		ID:    "D2",
		Title: fmt.Sprintf("Client memory, %d idle streams", o.ClientStreams),
		Notes: []string{
			"Each stream a client ranging in a goroutine of the driver (sseclient.Client.Events; r3labs Client.SubscribeRawWithContext; go-sse Connection.Connect), all over one fresh http.Transport per run, against one raw server child's /events. Measured in the driver once every stream has received one broadcast event, after runtime.GC and debug.FreeOSMemory, less before the streams opened: heap objects and committed heap (runtime/metrics), goroutine stacks, VmRSS, goroutines. The HTTP transport's per-connection costs (two goroutines, 4 KiB read and write buffers) are in every row.",
		},
		Variants: clientMemRows,
		Reps:     o.HeavyReps,
		Metrics: []metric{
			{mRSS, "RSS KiB/stream", -1, true},
			{mClientHeap, "heap objects KiB/stream", -1, true},
			{mHeap, "heap committed KiB/stream", -1, true},
			{mStacks, "stack KiB/stream", -1, true},
			{mGoroutines, "goroutines/stream", -1, false},
		},
		Run: func(ctx context.Context, v variant) (map[string]float64, error) { return runClientMem(ctx, o, v) },
	}
}

// clientStream runs one stream of the client named by label until ctx is
// done, calling got for each event.
func clientStream(ctx context.Context, label string, hc *http.Client, url string, got func()) {
	switch label {
	case "":
		c := &sseclient.Client{HTTPClient: hc, Retry: 100 * time.Millisecond}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for _, err := range c.Events(ctx, req) {
			if err != nil {
				return
			}
			got()
		}
	case "r3labs Client":
		c := r3sse.NewClient(url)
		c.Connection = hc
		c.ReconnectStrategy = stopBackOff{}
		_ = c.SubscribeRawWithContext(ctx, func(*r3sse.Event) { got() })
	case "gosse Connection":
		c := &gosse.Client{HTTPClient: hc}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		conn := c.NewConnection(req)
		conn.SubscribeMessages(func(gosse.Event) { got() })
		_ = conn.Connect()
	}
}

func gcSnapshot() procStats {
	runtime.GC()
	debug.FreeOSMemory()
	return readProcStats()
}

func runClientMem(ctx context.Context, o options, v variant) (map[string]float64, error) {
	n := o.ClientStreams
	return withChild(o, variant{Server: "raw"}, func(c *childProc) (map[string]float64, error) {
		tr := &http.Transport{MaxIdleConnsPerHost: -1}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		url := "http://" + c.hello.Addr + "/events?stream=events"

		before := gcSnapshot()
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var reached atomic.Int64
		for range n {
			wg.Go(func() {
				var once sync.Once
				clientStream(sctx, v.Label, hc, url, func() { once.Do(func() { reached.Add(1) }) })
			})
			time.Sleep(50 * time.Microsecond) // a gentler ramp
		}
		stop := func() {
			cancel()
			wg.Wait()
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			subs, err := c.subscribers()
			if err != nil {
				stop()
				return nil, err
			}
			if subs >= n {
				break
			}
			if time.Now().After(deadline) {
				stop()
				return nil, fmt.Errorf("the server counts %d of %d subscribers", subs, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := c.publish(1, 0, time.Minute); err != nil {
			stop()
			return nil, err
		}
		for reached.Load() < int64(n) && time.Now().Before(deadline.Add(30*time.Second)) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := reached.Load(); got < int64(n) {
			stop()
			return nil, fmt.Errorf("%d of %d streams received the event", got, n)
		}
		time.Sleep(100 * time.Millisecond)
		after := gcSnapshot()
		stop()
		return map[string]float64{
			mRSS:        perStream(after.RSS, before.RSS, n),
			mClientHeap: perStream(after.HeapObjects, before.HeapObjects, n),
			mHeap:       perStream(after.HeapCommitted, before.HeapCommitted, n),
			mStacks:     perStream(after.Stacks, before.Stacks, n),
			mGoroutines: float64(after.Goroutines-before.Goroutines) / float64(n),
		}, nil
	})
}
