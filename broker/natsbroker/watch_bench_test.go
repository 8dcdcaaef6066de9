package natsbroker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/internal/natstest"
)

// BenchmarkWatch measures a Watch of one new topic by a backend that
// watches n topics already: filtered on every topic (MaxFilterSubjects
// -1), each Watch replaces the live consumer by one filtered on every
// watched subject, so its cost grows with n; by default, past 256 topics
// the consumer takes every topic and a Watch replaces nothing (go test
// -run '^$' -bench Watch -benchtime 20x ./broker/natsbroker).
func BenchmarkWatch(b *testing.B) {
	srv := startServer(b)
	for _, c := range []struct {
		mode       string
		maxFilters int
	}{{"filtered", -1}, {"default", 0}} {
		for _, n := range []int{10, 100, 1000, 3000} {
			benchmarkWatch(b, srv, c.mode, c.maxFilters, n)
		}
	}
}

func benchmarkWatch(b *testing.B, srv *natstest.Server, mode string, maxFilters, n int) {
	b.Run(fmt.Sprintf("%s/watched=%d", mode, n), func(b *testing.B) {
		name := fmt.Sprintf("watch_%s_%d", mode, n)
		be := newBackend(b, connect(b, "nats://"+srv.Addr), natsbroker.Config{Stream: "W" + name, Subject: name, MaxFilterSubjects: maxFilters})
		if _, err := be.Start(func(broker.Message) {}); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		topics := make([]string, n)
		for i := range topics {
			topics[i] = fmt.Sprint("user-", i)
		}
		if _, err := be.Watch(ctx, topics); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := range b.N {
			topic := []string{fmt.Sprint("new-", i)}
			if _, err := be.Watch(ctx, topic); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			be.Unwatch(topic)
			b.StartTimer()
		}
	})
}
