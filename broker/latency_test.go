package broker_test

import (
	"flag"
	"testing"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

var latencyFull = flag.Bool("latency.full", false, "TestLatency: 1,000 subscribers instead of 100")

// TestLatency measures publish-to-delivery latency over SSE streams on the
// in-memory broker, publisher and subscribers on the one instance: what
// the distributed backends' figures compare with (go test -v -run
// TestLatency -latency.full ./broker | grep FIGURES).
func TestLatency(t *testing.T) {
	brokertest.RunLatency(t, brokertest.Harness{
		New: func(t testing.TB, o brokertest.Options) broker.Config {
			return broker.Config{HistorySize: o.HistorySize, HistoryAge: o.HistoryAge}
		},
	}, "memory", *latencyFull)
}
