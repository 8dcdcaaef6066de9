package broker_test

import (
	"testing"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

// The in-memory history passes the conformance suite; it has no network,
// and its brokers share nothing, so the fault and multi-broker cases are
// skipped.
func TestMemoryConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Harness{
		New: func(t testing.TB, o brokertest.Options) broker.Config {
			return broker.Config{HistorySize: o.HistorySize, HistoryAge: o.HistoryAge}
		},
	})
}
