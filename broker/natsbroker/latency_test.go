package natsbroker_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/broker/natsbroker"
)

var latencyFull = flag.Bool("latency.full", false, "TestLatency: 1,000 subscribers instead of 100")

// TestLatency measures publish-to-delivery latency across two instances on
// one JetStream server, each a broker with a connection of its own: events
// published through one reach SSE streams subscribed to the other (go test
// -v -run TestLatency ./broker/natsbroker -args -latency.full | grep
// FIGURES).
func TestLatency(t *testing.T) {
	srv := startServer(t)
	brokertest.RunLatency(t, brokertest.Harness{
		New: func(t testing.TB, o brokertest.Options) broker.Config {
			name := strings.NewReplacer("-", "_").Replace(o.Scope)
			b, err := natsbroker.New(connect(t, "nats://"+srv.Addr), natsbroker.Config{
				Stream:       strings.ToUpper(name),
				Subject:      name,
				ErrorHandler: func(err error) { t.Logf("natsbroker: %v", err) },
			})
			if err != nil {
				t.Fatal(err)
			}
			return broker.Config{Backend: b}
		},
		Addr:   srv.Addr,
		Shared: true,
	}, "nats", *latencyFull)
}
