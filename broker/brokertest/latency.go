package brokertest

// This file measures how long an event takes from Publish to a subscriber's
// SSE stream: exported, so that every backend's tests measure it the same
// way and its figures sit beside the in-memory broker's.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// LatencyOptions configure [Latency].
type LatencyOptions struct {
	// Subscribers is how many SSE streams subscribe. Required.
	Subscribers int

	// Topics is how many topics they subscribe to, one each, stream i to
	// topic i mod Topics: 1 is a broadcast, Subscribers a topic per
	// stream (a topic per user). It must divide Subscribers. Optional.
	// Default value 1.
	Topics int

	// Events is how many events are published, event i on topic i mod
	// Topics. Required.
	Events int

	// Interval is the time between two publishes: the publisher waits for
	// a ticker, so a Publish slower than that lowers the rate, which the
	// figures show. Optional. Default value 1 ms.
	Interval time.Duration
}

// LatencyFigures are what [Latency] measured: the time from just before
// Publish was called to the moment a stream's client decoded the event,
// over every event every stream received.
type LatencyFigures struct {
	Expected   int           // events times the streams of their topic
	Delivered  int           // distinct events received, over all streams
	Duplicates int           // events a stream received once more
	P50, P99   time.Duration // percentiles of the latency
	Max        time.Duration // the longest latency
	Rate       float64       // events published per second, measured
}

// Latency measures publish-to-delivery latency, over real HTTP: it starts
// two brokers on backends of h made with one Scope (a single one if
// !h.Shared, as for the in-memory history), each with an HTTP server of
// SSE streams as an instance of an app has, subscribes o.Subscribers
// streams to the second one, publishes o.Events events through the first
// at a steady rate, each carrying the time it was published, and has
// every stream's client stamp it when it decodes it. Publisher and clients
// share the process's monotonic clock. It logs the figures on a line
// starting with FIGURES (go test -v ... | grep FIGURES), named by name,
// and fails t if a stream missed an event or received one twice; it does
// not fail on a slow machine, but for a stream that misses events for
// 30 s after the last publish.
func Latency(t *testing.T, h Harness, name string, o LatencyOptions) LatencyFigures {
	t.Helper()
	if o.Topics <= 0 {
		o.Topics = 1
	}
	if o.Interval <= 0 {
		o.Interval = time.Millisecond
	}
	if o.Subscribers <= 0 || o.Events <= 0 || o.Subscribers%o.Topics != 0 {
		t.Fatalf("brokertest: Latency needs Subscribers and Events above zero, and Topics dividing Subscribers: %+v", o)
	}
	r := &runner{h: h}
	opts := Options{Scope: r.scope(t)}
	pub := r.start(t, opts)
	sub := pub
	if h.Shared {
		sub = r.start(t, opts)
	}
	topics := make([]string, o.Topics)
	for i := range topics {
		topics[i] = "latency-" + strconv.Itoa(i)
	}
	start := time.Now()
	var delivered atomic.Int64
	streams := make([]*latencyStream, o.Subscribers)
	opening := make(chan int)
	errs := make(chan error, o.Subscribers)
	var wg sync.WaitGroup
	for range 8 { // a few at a time, as clients arriving
		wg.Go(func() {
			for i := range opening {
				s, err := openLatency(sub, topics[i%o.Topics], o.Events/o.Topics+1, start, &delivered)
				if err != nil {
					errs <- err
					continue
				}
				streams[i] = s
			}
		})
	}
	for i := range streams {
		opening <- i
	}
	close(opening)
	wg.Wait()
	for _, s := range streams {
		if s != nil {
			t.Cleanup(s.close)
		}
	}
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("opening the streams: %v", err)
	}
	t.Logf("FIGURES opening | %-31s | subscribers %5d | topics %5d | 8 at a time | took %v", name, o.Subscribers, o.Topics, time.Since(start).Round(time.Millisecond))

	// Publish at a steady rate, each event stamped just before Publish.
	tick := time.NewTicker(o.Interval)
	begin := time.Now()
	for i := range o.Events {
		<-tick.C
		data := strconv.Itoa(i) + " " + strconv.FormatInt(time.Since(start).Nanoseconds(), 10)
		if _, err := pub.b.Publish(context.Background(), topics[i%o.Topics], event.Event{Data: data}); err != nil {
			tick.Stop()
			t.Fatalf("publishing event %d: %v", i, err)
		}
	}
	tick.Stop()
	rate := float64(o.Events) / time.Since(begin).Seconds()

	expected := o.Events * (o.Subscribers / o.Topics) // each event reaches the streams of its topic
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < int64(expected) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a duplicate on its way shows

	f := LatencyFigures{Expected: expected, Rate: rate}
	var all []time.Duration
	var broken []string
	for i, s := range streams {
		s.mu.Lock()
		f.Delivered += s.distinct
		f.Duplicates += s.dups
		all = append(all, s.lat...)
		if s.err != nil && len(broken) < 3 {
			broken = append(broken, fmt.Sprintf("stream %d: %v", i, s.err))
		}
		s.mu.Unlock()
	}
	slices.Sort(all)
	if n := len(all); n > 0 {
		f.P50, f.P99, f.Max = all[n/2], all[n*99/100], all[n-1]
	}
	t.Logf("FIGURES latency | %-31s | subscribers %5d | topics %5d | events %5d at %6.0f/s | p50 %9v | p99 %9v | max %9v | delivered %6.2f%% (%d of %d) | duplicates %d",
		name, o.Subscribers, o.Topics, o.Events, f.Rate, f.P50.Round(time.Microsecond), f.P99.Round(time.Microsecond), f.Max.Round(time.Microsecond),
		100*float64(f.Delivered)/float64(f.Expected), f.Delivered, f.Expected, f.Duplicates)
	if f.Delivered != f.Expected || f.Duplicates != 0 {
		t.Errorf("%s: %d of %d events delivered, %d duplicates; %s", name, f.Delivered, f.Expected, f.Duplicates, strings.Join(broken, "; "))
	}
	return f
}

