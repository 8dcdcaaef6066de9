package redisbroker

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// TestLag: messages the reader has read but not yet delivered, or not
// read, count; none once it has caught up; MaxLag at most.
func TestLag(t *testing.T) {
	client := newClient(t, shared.Addr)
	cfg := Config{Prefix: testPrefix(t), ErrorHandler: func(error) {}}
	b, err := New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	if _, err := b.Lag(ctx); err == nil {
		t.Error("Lag before Start: no error")
	}
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before Close, if the test fails first
	delivered := make(chan broker.Message, 100)
	if _, err := b.Start(func(m broker.Message) {
		<-hold // the broker is slow: the reader waits
		delivered <- m
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Lag(ctx); n != 0 || err != nil {
		t.Errorf("Lag of an idle backend = %d, %v; want 0", n, err)
	}
	const published = 7
	for range published {
		pub(t, b, "lag", event.Event{Data: "x"})
	}
	if n, err := b.Lag(ctx); n != published || err != nil {
		t.Errorf("Lag with %d messages held = %d, %v", published, n, err)
	}
	release()
	for range published {
		<-delivered
	}
	eventually(t, "the reader to catch up", func() bool {
		n, err := b.Lag(ctx)
		return n == 0 && err == nil
	})
	b.Close()
	if _, err := b.Lag(ctx); err != broker.ErrClosed {
		t.Errorf("Lag after Close: %v, want broker.ErrClosed", err)
	}
}

// TestLagCountsUpToMaxLag: a reader further behind than MaxLag is told
// MaxLag.
func TestLagCountsUpToMaxLag(t *testing.T) {
	client := newClient(t, shared.Addr)
	cfg := Config{Prefix: testPrefix(t), ErrorHandler: func(error) {}, LogSize: 2 * MaxLag}
	b, err := New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	if _, err := b.Start(func(broker.Message) { <-hold }); err != nil {
		t.Fatal(err)
	}
	// Entries written straight to the log: the reader skips them (they
	// are no messages of this package's), so it delivers none.
	ctx := context.Background()
	pipe := client.Pipeline()
	for i := range MaxLag + 5 {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.keys.log, ID: entryID(uint64(1_000_000 + i)), Values: []string{"t", "x"}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Lag(ctx); n != MaxLag || err != nil {
		t.Errorf("Lag = %d, %v; want MaxLag (%d)", n, err, MaxLag)
	}
}
