package sse

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkBeatWalk: what the sweeper's walk for heartbeats costs per
// open stream, none of them due (the common case: most streams are
// looked at, few pinged). At the default PingInterval a Server walks its
// streams every 3.125 s.
func BenchmarkBeatWalk(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			set := &serverStreams{streams: make(map[*Stream]struct{}, n)}
			srv.servers.all = map[*http.Server]*serverStreams{nil: set}
			now := time.Since(epoch)
			for range n {
				s := &Stream{srv: srv, wake: make(chan struct{}, 1)}
				s.wrote.Store(int64(now))
				set.streams[s] = struct{}{}
			}
			b.ResetTimer()
			for range b.N {
				srv.beat(now) // none is due: each wrote at now
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/stream")
		})
	}
}
