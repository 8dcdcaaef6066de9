package redisbroker

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// BenchmarkLatency measures the time from Publish to the event decoded by
// each of 1000 subscribers: real echosse streams on a loopback HTTP server,
// each read by its own goroutine with the event package's decoder, as a
// browser would. One event is in flight at a time (the next is published
// when every subscriber has the last one), so the figures are latency, not
// throughput under load.
//
//   - memory: one process, the in-memory history: Publish hands the event
//     to the 1000 streams itself.
//   - redis: two processes on one Redis: Publish through A (the script
//     stores the event), B reads it from the log with its blocking XREAD
//     and hands it to its 1000 streams.
//
// p50-µs, p99-µs and max-µs are over every (event, subscriber) pair. With
// one subscriber, the difference is what going through Redis costs.
func BenchmarkLatency(b *testing.B) {
	for _, subscribers := range []int{1, 1000} {
		for _, backend := range []string{"memory", "redis"} {
			b.Run(backend+"/subs="+strconv.Itoa(subscribers), func(b *testing.B) {
				benchLatency(b, backend, subscribers)
			})
		}
	}
}

func benchLatency(b *testing.B, backend string, subscribers int) {
	var publisher, server *instance
	if backend == "memory" {
		br, err := broker.New(broker.Config{})
		if err != nil {
			b.Fatal(err)
		}
		server = serve(b, br)
		publisher = server
	} else {
		client := newClient(b, shared.Addr)
		cfg := Config{Prefix: testPrefix(b)}
		publisher, server = newInstance(b, client, cfg), newInstance(b, client, cfg)
	}
	server.client.Transport.(*http.Transport).MaxIdleConnsPerHost = subscribers

	var (
		start    = time.Now()
		sent     atomic.Int64 // when the event in flight was published: ns since start
		received sync.WaitGroup
		mu       sync.Mutex
		samples  []time.Duration
		readers  sync.WaitGroup
	)
	for range subscribers {
		s := server.dial(b, "", "prices")
		readers.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for {
				if _, err := s.dec.Decode(); err != nil {
					return
				}
				mine = append(mine, time.Since(start)-time.Duration(sent.Load()))
				received.Done()
			}
		})
	}
	for server.b.Stats().Subscribers < subscribers {
		time.Sleep(time.Millisecond)
	}
	ctx := context.Background()
	ev := event.Event{Type: "tick", Data: `{"symbol":"ECHO","price":17.25}`}
	b.ResetTimer()
	for b.Loop() {
		received.Add(subscribers)
		sent.Store(int64(time.Since(start)))
		if _, err := publisher.b.Publish(ctx, "prices", ev); err != nil {
			b.Fatal(err)
		}
		received.Wait()
	}
	b.StopTimer()
	server.b.Close() // ends the streams: the readers return
	readers.Wait()
	slices.Sort(samples)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(samples[len(samples)/2]), "p50-µs")
	b.ReportMetric(us(samples[len(samples)*99/100]), "p99-µs")
	b.ReportMetric(us(samples[len(samples)-1]), "max-µs")
}

// BenchmarkMemory measures what Redis holds (figures quoted in the package
// documentation; run it with -benchtime 10000x):
//
//   - topic: each iteration publishes one small event on a new topic;
//     B/topic is the growth of INFO used_memory per topic, the topics hash
//     and the log included.
//   - event=N: each iteration publishes an event of N bytes of data on one
//     topic, under the default HistoryBytes; counted-B/event is what the
//     bound counts for each event kept, redis-B/event what MEMORY USAGE
//     gives for the topic's stream per event kept.
func BenchmarkMemory(b *testing.B) {
	b.Run("topic", func(b *testing.B) {
		client := newClient(b, shared.Addr)
		backend := startDiscarding(b, client, Config{Prefix: testPrefix(b)})
		pub(b, backend, "warm", event.Event{Data: "x"})
		before := usedMemory(b, backend)
		n := 0
		for b.Loop() {
			pub(b, backend, "user:"+strconv.Itoa(100000+n), event.Event{Data: `{"n":1}`})
			n++
		}
		b.ReportMetric(float64(usedMemory(b, backend)-before)/float64(n), "B/topic")
	})
	for _, size := range []int{5, 100, 1000, 2000, 64 << 10} {
		b.Run("event="+strconv.Itoa(size), func(b *testing.B) {
			client := newClient(b, shared.Addr)
			backend := startDiscarding(b, client, Config{Prefix: testPrefix(b), HistorySize: 100000})
			data := strings.Repeat("x", size)
			for b.Loop() {
				pub(b, backend, "a", event.Event{Data: data})
			}
			held, kept := heldBytes(b, backend, "a")
			mem, err := client.MemoryUsage(context.Background(), backend.keys.topic+"a", 0).Result()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(held)/float64(kept), "counted-B/event")
			b.ReportMetric(float64(mem)/float64(kept), "redis-B/event")
		})
	}
}

// startDiscarding starts a backend that delivers to nobody, closed when
// the benchmark ends.
func startDiscarding(tb testing.TB, client redis.UniversalClient, cfg Config) *Backend {
	tb.Helper()
	backend, err := New(client, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := backend.Start(func(broker.Message) {}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { backend.Close() })
	return backend
}

// usedMemory returns INFO used_memory of b's Redis.
func usedMemory(tb testing.TB, b *Backend) int64 {
	tb.Helper()
	info, err := b.client.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("INFO memory has no used_memory")
	return 0
}
