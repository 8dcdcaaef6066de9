package redisbroker

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
