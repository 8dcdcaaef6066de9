package broker

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// benchEvent is a typical small event: a JSON price tick.
var benchEvent = event.Event{Type: "tick", Data: `{"symbol":"ECHO","price":17.25}`}

// benchSubscribers subscribes n fake streams to topic. Their channels are
// what Publish sends on; nothing reads them until drainAll.
func benchSubscribers(b testing.TB, br *Broker, n, buffer int, topic string) []*fakeStream {
	fs := make([]*fakeStream, n)
	for i := range fs {
		fs[i] = newFake(b, buffer, "")
		if err := fs[i].subscribe(br, topic); err != nil {
			b.Fatal(err)
		}
	}
	return fs
}

func drainAll(fs []*fakeStream) {
	for _, f := range fs {
		for len(f.ch) > 0 {
			<-f.ch
		}
	}
}

// BenchmarkPublish publishes one event to a topic with n subscribers. The
// subscribers are fake streams (a channel, a context), so the figures are
// the broker's own cost: encoding once, storing in the history, and one
// non-blocking channel send per subscriber. The buffers are emptied, off
// the clock, every 16 events.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			br, _ := newBroker(b, Config{})
			const buffer = 16
			fs := benchSubscribers(b, br, n, buffer, "prices")
			benchSubscribers(b, br, 10, buffer, "other") // not touched
			ctx := context.Background()
			runtime.GC() // not the setup's garbage on the clock
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%buffer == buffer-1 {
					b.StopTimer()
					drainAll(fs)
					b.StartTimer()
				}
				if _, err := br.Publish(ctx, "prices", benchEvent); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sub")
			if st := br.Stats(); st.SlowClients != 0 {
				b.Fatalf("%d slow clients", st.SlowClients)
			}
		})
	}
}

// BenchmarkReplay1000 subscribes a stream that reconnects 1000 events
// behind: the history is read and 1000 events are sent to its buffer.
func BenchmarkReplay1000(b *testing.B) {
	br, _ := newBroker(b, Config{})
	ctx := context.Background()
	first, err := br.Publish(ctx, "prices", benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	for range 1000 {
		if _, err := br.Publish(ctx, "prices", benchEvent); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		f := newFake(b, 2048, first) // half empty after the replay: Subscribe returns at once
		b.StartTimer()
		if err := f.subscribe(br, "prices"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(f.ch) != 1000 {
			b.Fatalf("replayed %d events", len(f.ch))
		}
		f.cancel(nil)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
}

// TestPublishAllocsPerSubscriber holds the zero allocations per subscriber
// per publish: publishing to 1000 subscribers allocates no more than
// publishing to one.
func TestPublishAllocsPerSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations")
	}
	allocs := func(n int) float64 {
		br, _ := newBroker(t, Config{HistorySize: 10})
		benchSubscribers(t, br, n, 128, "prices")
		for range 20 { // the history reaches its size
			br.Publish(context.Background(), "prices", benchEvent)
		}
		return testing.AllocsPerRun(100, func() {
			br.Publish(context.Background(), "prices", benchEvent)
		})
	}
	one, many := allocs(1), allocs(1000)
	if many > one {
		t.Fatalf("%v allocations per publish to 1000 subscribers, %v to one", many, one)
	}
	t.Logf("%v allocations per publish, whatever the number of subscribers", one)
}

// BenchmarkSubscribe subscribes an idle stream to one topic, with no
// replay: B/op is about what the broker holds per idle subscriber.
func BenchmarkSubscribe(b *testing.B) {
	br, _ := newBroker(b, Config{})
	fs := make([]*fakeStream, 0, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(fs) {
		b.StopTimer()
		for _, f := range fs {
			f.cancel(nil)
		}
		for br.Stats().Subscribers > 0 {
			runtime.Gosched()
		}
		fs = fs[:0]
		for range min(cap(fs), b.N-n) {
			fs = append(fs, newFake(b, 1, ""))
		}
		b.StartTimer()
		for _, f := range fs {
			if err := f.subscribe(br, "prices"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkUnsubscribeManyTopics ends 40 streams that share the same
// topics, one after the other in the order they subscribed (as clients that
// came together leave); one op is their unsubscribing, from the cancelling
// of the first one's context until the broker holds none of them.
// Meanwhile a publisher publishes on one of the topics: max-publish-ns is
// the longest any of its Publish calls took, which is how long it waited
// behind the unsubscribing.
func BenchmarkUnsubscribeManyTopics(b *testing.B) {
	for _, n := range []int{2000, 8000} {
		b.Run("topics="+strconv.Itoa(n), func(b *testing.B) {
			br, _ := newBroker(b, Config{SlowClient: SlowClientDrop})
			topics := make([]string, n)
			for i := range topics {
				topics[i] = "t" + strconv.Itoa(i)
			}
			ctx := context.Background()
			var worst time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				fs := make([]*fakeStream, 40)
				for i := range fs {
					fs[i] = newFake(b, 1, "")
					if err := fs[i].subscribe(br, topics...); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				b.StartTimer()
				for i, f := range fs {
					f.cancel(nil)
					for subscribers(br) > len(fs)-1-i {
						start := time.Now()
						if _, err := br.Publish(ctx, topics[n/2], benchEvent); err != nil {
							b.Fatal(err)
						}
						worst = max(worst, time.Since(start))
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(worst.Nanoseconds()), "max-publish-ns")
		})
	}
}

// subscribers returns how many streams br holds: Stats().Subscribers,
// without the map of topics Stats builds.
func subscribers(br *Broker) int {
	br.mu.Lock()
	defer br.mu.Unlock()
	return len(br.subs)
}

// BenchmarkHistoryMemory measures what the in-memory history holds, from
// the heap in use after a GC: per topic when 100,000 topics hold one
// small event each, and per event when one topic holds 100 events of
// 64 KiB (B/event, and that over the payload: payload-ratio).
func BenchmarkHistoryMemory(b *testing.B) {
	ctx := context.Background()
	b.Run("topics=100000", func(b *testing.B) {
		for range b.N {
			before := liveHeap()
			br, _ := newBroker(b, Config{SlowClient: SlowClientDrop})
			for i := range 100000 {
				if _, err := br.Publish(ctx, "topic-"+strconv.Itoa(i), benchEvent); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(liveHeap()-before)/100000, "B/topic")
			runtime.KeepAlive(br)
			br.Close()
		}
	})
	b.Run("events=100x64KiB", func(b *testing.B) {
		payload := strings.Repeat("x", 64<<10)
		for range b.N {
			before := liveHeap()
			br, _ := newBroker(b, Config{HistorySize: 100, HistoryBytes: 1 << 30})
			for range 100 {
				// A []byte the caller may reuse, as from a buffer pool.
				if _, err := br.Publish(ctx, "big", event.Event{Data: []byte(payload)}); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(liveHeap()-before) / 100
			b.ReportMetric(per, "B/event")
			b.ReportMetric(per/float64(len(payload)), "payload-ratio")
			runtime.KeepAlive(br)
			br.Close()
		}
	})
}
