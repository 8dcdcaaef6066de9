package redisbroker

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

// The Redis backend passes the conformance suite in both delivery modes,
// faults included: each case's brokers share a key prefix (Options.Scope)
// on the shared redis-server, and the fault cases put a proxy in front of
// it.
func TestConformance(t *testing.T) {
	for _, mode := range []Delivery{DeliverAll, DeliverInterest} {
		t.Run(mode.String(), func(t *testing.T) { conformance(t, mode) })
	}
}

func conformance(t *testing.T, mode Delivery) {
	cfg := Config{PublishTimeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Delivery: mode}
	brokertest.Run(t, brokertest.Harness{
		New: func(t testing.TB, o brokertest.Options) broker.Config {
			opts := &redis.Options{Addr: o.Addr}
			if o.Timeout > 0 {
				opts.ReadTimeout, opts.WriteTimeout = o.Timeout, o.Timeout
			}
			client := newClient(t, o.Addr)
			if o.Timeout > 0 {
				client = redis.NewClient(opts)
				t.Cleanup(func() { client.Close() })
			}
			c := cfg
			c.Prefix, c.HistorySize, c.HistoryAge = o.Scope, o.HistorySize, o.HistoryAge
			c.ErrorHandler = func(error) {} // the suite counts what matters
			b, err := New(client, c)
			if err != nil {
				t.Fatal(err)
			}
			return broker.Config{Backend: b}
		},
		Addr:   shared.Addr,
		Shared: true,
		Settle: settleAfter(cfg),
		Lose: func(t testing.TB, scope string) {
			// What FLUSHALL does to the scope's keys, leaving other
			// tests' alone.
			ctx := context.Background()
			client := newClient(t, shared.Addr)
			keys, err := client.Keys(ctx, "{"+scope+"}:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 0 {
				if err := client.Del(ctx, keys...).Err(); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}
