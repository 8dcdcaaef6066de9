package redisbroker

import (
	"flag"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

var latencyFull = flag.Bool("latency.full", false, "TestLatency: 1,000 subscribers instead of 100")

// TestLatency measures publish-to-delivery latency across two instances,
// each a broker with a Redis client of its own, in both delivery modes:
// events published through one reach SSE streams subscribed to the other
// (go test -v -run TestLatency ./broker/redisbroker -args -latency.full |
// grep FIGURES).
func TestLatency(t *testing.T) {
	for _, mode := range []Delivery{DeliverAll, DeliverInterest} {
		t.Run(mode.String(), func(t *testing.T) {
			brokertest.RunLatency(t, brokertest.Harness{
				New: func(t testing.TB, o brokertest.Options) broker.Config {
					b, err := New(newClient(t, shared.Addr), Config{Prefix: o.Scope, PublishTimeout: 2 * time.Second, Delivery: mode})
					if err != nil {
						t.Fatal(err)
					}
					return broker.Config{Backend: b}
				},
				Addr:   shared.Addr,
				Shared: true,
			}, "redis "+mode.String(), *latencyFull)
		})
	}
}