// A latencyStream is one SSE stream of [Latency], whose client records
// each event's latency as it decodes it.
type latencyStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	seen     map[int]bool
	lat      []time.Duration
	distinct int
	dups     int
	err      error // why the stream ended before it was closed
}

// openLatency opens a stream on topic of in, and returns once the handler
// said ready (after Subscribe returned). Each event it then receives
// counts in delivered, once.
func openLatency(in *instance, topic string, capacity int, start time.Time, delivered *atomic.Int64) (*latencyStream, error) {
	resp, cancel, err := in.get("", topic)
	if err != nil {
		return nil, err
	}
	dec := event.NewDecoder(resp.Body)
	giveUp := time.AfterFunc(10*time.Second, cancel) // a handler that never says ready
	ev, err := dec.Decode()
	giveUp.Stop()
	if err != nil || ev.Type != "ready" {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("subscribing to %s: %q event, %v", topic, ev.Type, err)
	}
	s := &latencyStream{resp: resp, cancel: cancel, done: make(chan struct{}), seen: make(map[int]bool, capacity), lat: make([]time.Duration, 0, capacity)}
	go s.read(dec, start, delivered)
	return s, nil
}

func (s *latencyStream) read(dec *event.Decoder, start time.Time, delivered *atomic.Int64) {
	defer close(s.done)
	for {
		ev, err := dec.Decode()
		now := time.Since(start)
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		data, _ := ev.Data.(string)
		seq, at, ok := strings.Cut(data, " ")
		i, err1 := strconv.Atoi(seq)
		ns, err2 := strconv.ParseInt(at, 10, 64)
		s.mu.Lock()
		switch {
		case !ok || err1 != nil || err2 != nil:
			s.err = fmt.Errorf("an event of data %q", data)
		case s.seen[i]:
			s.dups++
		default:
			s.seen[i] = true
			s.distinct++
			s.lat = append(s.lat, now-time.Duration(ns))
			delivered.Add(1)
		}
		s.mu.Unlock()
	}
}

func (s *latencyStream) close() {
	s.resp.Body.Close()
	s.cancel()
	<-s.done
}

// RunLatency runs [Latency] as two subtests of t, named after the shapes
// of topics: "PerUserTopics", a topic per stream with events published
// round them, and "Broadcast", one topic every stream subscribes to. With
// full, 1,000 streams subscribe (the figures the docs give); without, 100,
// small enough for go test -race ./... on every run.
func RunLatency(t *testing.T, h Harness, name string, full bool) {
	subs, users, casts, castEvery := 100, 200, 50, 10*time.Millisecond
	if full {
		subs, users, casts, castEvery = 1000, 1000, 100, 50*time.Millisecond
	}
	t.Run("PerUserTopics", func(t *testing.T) {
		Latency(t, h, name+" per-user", LatencyOptions{Subscribers: subs, Topics: subs, Events: users, Interval: time.Millisecond})
	})
	t.Run("Broadcast", func(t *testing.T) {
		Latency(t, h, name+" broadcast", LatencyOptions{Subscribers: subs, Topics: 1, Events: casts, Interval: castEvery})
	})
}
