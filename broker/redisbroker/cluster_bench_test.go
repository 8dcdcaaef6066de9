package redisbroker

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/echosse/echo-sse/event"
)

// BenchmarkPublishThroughput publishes from 16 goroutines, events of 100
// bytes on 16 topics, through one backend on one Redis ("single"), on a
// cluster of three masters under one Prefix ("cluster": one slot, so one
// master takes every write), and on the cluster under three Prefixes
// whose slots are on three masters, a backend each ("cluster/prefixes=3").
// Everything shares the machine's cores, masters included, so the third
// shows what spreading buys here, not on three hosts.
//
//	go test -run '^$' -bench PublishThroughput -benchtime 2s ./broker/redisbroker
func BenchmarkPublishThroughput(b *testing.B) {
	data := string(make([]byte, 100))
	run := func(b *testing.B, backends []*Backend) {
		var n atomic.Uint64
		b.SetParallelism(8) // 8 per core
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := n.Add(1)
			backend := backends[int(i)%len(backends)]
			topic := "t" + strconv.FormatUint(i%16, 10)
			for pb.Next() {
				if _, err := backend.Publish(context.Background(), topic, event.Event{Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("single", func(b *testing.B) {
		run(b, []*Backend{startDiscarding(b, newClient(b, shared.Addr), Config{Prefix: testPrefix(b)})})
	})
	c := startCluster(b)
	client := newClusterClient(b, c)
	b.Run("cluster", func(b *testing.B) {
		run(b, []*Backend{startDiscarding(b, client, Config{Prefix: testPrefix(b)})})
	})
	b.Run("cluster/prefixes=3", func(b *testing.B) {
		// Three prefixes whose slots are on three masters.
		masters := map[string]bool{}
		var backends []*Backend
		for i := 0; len(backends) < 3 && i < 1000; i++ {
			prefix := testPrefix(b)
			m, err := client.MasterForKey(context.Background(), "{"+prefix+"}")
			if err != nil {
				b.Fatal(err)
			}
			if masters[m.Options().Addr] {
				continue
			}
			masters[m.Options().Addr] = true
			backends = append(backends, startDiscarding(b, client, Config{Prefix: prefix}))
		}
		if len(backends) < 3 {
			b.Fatal("no three prefixes on three masters")
		}
		run(b, backends)
	})
}
